"""A group scope follows group membership: an editor (host.write, group.write) tries to
bring an organisation host into the reach of a credential scoped to a group, by putting
the host into the group or a group under it, or by nesting the host's group under it.

Through the API with the editor's token each is refused with 403 naming the credential,
and nothing changes (groups, parents, audit log); an operator may do the same. Changes
that widen no scope stay open to editors. Attaching a credential to a host outside its
scope is refused when attached (422 on `credential`), and a scope change that would
leave out a host connecting with the credential is refused (409 listing the hosts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.integration.node import Node, make_node
from tests.security._scopes_support import build, client, snapshot

pytestmark = [pytest.mark.security]

# (method, path, body): each would let db-root be sent to web1
WIDENING = [
    ("patch", "hosts/web1", {"groups": ["web", "db"]}),  # into the scoped group
    ("patch", "hosts/web1", {"groups": ["db-replicas"]}),  # into a group nested under it
    ("patch", "groups/web", {"parent": "db"}),  # web1's group nested under it
    ("patch", "groups/web", {"parent": "db-replicas"}),  # ... at any depth
    ("post", "groups/db/hosts", {"hosts": ["web1"]}),  # from the group's side
    ("post", "groups/db-replicas/hosts", {"hosts": ["web1"]}),
]


@pytest.fixture
def node(tmp_path: Path) -> Node:
    built = make_node(tmp_path / "var")
    build(built)
    return built


@pytest.fixture
def editor(node: Node) -> Iterator[TestClient]:
    yield from client(node, "editor")


@pytest.fixture
def operator(node: Node) -> Iterator[TestClient]:
    yield from client(node, "operator")


def _refused(response: object, status: int, *words: str) -> str:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    detail: str = response.json()["detail"]  # type: ignore[attr-defined]
    for word in words:
        assert word in detail, detail
    return detail


@pytest.mark.parametrize(("method", "path", "body"), WIDENING)
def test_an_editor_cannot_widen_a_group_scope(
    node: Node, editor: TestClient, method: str, path: str, body: dict[str, object]
) -> None:
    before = snapshot(node)
    response = getattr(editor, method)(path, json=body)
    _refused(response, 403, "credential db-root to web1", "credential.use")
    assert snapshot(node) == before


def test_an_editor_cannot_widen_it_in_two_steps(node: Node, editor: TestClient) -> None:
    # a new group under the scoped one reaches no host yet: allowed; a host into it is not
    made = editor.post("groups", json={"name": "cache", "parent": "db"})
    assert made.status_code == 201, made.text
    before = snapshot(node)
    _refused(editor.patch("hosts/web1", json={"groups": ["cache"]}), 403, "db-root")
    assert snapshot(node) == before
    # a top-level group takes web1 (widens nothing), but cannot then be nested under db
    assert editor.post("groups", json={"name": "side"}).status_code == 201
    assert editor.patch("hosts/web1", json={"groups": ["side"]}).status_code == 200
    before = snapshot(node)
    _refused(editor.patch("groups/side", json={"parent": "cache"}), 403, "db-root to web1")
    assert snapshot(node) == before


def test_an_editor_still_manages_groups_that_widen_no_scope(node: Node, editor: TestClient) -> None:
    assert editor.patch("groups/web", json={"parent": "staging"}).status_code == 200
    assert editor.patch("hosts/web1", json={"groups": ["staging"]}).status_code == 200
    # db1 is in db already: another group under db does not widen db-root's reach
    assert editor.patch("hosts/db1", json={"groups": ["db", "db-replicas"]}).status_code == 200
    assert editor.patch("groups/db-replicas", json={"parent": None}).status_code == 200
    assert editor.post("groups", json={"name": "archive", "parent": "db"}).status_code == 201
    after = snapshot(node)
    assert after["hosts"]["web1"] == (["staging"], None)
    assert after["groups"]["web"] == "staging"


@pytest.mark.parametrize(("method", "path", "body"), WIDENING)
def test_an_operator_may_widen_it(
    node: Node, operator: TestClient, method: str, path: str, body: dict[str, object]
) -> None:
    response = getattr(operator, method)(path, json=body)
    assert response.status_code == 200, response.text
    assert snapshot(node)["audit"] > 0


def test_a_credential_is_refused_when_attached_outside_its_scope(
    node: Node, operator: TestClient
) -> None:
    before = snapshot(node)
    attempts = [
        operator.post(
            "hosts", json={"name": "h9", "address": "10.20.0.9", "credential": "db-root"}
        ),
        operator.patch("hosts/web1", json={"credential": "db-root"}),
        operator.patch("hosts/db1", json={"groups": ["web"], "credential": None}),  # control
    ]
    for response in attempts[:2]:
        assert response.status_code == 422, response.text
        field = {e["field"]: e["message"] for e in response.json()["errors"]}["credential"]
        assert "db-root may be sent only to groups db" in field, field
    assert attempts[2].status_code == 200, attempts[2].text
    assert snapshot(node)["hosts"]["web1"] == before["hosts"]["web1"]
    assert "h9" not in snapshot(node)["hosts"]
    # in the scope (the new groups count): attached
    body = {"name": "h9", "address": "10.20.0.9", "credential": "db-root", "groups": ["db"]}
    assert operator.post("hosts", json=body).status_code == 201
    both = {"credential": "db-root", "groups": ["db-replicas"]}
    assert operator.patch("hosts/web1", json=both).status_code == 200
    assert snapshot(node)["hosts"]["web1"] == (["db-replicas"], "db-root")


def test_a_scope_change_may_not_strand_a_host_using_the_credential(
    node: Node, operator: TestClient
) -> None:
    before = snapshot(node)
    for scope in ({"hosts": ["web1"]}, {"groups": ["web"]}, {"groups": ["db-replicas"]}):
        response = operator.patch("credentials/db-root", json={"scope": scope})
        _refused(response, 409, "db-root is the connection credential of db1")
        field = {e["field"]: e["message"] for e in response.json()["errors"]}
        assert "db1" in field["scope"]
    assert snapshot(node) == before
    wider = {"groups": ["db", "web"]}
    assert operator.patch("credentials/db-root", json={"scope": wider}).status_code == 200
    assert operator.patch("credentials/db-root", json={"scope": None}).status_code == 200
