"""Each peer's catalog sync status: the copy held, the last success, the last attempt
and why it failed, and whether the copy is stale (two nodes in one process)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlmodel import select

from federation import errors
from infracms.db import session_scope
from infracms.errors import NotFound, PermissionDenied
from infracms.models import AuditEntry, Role
from infracms.models.federation import NodeCatalog, PeerStatus, SyncFailure, SyncOutcome
from infracms.services.federation import sync
from infracms.services.federation.sync import STALE_AFTER, CatalogStatus, SyncResult
from tests.helpers import ADMIN, make_org, member_actor
from tests.support.apps import AppPool
from tests.witness.nodes import Network, Node, pin, set_status, started_node

Alter = Callable[[httpx.Response], httpx.Response]


@pytest.fixture
def network() -> Network:
    return Network()


@pytest.fixture
def nodes(app_pool: AppPool, network: Network) -> Iterator[tuple[Node, Node]]:
    """a.example (whose catalog is synced) and b.example (which syncs it), peered."""
    with (
        started_node(app_pool, "a.example", network) as a,
        started_node(app_pool, "b.example", network) as b,
    ):
        pin(a, b)
        pin(b, a)
        yield a, b


def run_sync(node: Node, alter: Alter | None = None) -> SyncResult:
    """Sync `node`'s one peer, its answers altered by `alter`."""
    ctx = node.ctx
    if alter is not None:
        inner = node.network.transport()

        def altered(request: httpx.Request) -> httpx.Response:
            answer = inner.handle_request(request)
            answer.read()
            return alter(answer)

        ctx = dataclasses.replace(ctx, transport=httpx.MockTransport(altered))
    with session_scope(node.engine, write=True) as session:
        [result] = sync.sync_catalogs(session=session, actor=ADMIN, ctx=ctx)
    return result


def status(node: Node, now: datetime | None = None) -> CatalogStatus:
    with session_scope(node.engine) as session:
        [found] = sync.catalog_status(session=session, actor=ADMIN, now=now)
    return found


def new_version(node: Node, version: int) -> None:
    """Make `node` sign its catalog again as `version` at its next request."""
    with session_scope(node.engine, write=True) as session:
        row = session.get(NodeCatalog, 1)
        assert row is not None
        row.version, row.content_sha256 = version - 1, ""
        session.add(row)
        session.commit()


def tampered(answer: httpx.Response) -> httpx.Response:
    """The answer with a byte of its body changed (its signed digest left as it was)."""
    body = answer.content.replace(b'"version":', b'"version" :', 1)
    return httpx.Response(answer.status_code, headers=answer.headers, content=body)


def resigned_digest(answer: httpx.Response) -> httpx.Response:
    """The answer with its body changed and a matching digest: the signature fails."""
    body = answer.content.replace(b'"version":', b'"version" :', 1)
    headers = dict(answer.headers)
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    headers["content-digest"] = f"sha-256=:{digest}:"
    headers.pop("content-length", None)
    return httpx.Response(answer.status_code, headers=headers, content=body)


