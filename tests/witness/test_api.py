"""The witness over HTTP: signed add-checkpoint requests and answers, and the admin API."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from federation.errors import NonceReused, UnknownKey, WitnessRefused
from federation.httpsig import new_nonce, sign_request, verify_response
from federation.keys import NodeKey, StaticKeyResolver
from federation.messages import HttpRequest, HttpResponse
from federation.urls import ADD_CHECKPOINT_PATH
from federation.witness import CosignatureVerifier
from federation.witness_api import AddCheckpointRequest
from infracms.models.base import utcnow
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import sign_in
from tests.witness.logs import Tree
from tests.witness.nodes import Node

URL = "https://b.example" + ADD_CHECKPOINT_PATH


def b_witness(node_b: Node) -> CosignatureVerifier:
    return CosignatureVerifier("b.example/witness", node_b.key.public_key)


def signed(request: AddCheckpointRequest, key: NodeKey, nonce: str | None = None) -> HttpRequest:
    message = HttpRequest.build(
        "POST", URL, [("Content-Type", "text/plain; charset=utf-8")], request.to_bytes()
    )
    return sign_request(message, key=key, created=utcnow(), nonce=nonce or new_nonce()).request


def post(client: TestClient, message: HttpRequest) -> HttpResponse:
    answer = client.post(ADD_CHECKPOINT_PATH, headers=list(message.headers), content=message.body)
    return HttpResponse.build(answer.status_code, answer.headers.multi_items(), answer.content)


def test_a_peer_client_gets_a_signed_verified_cosignature(peered: tuple[Node, Node]) -> None:
    node_a, node_b = peered
    request = Tree(5).request(node_a.key, 0)
    with node_a.ctx.client(
        "b.example", "https://b.example", [node_b.key.trusted("b.example")]
    ) as client:
        (cosignature,) = client.submit_checkpoint(request, witness=b_witness(node_b))
    b_witness(node_b).verify(request.checkpoint_text, cosignature)


def test_a_409_reaches_the_client_with_the_witness_size(peered: tuple[Node, Node]) -> None:
    node_a, node_b = peered
    keys = [node_b.key.trusted("b.example")]
    with node_a.ctx.client("b.example", "https://b.example", keys) as client:
        client.submit_checkpoint(Tree(5).request(node_a.key, 0), witness=b_witness(node_b))
        with pytest.raises(WitnessRefused) as refused:
            client.submit_checkpoint(Tree(9).request(node_a.key, 0), witness=b_witness(node_b))
    assert (refused.value.status_code, refused.value.latest_size) == (409, 5)


def test_every_answer_is_signed_by_the_witness(peered: tuple[Node, Node]) -> None:
    node_a, node_b = peered
    message = signed(Tree(5).request(node_a.key, 0), node_a.key)
    answer = post(node_b.client, message)
    assert answer.status_code == 200
    keys = StaticKeyResolver([node_b.key.trusted("b.example")])
    assert verify_response(answer, request=message, keys=keys, now=utcnow()).peer == "b.example"
    conflict = signed(Tree(9).request(node_a.key, 0), node_a.key)
    answer = post(node_b.client, conflict)
    assert (answer.status_code, answer.body) == (409, b"5\n")
    assert answer.header("content-type") == "text/x.tlog.size"
    verify_response(answer, request=conflict, keys=keys, now=utcnow())


def test_a_replayed_request_is_refused_401_and_changes_nothing(peered: tuple[Node, Node]) -> None:
    node_a, node_b = peered
    message = signed(Tree(5).request(node_a.key, 0), node_a.key)
    assert post(node_b.client, message).status_code == 200
    replay = post(node_b.client, message)
    assert replay.status_code == 401
    assert json.loads(replay.body)["error"] == NonceReused.__name__


def test_an_unsigned_or_unknown_signer_is_refused_401(peered: tuple[Node, Node]) -> None:
    node_a, node_b = peered
    body = Tree(5).request(node_a.key, 0).to_bytes()
    unsigned = node_b.client.post(ADD_CHECKPOINT_PATH, content=body)
    assert unsigned.status_code == 401
    stranger = post(node_b.client, signed(Tree(5).request(node_a.key, 0), NodeKey.generate()))
    assert stranger.status_code == 401
    assert json.loads(stranger.body)["error"] == UnknownKey.__name__


def test_the_witness_key_is_public(node_b: Node) -> None:
    answer = node_b.client.get("/api/v1/witness/key")
    assert answer.status_code == 200
    assert answer.text.strip() == b_witness(node_b).vkey


def test_admins_read_the_logs_witnessed_and_the_refusals(peered: tuple[Node, Node]) -> None:
    node_a, node_b = peered
    assert node_b.client.get("/api/v1/witness/logs").status_code == 401
    post(node_b.client, signed(Tree(5).request(node_a.key, 0), node_a.key))
    post(node_b.client, signed(Tree(5, tag="fork").request(node_a.key, 5), node_a.key))
    sign_in(node_b.client, node_b.engine, node_b.settings, "admin", ADMIN_PASSWORD)
    (log,) = node_b.client.get("/api/v1/witness/logs").json()
    assert (log["origin"], log["size"]) == ("a.example", 5)
    page = node_b.client.get("/api/v1/witness/conflicts", params={"origin": "a.example"}).json()
    assert page["total"] == 1 and page["items"][0]["kind"] == "fork"
    assert page["items"][0]["held_checkpoint"] == log["checkpoint"]
    none = node_b.client.get("/api/v1/witness/conflicts", params={"origin": "c.example"}).json()
    assert none["total"] == 0
