"""GET /api/v1/catalog/status: each peer's catalog sync, for node admins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from infracms.db import session_scope
from infracms.models import Role
from infracms.services.federation import sync
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import ADMIN, make_org, make_user, password_of, sign_in
from tests.support.apps import AppPool
from tests.witness.nodes import Network, Node, pin, started_node

URL = "/api/v1/catalog/status"


@pytest.fixture
def nodes(app_pool: AppPool) -> Iterator[tuple[Node, Node]]:
    """b.example peered with a.example (its catalog synced once) and c.example (never)."""
    network = Network()
    with (
        started_node(app_pool, "a.example", network) as a,
        started_node(app_pool, "b.example", network) as b,
        started_node(app_pool, "c.example", network) as c,
    ):
        for one, other in ((a, b), (b, a), (b, c)):
            pin(one, other)
        with session_scope(b.engine, write=True) as session:
            sync.sync_catalogs(session=session, actor=ADMIN, ctx=b.ctx, peer="a.example")
        yield a, b


def admin_client(node: Node) -> TestClient:
    sign_in(node.client, node.engine, node.settings, "admin", ADMIN_PASSWORD)
    return node.client


def test_every_peer_with_its_copy_last_success_and_attempt(nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    client = admin_client(b)
    answer = client.get(URL)
    assert answer.status_code == 200, answer.text
    synced, never = answer.json()
    assert (synced["peer"], synced["peer_status"], synced["version"], synced["offerings"]) == (
        "a.example",
        "active",
        1,
        0,
    )
    assert synced["outcome"] == "updated" and synced["failure"] is None
    assert synced["synced_at"] == synced["checked_at"] == synced["fetched_at"] is not None
    assert (synced["stale"], synced["stale_reason"]) == (False, None)
    assert never == {
        "peer": "c.example",
        "peer_status": "active",
        "version": None,
        "offerings": None,
        "fetched_at": None,
        "synced_at": None,
        "checked_at": None,
        "outcome": None,
        "failure": None,
        "error": None,
        "stale": False,
        "stale_reason": None,
    }


def test_a_failed_sync_says_why_and_that_the_copy_is_stale(nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    b.network.clients.pop("a.example")
    with session_scope(b.engine, write=True) as session:
        sync.sync_catalogs(session=session, actor=ADMIN, ctx=b.ctx, peer="a.example")
    [found] = admin_client(b).get(URL, params={"peer": "a.example"}).json()
    assert (found["outcome"], found["failure"], found["version"]) == ("failed", "unreachable", 1)
    assert found["error"].startswith("PeerUnreachable: ")
    assert found["synced_at"] < found["checked_at"]
    assert found["stale"] and found["stale_reason"] == "the last sync failed: unreachable"


def test_for_node_admins_only_and_unknown_peers_are_404(nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    assert b.client.get(URL).status_code == 401
    make_org(b.engine, "clinic")
    make_user(b.engine, b.settings, "olga", clinic=Role.owner)
    sign_in(b.client, b.engine, b.settings, "olga", password_of("olga"))
    assert b.client.get(URL).status_code == 403
    assert b.client.get("/api/v1/catalog").status_code == 200  # the catalog itself is hers
    client = admin_client(b)
    missing = client.get(URL, params={"peer": "nobody.example"})
    assert missing.status_code == 404 and "nobody.example" in missing.text
