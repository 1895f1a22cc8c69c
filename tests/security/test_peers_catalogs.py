"""Peers serve hostile catalogs, each signed with the peer's real key: too large, too
many offerings, a plan schema nested 20,000 deep, an answer that breaks the client.
The consumer refuses each without parsing it whole, records the failure on that
peer's sync status, and still syncs the well-behaved peer in the same round."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlmodel import select

from federation.documents import sign_document
from federation.encoding import CONTEXT_CATALOG, b64url_encode, canonical_json, utc_now
from federation.keys import NodeKey
from federation.limits import MAX_CATALOG_BYTES, MAX_OFFERINGS
from federation.messages import HttpRequest, HttpResponse
from federation.urls import CATALOG_PATH
from infracms.db import session_scope
from infracms.models.federation import PeerCatalog, SyncFailure, SyncOutcome
from infracms.services.context import system_actor
from infracms.services.federation import sync
from infracms.services.federation.node import FederationContext
from tests.federation.helpers import FakeNode, make_catalog, seeded_key
from tests.witness.nodes import Network, Node, pin_key, started_node

pytestmark = pytest.mark.security
DEEP = 20_000
PLACEHOLDER = "@@deep@@"


def _signed_body(payload: dict[str, Any], key: NodeKey, deep: str | None = None) -> bytes:
    """The served envelope; ``deep`` (canonical JSON text) replaces the placeholder string.

    Nested arrays are their own canonical form, so the substitution is exactly what the
    peer would have signed had its JCS library not recursed."""
    signed_text = canonical_json(payload).decode()
    body_text = canonical_json({"catalog": payload, "signature": {}}).decode()
    if deep is not None:
        signed_text = signed_text.replace(f'"{PLACEHOLDER}"', deep)
        body_text = body_text.replace(f'"{PLACEHOLDER}"', deep)
    signed = CONTEXT_CATALOG.encode() + b"\n" + signed_text.encode()
    sig = b64_signature(key, signed)
    envelope = body_text.replace(
        '"signature":{}', f'"signature":{{"keyid":"{key.key_id}","sig":"{sig}"}}'
    )
    return envelope.encode()


def b64_signature(key: NodeKey, signed: bytes) -> str:
    """The peer's Ed25519 signature of ``signed``, as a catalog carries it."""
    return b64url_encode(key.sign(signed))


def _catalog(name: str, offerings: int = 2) -> dict[str, Any]:
    return make_catalog(name, offerings=offerings).to_json_value()


def too_large(name: str, key: NodeKey) -> bytes:
    payload = _catalog(name)
    payload["notes"] = "x" * (MAX_CATALOG_BYTES + 1)  # unknown members are signed too
    sign_document(CONTEXT_CATALOG, payload, key)  # the peer can sign it
    return _signed_body(payload, key)


def too_many(name: str, key: NodeKey) -> bytes:
    payload = _catalog(name, offerings=1)
    first = payload["offerings"][0]
    payload["offerings"] = []
    for i in range(MAX_OFFERINGS + 50):
        offering = copy.deepcopy(first)
        offering["id"] = f"o{i}"
        for plan in offering["plans"]:
            plan["id"] = f"o{i}-{plan['id']}"
        payload["offerings"].append(offering)
    return _signed_body(payload, key)


def too_deep(name: str, key: NodeKey) -> bytes:
    payload = _catalog(name, offerings=1)
    payload["offerings"][0]["plans"][0]["parameters"] = {"not": PLACEHOLDER}
    return _signed_body(payload, key, deep="[" * DEEP + "]" * DEEP)


SERVED: dict[str, Callable[[str, NodeKey], bytes]] = {
    "big.test": too_large,
    "many.test": too_many,
    "deep.test": too_deep,
}


@pytest.fixture
def consumer(tmp_path: Path) -> Iterator[Node]:
    with started_node(tmp_path, "c.test", Network()) as node:
        yield node


def _peers(consumer: Node) -> dict[str, FakeNode]:
    me = consumer.key.trusted(consumer.name)
    fakes: dict[str, FakeNode] = {}
    for name in [*SERVED, "broken.test", "good.test"]:
        fake = FakeNode(name, seeded_key(f"peers {name}"), [me], clock=utc_now)
        pin_key(consumer, name, fake.key)
        fakes[name] = fake
    fakes["good.test"].publish(make_catalog("good.test"))
    for name, make in SERVED.items():
        body = make(name, fakes[name].key)
        fakes[name].route("GET", CATALOG_PATH)(_serving(body))
    return fakes


def _serving(body: bytes) -> Callable[[HttpRequest], HttpResponse]:
    def answer(request: HttpRequest) -> HttpResponse:
        return HttpResponse.build(200, [("Content-Type", "application/json")], body)

    return answer


def _transport(fakes: dict[str, FakeNode]) -> httpx.MockTransport:
    def route(request: httpx.Request) -> httpx.Response:
        host = urlsplit(str(request.url)).hostname or ""
        if host == "broken.test":
            raise RuntimeError("a peer answer that breaks the client in an unforeseen way")
        return fakes[host].handle(request)

    return httpx.MockTransport(route)


def test_hostile_catalogs_are_refused_recorded_and_the_round_goes_on(consumer: Node) -> None:
    fakes = _peers(consumer)
    ctx = FederationContext.load(consumer.settings, transport=_transport(fakes))
    with session_scope(consumer.engine, write=True) as session:
        results = sync.sync_catalogs(session=session, actor=system_actor("test"), ctx=ctx)
    by_peer = {result.peer: result for result in results}
    assert set(by_peer) == set(fakes)
    assert by_peer["good.test"].outcome is SyncOutcome.updated
    expected = {
        "big.test": (SyncFailure.malformed, f"over {MAX_CATALOG_BYTES} bytes"),
        "many.test": (SyncFailure.malformed, "offerings"),
        "deep.test": (SyncFailure.malformed, "nested"),
        "broken.test": (SyncFailure.error, "RuntimeError"),
    }
    for peer, (failure, words) in expected.items():
        result = by_peer[peer]
        assert (result.outcome, result.failure) == (SyncOutcome.failed, failure), result
        assert words in (result.error or ""), result.error
    with session_scope(consumer.engine) as session:
        rows = {row.peer_id: row for row in session.exec(select(PeerCatalog)).all()}
        status = {s.peer: s for s in sync.catalog_status(session=session, actor=system_actor("t"))}
    assert len(rows) == len(fakes)
    for peer in expected:
        assert status[peer].outcome is SyncOutcome.failed and status[peer].version is None
    assert status["good.test"].offerings == 2
