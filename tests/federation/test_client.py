"""The peer client against a fake peer node served by httpx.MockTransport."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from federation.catalogs import sign_catalog
from federation.client import Peer, PeerClient
from federation.encoding import canonical_json
from federation.errors import (
    BrokerError,
    CatalogRollback,
    MalformedMessage,
    MissingComponent,
    PeerAnswerError,
    PeerTimeout,
    PeerUnreachable,
    RedirectRefused,
    SchemeRefused,
    SignatureInvalid,
    UnknownKey,
    URLRefused,
    WitnessRefused,
)
from federation.keys import StaticKeyResolver
from federation.messages import HttpRequest, HttpResponse
from federation.models import (
    BindRequest,
    LastOperationState,
    ProvisionRequest,
)
from federation.rotation import rotate_key
from federation.urls import check_peer_url
from federation.witness import Cosigner
from federation.witness_api import (
    AddCheckpointRequest,
    format_cosignatures,
    format_size_conflict,
    split_note,
)
from tests.federation.helpers import A_KEY, B_KEY, C_KEY, NOW, FakeNode, make_catalog

JSON = [("Content-Type", "application/json")]


def _peer_a() -> FakeNode:
    node = FakeNode("a.example", A_KEY, peers=[B_KEY.trusted("b.example")])
    node.publish(make_catalog())
    return node


def _client(
    node: FakeNode, *, keys: StaticKeyResolver | None = None, **options: object
) -> PeerClient:
    peer = Peer(node.name, node.base_url, keys or node.keys)
    return PeerClient(
        peer=peer, key=B_KEY, transport=node.transport(), clock=lambda: NOW, **options
    )  # type: ignore[arg-type]


def _json(status: int, value: object) -> HttpResponse:
    return HttpResponse.build(status, JSON, json.dumps(value).encode())


# --- catalog sync ---------------------------------------------------------------------


def test_catalog_sync_fetches_then_gets_304_with_if_none_match() -> None:
    node = _peer_a()
    with _client(node) as client:
        first = client.fetch_catalog()
        second = client.fetch_catalog(held=first.catalog)
    assert first.changed and first.catalog is not None and first.catalog.catalog == make_catalog()
    assert not second.changed and second.catalog is first.catalog
    assert node.seen[1].header("if-none-match") == first.catalog.etag
    assert node.seen[0].header("if-none-match") is None


def test_changed_catalog_is_fetched_and_verified() -> None:
    node = _peer_a()
    with _client(node) as client:
        first = client.fetch_catalog()
        node.publish(make_catalog(version=2, offerings=3))
        second = client.fetch_catalog(held=first.catalog)
    assert (
        second.changed and second.catalog is not None and len(second.catalog.catalog.offerings) == 3
    )


def test_tampered_catalog_is_refused_and_the_caller_keeps_its_copy() -> None:
    node = _peer_a()
    with _client(node) as client:
        held = client.fetch_catalog().catalog
        tampered = json.loads(sign_catalog(make_catalog(version=2), A_KEY).to_bytes())
        tampered["catalog"]["offerings"][0]["name"] = "Free lunch"
        body = canonical_json(tampered)

        @node.route("GET", "/federation/v1/catalog")
        def _tampered(request: HttpRequest) -> HttpResponse:
            return HttpResponse.build(200, JSON, body)

        with pytest.raises(SignatureInvalid):
            client.fetch_catalog(held=held)


def test_older_catalog_is_refused() -> None:
    node = _peer_a()
    node.publish(make_catalog(version=5))
    with _client(node) as client:
        held = client.fetch_catalog().catalog
        node.publish(make_catalog(version=4))
        with pytest.raises(CatalogRollback):
            client.fetch_catalog(held=held)


def test_unsigned_answer_is_refused() -> None:
    node = _peer_a()
    node.sign_answers = False
    with _client(node) as client, pytest.raises(MissingComponent, match="Signature-Input"):
        client.fetch_catalog()


def test_answer_signed_by_an_impostor_is_refused() -> None:
    impostor = FakeNode("a.example", C_KEY, peers=[B_KEY.trusted("b.example")])
    impostor.publish(make_catalog())
    with _client(impostor, keys=_peer_a().keys) as client, pytest.raises(UnknownKey):
        client.fetch_catalog()


def test_requests_are_signed_and_the_peer_refuses_replays() -> None:
    node = _peer_a()
    with _client(node) as client:
        client.fetch_catalog()
    replay = node.handle(httpx.Request("GET", node.seen[0].url, headers=list(node.seen[0].headers)))
    assert replay.status_code == 401 and "already used" in replay.json()["description"]


# --- transport rules ------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_refused(status: int) -> None:
    node = _peer_a()

    @node.route("GET", "/federation/v1/catalog")
    def _moved(request: HttpRequest) -> HttpResponse:
        return HttpResponse.build(status, [("Location", "https://evil.example/catalog")])

    with _client(node) as client, pytest.raises(RedirectRefused) as caught:
        client.fetch_catalog()
    assert (caught.value.status_code, caught.value.location) == (
        status,
        "https://evil.example/catalog",
    )
    assert len(node.seen) == 1


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://a.example", False),
        ("http://a.example", True),
        ("http://127.0.0.1:8000", False),
        ("http://10.0.0.1", True),
        ("ftp://a.example", True),
        ("file:///etc/passwd", True),
    ],
)
def test_schemes_other_than_https_are_refused(url: str, allow: bool) -> None:
    with pytest.raises(
        SchemeRefused if "://" in url and not url.startswith("file") else URLRefused
    ):
        PeerClient(
            peer=Peer("a.example", url, _peer_a().keys), key=B_KEY, allow_loopback_http=allow
        )


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://[::1]:8000", "http://localhost:8000"]
)
def test_loopback_http_is_allowed_only_when_asked(url: str) -> None:
    check_peer_url(url, allow_loopback_http=True)
    with pytest.raises(SchemeRefused):
        check_peer_url(url)


def test_urls_with_credentials_are_refused() -> None:
    with pytest.raises(URLRefused, match="credentials"):
        check_peer_url("https://user:pw@a.example")


def test_timeouts_and_connection_failures_are_typed() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    for handler, error in ((timeout, PeerTimeout), (refused, PeerUnreachable)):
        peer = Peer("a.example", "https://a.example", _peer_a().keys)
        transport = httpx.MockTransport(handler)
        with PeerClient(peer=peer, key=B_KEY, transport=transport) as client, pytest.raises(error):
            client.fetch_catalog()


def test_error_answers_are_typed_even_unsigned() -> None:
    node = _peer_a()

    @node.route("GET", "/federation/v1/catalog")
    def _down(request: HttpRequest) -> HttpResponse:
        return HttpResponse.build(503, JSON, b'{"description": "maintenance"}')

    with _client(node) as client, pytest.raises(PeerAnswerError, match="503") as caught:
        client.fetch_catalog()
    assert caught.value.status_code == 503


# --- provisioning (OSB) ---------------------------------------------------------------

INSTANCE = "/v2/service_instances/inst-1"


def _broker(node: FakeNode) -> FakeNode:
    state = {"polls": 0}

    @node.route("PUT", INSTANCE)
    def _provision(request: HttpRequest) -> HttpResponse:
        assert request.header("x-broker-api-version") == "2.17"
        assert "accepts_incomplete=true" in request.url
        assert json.loads(request.body)["plan_id"] == "o0-small"
        return _json(202, {"operation": "op-1"})

    @node.route("GET", f"{INSTANCE}/last_operation")
    def _poll(request: HttpRequest) -> HttpResponse:
        state["polls"] += 1
        assert "operation=op-1" in request.url
        if state["polls"] == 1:
            return _json(
                200, {"state": "in progress", "description": "awaiting approval by a.example"}
            )
        return _json(200, {"state": "succeeded"})

    @node.route("PUT", f"{INSTANCE}/service_bindings/bind-1")
    def _bind(request: HttpRequest) -> HttpResponse:
        return _json(201, {"credentials": {"host": "db.a.example", "password": "s3cret"}})

    @node.route("DELETE", f"{INSTANCE}/service_bindings/bind-1")
    def _unbind(request: HttpRequest) -> HttpResponse:
        return _json(200, {})

    @node.route("DELETE", INSTANCE)
    def _deprovision(request: HttpRequest) -> HttpResponse:
        assert "service_id=o0" in request.url and "plan_id=o0-small" in request.url
        return _json(202, {"operation": "op-2"})

    return node


def test_provision_poll_bind_unbind_deprovision() -> None:
    node = _broker(_peer_a())
    with _client(node) as client:
        provisioned = client.provision(
            "inst-1", ProvisionRequest(service_id="o0", plan_id="o0-small")
        )
        assert provisioned.pending and provisioned.body.operation == "op-1"
        first = client.last_operation(
            "inst-1", service_id="o0", plan_id="o0-small", operation="op-1"
        )
        assert first.state is LastOperationState.IN_PROGRESS and "approval" in (
            first.description or ""
        )
        assert (
            client.last_operation("inst-1", operation="op-1").state is LastOperationState.SUCCEEDED
        )
        bound = client.bind("inst-1", "bind-1", BindRequest(service_id="o0", plan_id="o0-small"))
        assert bound.status_code == 201 and bound.body.credentials == {
            "host": "db.a.example",
            "password": "s3cret",
        }
        assert (
            client.unbind("inst-1", "bind-1", service_id="o0", plan_id="o0-small").status_code
            == 200
        )
        gone = client.deprovision("inst-1", service_id="o0", plan_id="o0-small")
        assert gone.pending and gone.body.operation == "op-2"


def test_osb_error_bodies_become_broker_errors() -> None:
    node = _peer_a()

    @node.route("PUT", INSTANCE)
    def _conflict(request: HttpRequest) -> HttpResponse:
        return _json(422, {"error": "AsyncRequired", "description": "needs accepts_incomplete"})

    with _client(node) as client, pytest.raises(BrokerError, match="AsyncRequired") as caught:
        client.provision("inst-1", ProvisionRequest(service_id="o0", plan_id="o0-small"))
    assert (caught.value.status_code, caught.value.error) == (422, "AsyncRequired")


def test_gone_deprovision_is_not_an_error() -> None:
    node = _peer_a()

    @node.route("DELETE", INSTANCE)
    def _gone(request: HttpRequest) -> HttpResponse:
        return _json(410, {})

    with _client(node) as client:
        assert client.deprovision("inst-1", service_id="o0", plan_id="o0-small").status_code == 410


def test_osb_catalog_is_read() -> None:
    from federation.broker import osb_catalog

    node = _peer_a()

    @node.route("GET", "/v2/catalog")
    def _catalog(request: HttpRequest) -> HttpResponse:
        return HttpResponse.build(
            200, JSON, canonical_json(osb_catalog(make_catalog()).to_json_value())
        )

    with _client(node) as client:
        assert [s.id for s in client.osb_catalog().services] == ["o0", "o1"]


# --- witnessing and key rotation ------------------------------------------------------

CHECKPOINT = "a.example/audit\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u2014 a.example/audit AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"


def _witness_node(*signers: Cosigner, text: str | None = None) -> FakeNode:
    node = _peer_a()

    @node.route("POST", "/federation/v1/witness/add-checkpoint")
    def _cosign(request: HttpRequest) -> HttpResponse:
        submitted = AddCheckpointRequest.parse(request.body)
        signed = text or submitted.checkpoint_text
        body = format_cosignatures([s.cosign(signed, 1772366400) for s in signers])
        return HttpResponse.build(200, [("Content-Type", "text/plain; charset=utf-8")], body)

    return node


WITNESS = Cosigner("a.example/witness", A_KEY)
STRANGER = Cosigner("c.example/witness", C_KEY)


def test_checkpoint_submission_returns_the_witness_cosignatures() -> None:
    with _client(_witness_node(STRANGER, WITNESS)) as client:
        request = AddCheckpointRequest(0, (), CHECKPOINT)
        (cosignature,) = client.submit_checkpoint(request, witness=WITNESS.verifier())
    assert cosignature.name == "a.example/witness"
    WITNESS.verifier().verify(split_note(CHECKPOINT)[0], cosignature)


def test_cosignature_over_another_checkpoint_is_refused() -> None:
    other = "a.example/audit\n6\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    with _client(_witness_node(WITNESS, text=other)) as client, pytest.raises(SignatureInvalid):
        client.submit_checkpoint(
            AddCheckpointRequest(0, (), CHECKPOINT), witness=WITNESS.verifier()
        )


def test_answer_without_the_witness_cosignature_is_refused() -> None:
    with _client(_witness_node(STRANGER)) as client, pytest.raises(MalformedMessage):
        client.submit_checkpoint(
            AddCheckpointRequest(0, (), CHECKPOINT), witness=WITNESS.verifier()
        )


def test_witness_conflict_carries_its_latest_size() -> None:
    node = _peer_a()

    @node.route("POST", "/federation/v1/witness/add-checkpoint")
    def _conflict(request: HttpRequest) -> HttpResponse:
        return HttpResponse.build(
            409, [("Content-Type", "text/x.tlog.size")], format_size_conflict(3)
        )

    with _client(node) as client, pytest.raises(WitnessRefused, match="latest size is 3") as caught:
        client.submit_checkpoint(
            AddCheckpointRequest(0, (), CHECKPOINT), witness=WITNESS.verifier()
        )
    assert (caught.value.status_code, caught.value.latest_size) == (409, 3)


def test_key_rotation_is_sent_signed_by_the_old_key() -> None:
    node = _peer_a()
    received: list[bytes] = []

    @node.route("POST", "/federation/v1/key-rotation")
    def _rotation(request: HttpRequest) -> HttpResponse:
        received.append(request.body)
        return HttpResponse.build(204)

    rotation = rotate_key(
        node="b.example",
        old=B_KEY,
        new=C_KEY,
        issued_at=NOW,
        overlap=timedelta(days=1),
    )
    with _client(node) as client:
        client.send_key_rotation(rotation)
    assert received == [rotation.to_bytes()]