def test_a_peer_never_synced_has_no_copy_and_is_not_stale(nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    assert status(b) == CatalogStatus(peer="a.example", peer_status=PeerStatus.active)


def test_updated_then_unchanged_then_failed_keeps_the_copy_and_goes_stale(
    nodes: tuple[Node, Node],
) -> None:
    _, b = nodes
    first = run_sync(b)
    assert (first.outcome, first.version, first.failure) == (SyncOutcome.updated, 1, None)
    fetched = status(b)
    assert (fetched.version, fetched.offerings, fetched.outcome) == (1, 0, SyncOutcome.updated)
    assert fetched.synced_at == fetched.checked_at == fetched.fetched_at is not None
    assert not fetched.stale and fetched.stale_reason is None

    assert run_sync(b).outcome is SyncOutcome.unchanged
    unchanged = status(b)
    assert (unchanged.outcome, unchanged.version, unchanged.fetched_at) == (
        SyncOutcome.unchanged,
        1,
        fetched.fetched_at,
    )
    assert unchanged.synced_at is not None and unchanged.synced_at > fetched.fetched_at
    assert unchanged.checked_at == unchanged.synced_at

    b.network.clients.pop("a.example")  # a is down
    result = run_sync(b)
    assert (result.outcome, result.failure) == (SyncOutcome.failed, SyncFailure.unreachable)
    down = status(b)
    assert (down.outcome, down.failure, down.version, down.offerings) == (
        SyncOutcome.failed,
        SyncFailure.unreachable,
        1,
        0,
    )
    assert down.error is not None and down.error.startswith("PeerUnreachable: ")
    assert down.synced_at == unchanged.synced_at
    assert down.checked_at is not None and down.checked_at > unchanged.synced_at
    assert down.stale and down.stale_reason == "the last sync failed: unreachable"


def test_a_copy_no_sync_confirmed_lately_is_stale(nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    run_sync(b)
    synced = status(b).synced_at
    assert synced is not None
    assert not status(b, now=synced + STALE_AFTER).stale
    old = status(b, now=synced + timedelta(hours=3, minutes=10))
    assert old.stale and old.stale_reason == "no sync has confirmed it for 3 hours"
    offerings = status(b, now=synced + timedelta(days=1, hours=2))
    assert offerings.stale_reason == "no sync has confirmed it for 1 day"


def test_a_suspended_peers_copy_is_not_called_stale(nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    run_sync(b)
    set_status(b, "a.example", PeerStatus.suspended)
    synced = status(b).synced_at
    assert synced is not None
    hidden = status(b, now=synced + timedelta(days=3))
    assert hidden.peer_status is PeerStatus.suspended and hidden.version == 1
    assert not hidden.stale


@pytest.mark.parametrize(
    ("alter", "failure", "error"),
    [
        (tampered, SyncFailure.tampered, "DigestMismatch"),
        (resigned_digest, SyncFailure.bad_signature, "SignatureInvalid"),
    ],
)
def test_an_answer_that_does_not_verify_is_named_and_the_copy_kept(
    nodes: tuple[Node, Node], alter: Alter, failure: SyncFailure, error: str
) -> None:
    a, b = nodes
    run_sync(b)
    new_version(a, 2)
    result = run_sync(b, alter)
    assert (result.failure, result.version) == (failure, 1), result
    found = status(b)
    assert (found.outcome, found.failure, found.version) == (SyncOutcome.failed, failure, 1)
    assert found.error is not None and found.error.startswith(f"{error}: ")
    assert found.stale_reason == f"the last sync failed: {failure.label}"


def test_an_older_version_is_a_rollback(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    run_sync(b)
    new_version(a, 5)
    assert run_sync(b).version == 5
    new_version(a, 2)
    result = run_sync(b)
    assert (result.failure, result.version) == (SyncFailure.rollback, 5)


def test_a_peer_that_refuses_us_is_named(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    run_sync(b)
    set_status(a, "b.example", PeerStatus.suspended)
    result = run_sync(b)
    assert result.failure is SyncFailure.refused and "401" in (result.error or "")


def test_only_the_first_failure_in_a_row_is_audited(nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    run_sync(b)
    b.network.clients.pop("a.example")
    run_sync(b)
    run_sync(b)
    with session_scope(b.engine) as session:
        failures = session.exec(
            select(AuditEntry).where(AuditEntry.action == "catalog.sync_failed")
        ).all()
    assert len(failures) == 1
    assert '"failure":"unreachable"' in failures[0].payload


def test_for_node_admins_only_and_one_peer_by_name(nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    clinic = make_org(b.engine, "clinic")
    with session_scope(b.engine) as session:
        with pytest.raises(PermissionDenied):
            sync.catalog_status(session=session, actor=member_actor(clinic, Role.owner))
        assert [
            s.peer for s in sync.catalog_status(session=session, actor=ADMIN, peer="a.example")
        ] == ["a.example"]
        with pytest.raises(NotFound):
            sync.catalog_status(session=session, actor=ADMIN, peer="nobody.example")


@pytest.mark.parametrize(
    ("exc", "failure"),
    [
        (errors.PeerTimeout("slow"), SyncFailure.timeout),
        (errors.PeerUnreachable("down"), SyncFailure.unreachable),
        (errors.RedirectRefused("3xx", status_code=302, location=None), SyncFailure.redirected),
        (errors.SchemeRefused("http"), SyncFailure.url_refused),
        (errors.PeerAnswerError("401", status_code=401), SyncFailure.refused),
        (errors.DigestMismatch("body"), SyncFailure.tampered),
        (errors.SignatureInvalid("sig"), SyncFailure.bad_signature),
        (errors.MissingComponent("none"), SyncFailure.bad_signature),
        (errors.UnknownKey("who", key_id="k"), SyncFailure.unknown_key),
        (errors.KeyNotValid("old"), SyncFailure.unknown_key),
        (errors.IdentityMismatch("other"), SyncFailure.wrong_node),
        (errors.CatalogRollback("older"), SyncFailure.rollback),
        (errors.SignatureExpired("late"), SyncFailure.clock),
        (errors.NonceReused("again"), SyncFailure.replayed),
        (errors.UnsupportedVersion("v2"), SyncFailure.malformed),
        (errors.FederationError("?"), SyncFailure.error),
    ],
)
def test_every_federation_error_is_named(exc: errors.FederationError, failure: SyncFailure) -> None:
    assert sync.failure_of(exc) is failure


def test_failures_are_codes_with_labels_in_words() -> None:
    assert [f.value for f in SyncFailure] == [f.name for f in SyncFailure]
    assert SyncFailure.timeout.label == "timed out"
    assert SyncFailure.bad_signature.label == "bad signature"
    assert SyncFailure.refused.label == "refused by the peer"
