"""Two infracms nodes peer, sync catalogs, refuse bad requests, and provision through
the Open Service Broker API with consent (real processes on loopback)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from federation.encoding import canonical_json, utc_now
from federation.httpsig import new_nonce, sign_request
from federation.keys import NodeKey
from federation.messages import HttpRequest
from infracms.keys import load_identity
from infracms.models.federation import (
    ConsumerService,
    InstanceStatus,
    Peer,
    PeerCatalog,
    ServiceBinding,
    ServiceInstance,
)
from infracms.models.run import Run, RunStatus
from infracms.services import runs
from infracms.services.federation import service_secrets, sync
from infracms.services.federation.node import FederationContext
from tests.federation_node.conftest import ADMIN, Node, rows

pytestmark = pytest.mark.integration
WAIT = 30.0
OFFERING, PLAN = "coop-motd", "coop-motd.standard"


def signed(node: Node, method: str, url: str, body: dict | None = None, **kw) -> HttpRequest:
    """A request signed with `node`'s key, as a peer sends it."""
    raw = canonical_json(body) if body is not None else b""
    headers = [("X-Broker-API-Version", "2.17")]
    if raw:
        headers.append(("Content-Type", "application/json"))
    key = kw.pop("key", None) or NodeKey(load_identity(node.settings))
    return sign_request(
        HttpRequest.build(method, url, headers, raw),
        key=key,
        created=kw.pop("created", utc_now()),
        nonce=kw.pop("nonce", new_nonce()),
    ).request


def send(request: HttpRequest) -> httpx.Response:
    with httpx.Client(trust_env=False) as client:
        return client.request(
            request.method, request.url, headers=list(request.headers), content=request.body
        )


def provision_body(b: Node, parameters: dict) -> dict:
    return {
        "service_id": OFFERING,
        "plan_id": PLAN,
        "parameters": parameters,
        "context": {"platform": "infracms", "node": b.name, "organization": "x"},
    }


