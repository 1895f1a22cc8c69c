"""The checkpoints page with witnesses: how many peers cosigned each checkpoint and which,
each cosignature checked against the peer's pinned key, and the witness policy (how many
are required, when a node admin set it) with the command auditors verify with."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from sqlmodel import select

from infracms.db import session_scope
from infracms.models.federation import PeerStatus
from infracms.models.witness import AuditCosignature
from infracms.services import audit
from infracms.services.witness import cosigner, gather_cosignatures
from tests.support.apps import AppPool
from tests.web.conftest import Site
from tests.witness.nodes import Network, Node, pin, set_status, started_node


@pytest.fixture
def nodes(app_pool: AppPool) -> Iterator[tuple[Node, Node, Node]]:
    """a.example, whose log b.example and c.example witness (all peered with a)."""
    network = Network()
    with (
        started_node(app_pool, "a.example", network) as a,
        started_node(app_pool, "b.example", network) as b,
        started_node(app_pool, "c.example", network) as c,
    ):
        for witness in (b, c):
            pin(a, witness)
            pin(witness, a)
        yield a, b, c


def signed_in(node: Node) -> Site:
    """The node's admin, signed in to its pages."""
    site = Site(node.client)
    assert site.login().status_code == 303
    return site


def set_policy(node: Node, minimum: int | None) -> None:
    """Set INFRACMS_MIN_WITNESSES on the running node."""
    app = node.client.app
    app.state.settings = app.state.settings.model_copy(update={"min_witnesses": minimum})  # type: ignore[attr-defined]


def rows(page: str) -> list[str]:
    """The text of each checkpoint's row, newest first."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", row))).strip()
        for row in body.split("<tr>")[1:]
    ]


def vkey(node: Node) -> str:
    return cosigner(node.name, node.key).verifier().vkey


def test_no_peer_no_policy(app_pool: AppPool) -> None:
    with started_node(app_pool, "alone.example", Network()) as alone:
        alone.append(2)
        audit.sign_checkpoint(engine=alone.engine, settings=alone.settings)
        page = signed_in(alone).get("/audit/checkpoints").text
    assert "No witness policy is set" in page
    assert "No active peer witnesses this log" in page
    assert rows(page)[0].split(" valid yes ")[1].startswith("0 not cosigned")


def test_each_checkpoint_shows_who_cosigned_it(nodes: tuple[Node, Node, Node]) -> None:
    a, b, c = nodes
    a.append(3)
    outcomes = gather_cosignatures(engine=a.engine, ctx=a.ctx)
    assert {(o.peer, o.status) for o in outcomes} == {
        ("b.example", "cosigned"),
        ("c.example", "cosigned"),
    }
    set_status(a, "c.example", PeerStatus.suspended)  # c no longer asked
    a.append(2)
    gather_cosignatures(engine=a.engine, ctx=a.ctx)
    page = signed_in(a).get("/audit/checkpoints").text
    # the two cosigned checkpoints; signing in may have made a newer, uncosigned one since
    newest, older = [row for row in rows(page) if "b.example" in row][:2]
    assert re.search(r" 1 b\.example valid \S+ \S+ UTC ", newest), newest
    assert "c.example" not in newest
    assert re.search(r" 2 b\.example valid .* c\.example valid ", older), older
    assert "No witness policy is set" in page
    assert vkey(b) in page and vkey(c) not in page  # the active witnesses' keys
    command = html.unescape(page.split('<pre class="code">')[1].split("</pre>")[0])
    assert command.split() == [
        "infracms",
        "audit",
        "verify",
        "EXPORT",
        "--key",
        audit.verifier_key(a.settings),
        "\\",
        "--witness",
        vkey(b),
    ]


def test_the_policy_says_which_checkpoints_meet_it(nodes: tuple[Node, Node, Node]) -> None:
    a, _, c = nodes
    a.append(3)
    gather_cosignatures(engine=a.engine, ctx=a.ctx)
    c.network.clients.pop("c.example")  # c is down: only b cosigns the next one
    a.append(1)
    gather_cosignatures(engine=a.engine, ctx=a.ctx)
    set_policy(a, 2)
    site = signed_in(a)
    page = site.get("/audit/checkpoints").text
    assert "Policy: a checkpoint needs <strong>2</strong> cosignatures by different peers." in page
    # the two cosigned checkpoints; signing in may have made a newer, uncosigned one since
    newest, older = [row for row in rows(page) if "b.example" in row][:2]
    assert " 1 of 2 required below policy b.example valid " in newest
    assert " 2 of 2 required met b.example valid " in older
    assert "--min-witnesses 2" in page
    set_policy(a, 3)
    assert "more than there are active peers" in site.get("/audit/checkpoints").text


def test_a_cosignature_that_does_not_verify_is_shown_invalid(
    nodes: tuple[Node, Node, Node],
) -> None:
    a, b, _ = nodes
    a.append(3)
    gather_cosignatures(engine=a.engine, ctx=a.ctx)
    with session_scope(a.engine, write=True) as session:
        row = session.exec(
            select(AuditCosignature).where(AuditCosignature.peer == "b.example")
        ).one()
        other = cosigner(b.name, b.key).cosign("other.example\n1\n" + "A" * 43 + "=\n", 1)
        row.line = other.line
        session.add(row)
        session.commit()
    # the checkpoint that was cosigned; signing in may have made a newer one since
    newest = next(
        row for row in rows(signed_in(a).get("/audit/checkpoints").text) if "b.example" in row
    )
    assert " 1 b.example invalid " in newest, newest
    assert "c.example valid" in newest
    assert "does not verify" in newest
