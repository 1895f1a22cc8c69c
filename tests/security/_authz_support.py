"""Shared parts of the authz attacks: a node with an editor and an operator who hold API
tokens, served for real, and a look at what the database holds."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from infracms.db import session_scope
from infracms.services import auth, users
from infracms.services.common import organisation_by_name
from infracms.services.context import Actor
from tests.helpers import audit_size, make_user
from tests.integration.node import ORG, Node, Server, served

ROLES = ("editor", "operator")


def token_for(node: Node, username: str, role: str) -> str:
    """A user holding `role` in the node's organisation, and an API token of theirs."""
    make_user(node.engine, node.settings, username, **{ORG: role})
    with session_scope(node.engine, write=True) as session:
        user = users.user_by_name(session, username=username)
        roles = {organisation_by_name(session, name=ORG).id: role}
        actor = Actor(kind="user", id=str(user.id), name=username, roles=roles, user_id=user.id)
        issued = auth.issue_token(
            session=session, actor=actor, data={"name": "t", "role": role, "organisation": ORG}
        )
    return issued.token


@dataclass
class Api:
    """A served node and one httpx client per role, each with its bearer token."""

    node: Node
    server: Server
    clients: dict[str, httpx.Client]

    def __getitem__(self, role: str) -> httpx.Client:
        return self.clients[role]


@contextlib.contextmanager
def served_api(node: Node, workdir: Path, env: dict[str, str] | None = None) -> Iterator[Api]:
    """Serve `node` and give an editor's and an operator's API clients."""
    tokens = {role: token_for(node, f"{role}-{uuid.uuid4().hex[:6]}", role) for role in ROLES}
    with served(node, workdir, env) as server:
        clients = {
            role: httpx.Client(
                base_url=f"{server.base_url}/api/v1/orgs/{ORG}",
                trust_env=False,
                timeout=httpx.Timeout(30, read=600),
                headers={"authorization": f"Bearer {token}"},
            )
            for role, token in tokens.items()
        }
        try:
            yield Api(node=node, server=server, clients=clients)
        finally:
            for client in clients.values():
                client.close()


def host_state(node: Node, name: str) -> dict[str, Any]:
    """The host's stored connection facts (what an attack must not change)."""
    host = node.host_row(name)
    return {
        "address": host.address,
        "ssh_port": host.ssh_port,
        "ssh_user": host.ssh_user,
        "credential_id": host.credential_id,
        "host_key": host.host_key,
    }


def state(node: Node, name: str) -> tuple[dict[str, Any], int]:
    """A host's facts and the audit log's size, to compare before and after."""
    return host_state(node, name), audit_size(node.engine)


def audit_payloads(node: Node, action: str) -> list[dict[str, Any]]:
    """The payloads of the audit entries of `action`, oldest first."""
    return [json.loads(entry.payload) for entry in node.audit(action)]
