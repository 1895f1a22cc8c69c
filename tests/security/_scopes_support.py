"""Shared parts of the scope attacks: an organisation with a credential scoped to a
group, API clients per role (in-process), and a look at what the inventory holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from infracms.app import create_app
from infracms.db import session_scope
from infracms.keys import load_keyring
from infracms.services import credentials, inventory
from tests.helpers import ADMIN, audit_size
from tests.integration.node import ORG, Node
from tests.security._authz_support import token_for

# db-root may go to the hosts of `db` (and of groups under it); db1 connects with it
GROUPS = [("db", None), ("db-replicas", "db"), ("web", None), ("staging", None)]
HOSTS = [("db1", ["db"], "db-root"), ("web1", ["web"], None), ("spare", [], None)]


def build(node: Node) -> None:
    """The organisation's groups, hosts and the scoped credential `db-root`."""
    with session_scope(node.engine, write=True) as session:
        for name, parent in GROUPS:
            data = {"name": name, "parent": parent}
            inventory.create_group(session=session, actor=ADMIN, organisation=ORG, data=data)
        credentials.create_credential(
            session=session,
            actor=ADMIN,
            keyring=load_keyring(node.settings),
            organisation=ORG,
            data={
                "name": "db-root",
                "kind": "password",
                "secret": "db-root-secret",
                "scope": {"groups": ["db"]},
            },
        )
        for number, (name, groups, credential) in enumerate(HOSTS):
            data = {"name": name, "address": f"10.20.0.{number + 1}", "groups": groups}
            if credential:
                data["credential"] = credential
            inventory.create_host(session=session, actor=ADMIN, organisation=ORG, data=data)


def client(node: Node, role: str) -> Iterator[TestClient]:
    """An API client (in-process) holding a token of a user with `role` in the org."""
    token = token_for(node, f"{role}-scopes", role)
    with TestClient(create_app(node.settings)) as api:
        api.headers["authorization"] = f"Bearer {token}"
        api.base_url = api.base_url.join(f"/api/v1/orgs/{ORG}/")
        yield api


def snapshot(node: Node) -> dict[str, Any]:
    """What an attack must not change: hosts' groups and credentials, groups' parents,
    the credential's scope, and the audit log's size."""
    with Session(node.engine) as session:
        hosts = inventory.list_hosts(session=session, actor=ADMIN, organisation=ORG).items
        groups = inventory.list_groups(session=session, actor=ADMIN, organisation=ORG)
        scope = credentials.describe(
            session,
            credentials.get_credential(
                session=session, actor=ADMIN, organisation=ORG, name="db-root"
            ),
        ).scope
    return {
        "hosts": {h.name: (h.groups, h.credential) for h in hosts},
        "groups": {g.name: g.parent for g in groups},
        "scope": scope.model_dump() if scope else None,
        "audit": audit_size(node.engine),
    }
