"""Nodes in one process for the witness tests: real apps, joined by an in-memory network.

Each node has its own data directory, SQLite database and key, and is served by its
own FastAPI app through a ``TestClient``. ``Network`` is an ``httpx.MockTransport``
that hands each request to the app of the node its URL names, so peer clients reach
other nodes as they would over HTTPS. ``pin`` makes two nodes peers the way an
accepted invitation leaves them: each holds the other's name, URL and key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from federation.keys import NodeKey
from infracms.app import create_app
from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models.federation import Peer, PeerKey, PeerStatus
from infracms.services.federation.node import FederationContext
from infracms.services.setup import initialise
from tests.audit_store.conftest import append_entries
from tests.conftest import ADMIN_PASSWORD, make_settings
from tests.support.apps import AppPool
from tests.support.seed import seed_database


@dataclass
class Network:
    """Routes requests to the node whose base URL they name."""

    clients: dict[str, TestClient] = field(default_factory=dict)
    after_answer: Callable[[httpx.Request], None] | None = None

    def transport(self) -> httpx.MockTransport:
        """A transport for peer clients: into the named node's app, no real sockets."""
        return httpx.MockTransport(self._route)

    def _route(self, request: httpx.Request) -> httpx.Response:
        client = self.clients.get(request.url.host)
        if client is None:
            raise httpx.ConnectError(f"no node at {request.url.host}", request=request)
        path = request.url.raw_path.decode("ascii")
        answer = client.request(
            request.method,
            path,
            headers=list(request.headers.multi_items()),
            content=request.content,
        )
        if self.after_answer is not None:
            self.after_answer(request)
        return httpx.Response(
            answer.status_code, headers=answer.headers.multi_items(), content=answer.content
        )


@dataclass
class Node:
    """One node: its settings, database, app client and federation context."""

    name: str
    settings: Settings
    engine: Engine
    client: TestClient
    network: Network

    @property
    def ctx(self) -> FederationContext:
        """This node's federation context, reaching other nodes through the network."""
        return FederationContext.load(self.settings, transport=self.network.transport())

    @property
    def key(self) -> NodeKey:
        return self.ctx.key

    def append(self, count: int, tag: str = "e") -> None:
        """Append entries to this node's audit log."""
        append_entries(self.engine, count, tag=tag)


@contextlib.contextmanager
def started_node(
    place: Path | AppPool, name: str, network: Network, database_url: str | None = None
) -> Iterator[Node]:
    """A fresh node called `name` at https://`name`, on the network until the block ends:
    in a folder of `place`, or in a data directory (and on an app) of the pool's."""
    with contextlib.ExitStack() as stack:
        if isinstance(place, AppPool) and database_url is None:
            fields = {**CHEAP, "admin_password": ADMIN_PASSWORD, **node_fields(name)}
            settings = stack.enter_context(place.lease(name, **fields))
            app = _app(settings, place.app)
        else:
            assert isinstance(place, Path), "a pool serves SQLite nodes only"
            settings = make_settings(place / name, database_url, **node_fields(name))
            app = _app(settings, create_app)
        yield stack.enter_context(_serving(app, settings, network))


CHEAP = {"argon2_time_cost": 1, "argon2_memory_kib": 1024}  # as make_settings hashes


def node_fields(name: str) -> dict[str, object]:
    """The settings that make a node `name` at https://`name`."""
    return {"node_name": name, "base_url": f"https://{name}"}


def _app(settings: Settings, build: Callable[[Settings], FastAPI]) -> FastAPI:
    """The node initialised in its data directory, and its app."""
    seed_database(settings)
    engine = make_engine(settings)
    initialise(settings, engine)
    engine.dispose()
    return build(settings)


@contextlib.contextmanager
def _serving(app: FastAPI, settings: Settings, network: Network) -> Iterator[Node]:
    name = settings.node_name
    engine = make_engine(settings)
    app.state.federation_transport = network.transport()
    with TestClient(app, base_url=f"https://{name}") as client:
        # FastAPI builds each route on first match; nodes of one process answering their
        # first requests at once race on shared parameter objects: build them now.
        assert client.get("/no/such/path").status_code == 404
        network.clients[name] = client
        try:
            yield Node(name, settings, engine, client, network)
        finally:
            network.clients.pop(name, None)
    app.state.engine.dispose()
    engine.dispose()


def pin(node: Node, other: Node) -> None:
    """Make `node` hold `other` as a peer: its name, URL and key (as after an invitation)."""
    pin_key(node, other.name, other.key)


def pin_key(node: Node, name: str, key: NodeKey) -> None:
    """Make `node` hold a peer called `name` at https://`name` with `key` pinned."""
    with session_scope(node.engine, write=True) as session:
        peer = Peer(name=name, base_url=f"https://{name}", invited_by_us=True)
        session.add(peer)
        session.flush()
        session.add(PeerKey(key_id=key.key_id, peer_id=peer.id, public_key=key.public_key_b64))
        session.commit()


def set_status(node: Node, other: str, status: PeerStatus) -> None:
    """Suspend, resume or revoke a peer directly."""
    with session_scope(node.engine, write=True) as session:
        peer = session.exec(select(Peer).where(Peer.name == other)).one()
        peer.status = status
        session.add(peer)
        session.commit()


__all__ = ["Network", "Node", "pin", "pin_key", "set_status", "started_node"]
