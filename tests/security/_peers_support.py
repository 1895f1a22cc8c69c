"""A provider node (a.test) and a peer (b.test) that holds a valid, pinned key.

The provider is a real app with its own SQLite database and key, served in-process
(``tests/witness/nodes.started_node``); it publishes a managed PostgreSQL offering on
pool ``db`` and an offsite-backup offering on pool ``store``. The peer signs each
request with its own key (``federation.httpsig.sign_request``), exactly as a peer
client does, so every refusal asserted here is made to a well-signed request.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import func, select

from federation.encoding import canonical_json, utc_now
from federation.httpsig import new_nonce, sign_request
from federation.keys import NodeKey
from federation.messages import HttpRequest
from infracms.db import session_scope
from infracms.models import AuditEntry
from infracms.models.federation import ServiceInstance
from infracms.services.context import system_actor
from infracms.services.federation import offerings
from tests.support.provider import HOST_KEY, set_up_provider
from tests.witness.nodes import Network, Node, pin_key, started_node

ADMIN = system_actor("test-setup")
PEER = "b.test"
PEER_KEY = NodeKey.from_seed(hashlib.sha256(b"peers: the adversary b.test").digest())
POSTGRES, BACKUP = "coop-managed-postgresql", "coop-offsite-backup"
BACKUP_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJhY2t1cGtleWJhY2t1cGtleWJhY2t1cGtleWI0"


@dataclass
class Provider:
    """The provider node and what a peer's requests may have left in it."""

    node: Node

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        key: NodeKey = PEER_KEY,
    ) -> httpx.Response:
        """A request signed with the peer's key, as its client sends it."""
        content = raw if raw is not None else (canonical_json(body) if body is not None else b"")
        headers = [("X-Broker-API-Version", "2.17")]
        if content:
            headers.append(("Content-Type", "application/json"))
        signed = sign_request(
            HttpRequest.build(method, f"https://{self.node.name}{path}", headers, content),
            key=key,
            created=utc_now(),
            nonce=new_nonce(),
        ).request
        return self.node.client.request(
            method, path, headers=list(signed.headers), content=signed.body
        )

    def provision(
        self, parameters: dict[str, Any], offering: str = POSTGRES, **context: Any
    ) -> httpx.Response:
        """``PUT /v2/service_instances/<new id>`` for the offering's plan ``small``."""
        return self.send(
            "PUT",
            f"/v2/service_instances/{uuid.uuid4()}?accepts_incomplete=true",
            provision_body(parameters, offering, **context),
        )

    def instances(self) -> int:
        """How many service instances (pending or not) the provider holds."""
        return self._count(ServiceInstance)

    def audit_entries(self) -> int:
        """How many audit entries the provider holds."""
        return self._count(AuditEntry)

    def stored(self) -> tuple[int, int]:
        """(instances, audit entries): what a refused request must leave as it was."""
        return self.instances(), self.audit_entries()

    def set(self, **settings: Any) -> None:
        """Change settings of the running app (as if it had been started with them)."""
        app = self.node.client.app
        app.state.settings = app.state.settings.model_copy(update=settings)  # type: ignore[attr-defined]

    def _count(self, table: Any) -> int:
        with session_scope(self.node.engine) as session:
            return int(session.exec(select(func.count()).select_from(table)).one())


def provision_body(parameters: dict[str, Any], offering: str, **context: Any) -> dict[str, Any]:
    """A provision request as a peer's node sends it."""
    return {
        "service_id": offering,
        "plan_id": f"{offering}.small",
        "parameters": parameters,
        "context": {"platform": "infracms", "node": PEER, "organization": "client", **context},
    }


def backup_parameters(name: str) -> dict[str, Any]:
    """Parameters of the offsite-backup plan."""
    return {"name": name, "ssh_public_key": BACKUP_KEY}


@contextlib.contextmanager
def provider_node(tmp_path: Path) -> Iterator[Provider]:
    """a.test with both offerings published and b.test pinned as an active peer."""
    network = Network()
    with started_node(tmp_path, "a.test", network) as node:
        _publish(node)
        pin_key(node, PEER, PEER_KEY)
        yield Provider(node)


def _publish(node: Node) -> None:
    plugins = node.client.app.state.plugins  # type: ignore[attr-defined]
    set_up_provider(node.engine, plugins)
    for module, offering, group in (
        ("postgresql", "managed-postgresql", "db"),
        ("backup", "offsite-backup", "store"),
    ):
        with session_scope(node.engine, write=True) as session:
            offerings.publish_offering(
                session=session,
                actor=ADMIN,
                plugins=plugins,
                organisation="coop",
                data={
                    "module": module,
                    "offering": offering,
                    "group": group,
                    "plans": [{"name": "small"}],
                },
            )


__all__ = ["BACKUP", "HOST_KEY", "PEER", "PEER_KEY", "POSTGRES", "Provider", "provider_node"]
