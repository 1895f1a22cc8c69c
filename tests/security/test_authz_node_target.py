"""The node is not a target: an operator (who may set addresses) tries to make runs ssh
into the node itself, with the node's key and the organisation's secrets.

Through the API with an operator's token, hosts at loopback, unspecified, link-local,
`localhost`, a name that resolves to loopback, and the node's own addresses are refused
with a field error and nothing stored; a node admin's INFRACMS_ALLOW_NODE_TARGET=true
allows them. A host whose address reaches the node when the run starts (a name can
resolve differently later) fails the run before anything connects."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from infracms.app import create_app
from infracms.db import session_scope
from infracms.models.host import Host
from infracms.services import inventory
from infracms.services.targets import node_addresses
from tests.helpers import ADMIN, audit_size, count
from tests.integration.node import ORG, Node, make_node
from tests.security._authz_support import token_for

pytestmark = [pytest.mark.security]

NODE_ADDRESSES = [
    "127.0.0.1",
    "127.3.2.1",
    "localhost",
    "LocalHost.",
    "db.localhost",
    "::1",
    "::ffff:127.0.0.1",
    "0.0.0.0",
    "::",
    "169.254.169.254",  # where clouds serve instance metadata
    "fe80::1",
    socket.gethostname(),  # resolves to the node itself
]


def _own() -> list[str]:
    return sorted(str(ip) for ip in node_addresses() if not ip.is_loopback)


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return make_node(tmp_path / "var")


def _operator(node: Node, allow: bool) -> Iterator[TestClient]:
    settings = node.settings.model_copy(update={"allow_node_target": allow})
    token = token_for(node, f"olga{int(allow)}", "operator")
    with TestClient(create_app(settings)) as client:
        client.headers["authorization"] = f"Bearer {token}"
        yield client


@pytest.fixture
def operator(node: Node) -> Iterator[TestClient]:
    yield from _operator(node, allow=False)


def test_node_addresses_are_refused_with_a_field_error(node: Node, operator: TestClient) -> None:
    before = count(node.engine, Host), audit_size(node.engine)
    for number, address in enumerate([*NODE_ADDRESSES, *_own()]):
        body = {"name": f"n{number}", "address": address}
        response = operator.post(f"/api/v1/orgs/{ORG}/hosts", json=body)
        assert response.status_code == 422, (address, response.text)
        field = {e["field"]: e["message"] for e in response.json()["errors"]}["address"]
        assert "the node itself is not a target" in field, field
        assert "INFRACMS_ALLOW_NODE_TARGET" in field
    assert (count(node.engine, Host), audit_size(node.engine)) == before


def test_an_address_cannot_be_moved_onto_the_node(node: Node, operator: TestClient) -> None:
    created = operator.post(f"/api/v1/orgs/{ORG}/hosts", json={"name": "h", "address": "10.9.9.9"})
    assert created.status_code == 201, created.text
    for address in ("127.0.0.1", "localhost", "169.254.1.1", "::1"):
        response = operator.patch(f"/api/v1/orgs/{ORG}/hosts/h", json={"address": address})
        assert response.status_code == 422, (address, response.text)
    assert node.host_row("h").address == "10.9.9.9"


def test_a_node_admin_may_allow_them(node: Node) -> None:
    for client in _operator(node, allow=True):
        for number, address in enumerate(("127.0.0.1", "localhost", "::1", "169.254.1.1")):
            body = {"name": f"n{number}", "address": address}
            response = client.post(f"/api/v1/orgs/{ORG}/hosts", json=body)
            assert response.status_code == 201, (address, response.text)


def test_a_run_refuses_a_host_that_reaches_the_node_now(node: Node) -> None:
    # saved while the node admin allowed it (or a name that resolved elsewhere then)
    with session_scope(node.engine, write=True) as session:
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation=ORG,
            data={"name": "loop", "address": "localhost"},
            allow_node_target=True,
        )
    node.define("base-loop", "base", "loop", {"timezone": "UTC", "unattended_upgrades": False})
    run = node.execute(node.create_run("plan"))
    assert run.status == "failed", run
    assert "loop (localhost) is a loopback name" in (run.error or ""), run.error
    assert "nothing was run" in (run.error or "")
    assert node.events(run.id) == [], "nothing connected"