def wait_for(what: str, check, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


def test_peered_both_ways(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    assert "b.test  active" in a.cli("peer", "list").stdout
    assert "a.test  active" in b.cli("peer", "list").stdout
    actions = [action for action, _ in a.audit_actions()]
    assert "peer.invite" in actions and "peer.join" in actions
    assert "peer.accept" in [action for action, _ in b.audit_actions()]


def test_invitation_works_once(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    token = a.cli("peer", "invite").stdout.strip()
    again = b.cli("peer", "accept", token, check=False)
    assert again.returncode != 0 and "already a peer" in again.stderr


def test_catalog_sync_then_unchanged(nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    first = b.cli("catalog", "sync").stdout
    assert "a.test:" in first
    assert "a.test: unchanged" in b.cli("catalog", "sync").stdout  # 304
    found = json.loads(b.cli("catalog", "search", "--kind", "service", "--json").stdout)
    assert [(o["peer"], o["offering_id"]) for o in found] == [("a.test", OFFERING)]
    nothing = b.cli("catalog", "search", "--kind", "database")
    assert nothing.stdout == ""
    assert "no offerings match; the 1 held are of kind: service" in nothing.stderr


@pytest.mark.parametrize("how", ["forged", "replayed", "expired", "wrong-key"])
def test_bad_requests_refused_nothing_changed(nodes: tuple[Node, Node], how: str) -> None:
    a, b = nodes
    url = f"{a.base_url}/v2/service_instances/{uuid.uuid4()}?accepts_incomplete=true"
    body = provision_body(b, {"message": "hi"})
    request = signed(b, "PUT", url, body)
    if how == "forged":
        request = HttpRequest(
            request.method, request.url, request.headers, request.body.replace(b"hi", b"ho")
        )
    elif how == "replayed":
        assert send(request).status_code == 202
    elif how == "expired":
        request = signed(b, "PUT", url, body, created=utc_now() - timedelta(minutes=10))
    else:
        request = signed(b, "PUT", url, body, key=NodeKey.generate())
    before = (a.audit_size(), a.count(ServiceInstance))
    answer = send(request)
    assert answer.status_code == 401, answer.text
    expected = {
        "forged": "DigestMismatch",
        "replayed": "NonceReused",
        "expired": "SignatureExpired",
        "wrong-key": "UnknownKey",
    }[how]
    assert answer.json()["error"] == expected
    assert (a.audit_size(), a.count(ServiceInstance)) == before


def test_broker_version_and_platform_credentials(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    token = a.cli("broker", "add", "platform-one").stdout.strip()
    with httpx.Client(trust_env=False) as client:
        missing = client.get(
            f"{a.base_url}/v2/catalog", headers={"Authorization": f"Bearer {token}"}
        )
        assert missing.status_code == 412
        ok = client.get(
            f"{a.base_url}/v2/catalog",
            headers={"Authorization": f"Bearer {token}", "X-Broker-API-Version": "2.17"},
        )
        assert ok.status_code == 200
        assert ok.json()["services"][0]["id"] == OFFERING
        bad = client.get(
            f"{a.base_url}/v2/catalog",
            headers={"Authorization": "Bearer osb_nope", "X-Broker-API-Version": "2.17"},
        )
        assert bad.status_code == 401


def _ctx(node: Node, transport: httpx.BaseTransport) -> FederationContext:
    return FederationContext.load(node.settings, transport=transport)


def test_tampered_catalog_and_down_peer_keep_last_good(nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    b.cli("catalog", "sync")
    held = rows(b, PeerCatalog)[0]
    real = httpx.HTTPTransport()

    def tamper(request: httpx.Request) -> httpx.Response:
        request.headers.pop("if-none-match", None)
        answer = real.handle_request(request)
        answer.read()
        body = answer.content.replace(b'"motd"', b'"MOTD"', 1).replace(
            b"coop-motd", b"evil-motd", 1
        )
        return httpx.Response(200, headers=answer.headers, content=body)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    # a tampered body fails the answer's signed Content-Digest before the catalog's own check
    for transport, error in (
        (httpx.MockTransport(tamper), "DigestMismatch"),
        (httpx.MockTransport(down), "PeerUnreachable"),
    ):
        with b.session(write=True) as session:
            [result] = sync.sync_catalogs(session=session, actor=ADMIN, ctx=_ctx(b, transport))
        assert result.error is not None and error in result.error, result
        kept = rows(b, PeerCatalog)[0]
        assert (kept.body, kept.version) == (held.body, held.version)
        assert kept.error is not None and kept.error_at is not None
    real.close()
    assert "a.test: unchanged" in b.cli("catalog", "sync").stdout
    assert rows(b, PeerCatalog)[0].error is None


def test_suspended_then_revoked_peer_refused(nodes: tuple[Node, Node], tmp_path_factory) -> None:
    a, b = nodes
    b.cli("catalog", "sync")
    a.cli("peer", "suspend", "b.test")
    try:
        refused = b.cli("catalog", "sync", check=False)
        assert refused.returncode == 1 and "401" in refused.stderr, refused.stderr
        assert rows(b, PeerCatalog)[0].body is not None  # last good copy kept
    finally:
        a.cli("peer", "resume", "b.test")
    assert "a.test:" in b.cli("catalog", "sync").stdout
    # revocation is final: done last, on a throwaway third peer of A's
    # (b.test stays peered for the provisioning tests)


def _request(b: Node, message: str) -> str:
    out = b.cli(
        "service",
        "request",
        "client",
        "a.test",
        OFFERING,
        PLAN,
        "--parameters",
        json.dumps({"message": message}),
    ).stdout
    return out.split()[0]


def _provider_row(a: Node, service_id: str) -> ServiceInstance:
    [row] = rows(a, ServiceInstance, ServiceInstance.instance_id == service_id)
    return row


def _show(b: Node, service_id: str) -> dict:
    return json.loads(b.cli("service", "show", "client", service_id).stdout)


def test_declined_request_fails(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    b.cli("catalog", "sync")
    service_id = _request(b, "please")
    row = _provider_row(a, service_id)
    assert row.status is InstanceStatus.pending
    assert "awaiting approval" in _show(b, service_id)["description"]
    a.cli("provision", "decline", "coop", str(row.id), "--reason", "no room")
    shown = _show(b, service_id)
    assert shown["status"] == "failed" and "no room" in shown["description"]


def test_approved_request_bind_deprovision_usage(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    b.cli("catalog", "sync")
    service_id = _request(b, "hello from b")
    row = _provider_row(a, service_id)
    a.cli("provision", "approve", "coop", str(row.id))
    row = _provider_row(a, service_id)
    assert row.status is InstanceStatus.provisioning and row.run_id is not None
    # h1 is no real host: the apply run fails, and last_operation says so
    run = wait_for("run ends", lambda: _finished(a, row.run_id))
    shown = _show(b, service_id)
    assert run.status is RunStatus.failed and shown["status"] == "failed", shown
    assert str(row.run_id) in shown["description"]
    # stand in for a host that applied it (the three-node test uses real hosts)
    with a.session(write=True) as session:
        runs.finish_run(
            session,
            run_id=row.run_id,
            status=RunStatus.succeeded,
            rc=0,
            recap={},
            stdout_sha256=None,
        )
    with b.session(write=True) as session:
        found = session.get(ConsumerService, uuid.UUID(service_id))
        found.status = "in_progress"  # the consumer asks again
        session.add(found)
        session.commit()
    shown = _show(b, service_id)
    assert shown["status"] == "succeeded" and shown["has_credentials"], shown
    credentials = json.loads(b.cli("service", "credentials", "client", service_id).stdout)
    # motd has no offering_credentials hook: where it runs, and no invented secret
    assert credentials == {
        "hosts": ["198.51.100.10"],
        "instance_id": service_id,
        "offering": OFFERING,
        "plan": PLAN,
    }, credentials
    [binding] = rows(a, ServiceBinding)
    assert "198.51.100.10" not in binding.sealed
    [consumer_row] = rows(b, ConsumerService, ConsumerService.id == uuid.UUID(service_id))
    assert consumer_row.sealed and "198.51.100.10" not in consumer_row.sealed
    deprovisioned = b.cli("service", "deprovision", "client", service_id).stdout
    assert "ended" in deprovisioned or "deprovisioning" in deprovisioned
    assert _provider_row(a, service_id).status in (
        InstanceStatus.ended,
        InstanceStatus.deprovisioning,
    )
    usage = a.cli("usage", "export", "b.test").stdout.splitlines()
    assert usage[0].startswith("client,organisation,offering_id,plan_id,instance_id,from,to")
    line = next(row for row in usage if service_id in row)
    assert line.startswith(f"peer:b.test,client,{OFFERING},{PLAN},") and not line.endswith(",")
    # both logs hold the cross-referenced entries
    provider = [p for action, p in a.audit_actions() if p.get("instance_id") == service_id]
    consumer = [p for action, p in b.audit_actions() if p.get("instance_id") == service_id]
    assert len(provider) >= 4 and len(consumer) >= 3
    assert any(p.get("operation") for p in consumer)


def _finished(node: Node, run_id: uuid.UUID) -> Run | None:
    [run] = rows(node, Run, Run.id == run_id)
    return run if run.status.finished else None


def test_a_service_changed_through_the_cli(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    b.cli("catalog", "sync")
    service_id = _request(b, "first words")
    row = _provider_row(a, service_id)
    a.cli("provision", "approve", "coop", str(row.id))  # h1 is no real host: the run fails
    wait_for("run ends", lambda: _finished(a, _provider_row(a, service_id).run_id))
    assert _show(b, service_id)["status"] == "failed"
    changed = b.cli(
        "service", "update", "client", service_id, "--parameters", '{"message": "second words"}'
    ).stdout
    assert changed.split()[:2] == [service_id, "updating"], changed
    updated = _provider_row(a, service_id)
    assert updated.parameters == {"message": "second words"}
    assert updated.operation.startswith("update-") and updated.run_id != row.run_id
    with a.session() as session:
        assert service_secrets.published_settings(session, row=updated)["message"] == "second words"
    wait_for("update run ends", lambda: _finished(a, updated.run_id))
    assert _show(b, service_id)["status"] == "failed"  # the change's run failed too
    refused = b.cli("service", "update", "client", service_id, "--plan", "nope", check=False)
    assert refused.returncode == 2 and "plan_id" in refused.stderr, refused.stderr
    # the peer down: the CLI says so and nothing changes here
    moved = _move_peer(b, "a.test", "http://127.0.0.1:9")
    try:
        down = b.cli(
            "service", "update", "client", service_id, "--parameters", '{"message": "x"}',
            check=False,
        )  # fmt: skip
        assert down.returncode == 1 and "error: PeerUnreachable" in down.stderr, down.stderr
    finally:
        _move_peer(b, "a.test", moved)
    [kept] = rows(b, ConsumerService, ConsumerService.id == uuid.UUID(service_id))
    assert kept.parameters == {"message": "second words"} and kept.status == "failed"


def _move_peer(node: Node, name: str, base_url: str) -> str:
    """Pin another URL for a peer (one that does not answer); the one it had."""
    with node.session(write=True) as session:
        peer = session.exec(select(Peer).where(Peer.name == name)).one()
        before, peer.base_url = peer.base_url, base_url
        session.add(peer)
        session.commit()
    return before
