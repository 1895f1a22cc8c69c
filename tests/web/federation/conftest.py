"""Two nodes in one process for the federation pages: b.test (the app the page tests
browse, a consumer) and a.test (a provider), joined by an in-memory network.

Each node is a real app with its own data directory, database and key, at
https://<name>. ``Network`` is an ``httpx.MockTransport`` that hands a peer client's
request to the app its URL names, so the nodes sign, verify and answer each other as
they would over HTTPS. State is set up with the services, as an admin would through
the CLI; the pages under test are driven through ``Site``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models.run import RunStatus
from infracms.modules import BUILTIN_MODULES
from infracms.plugins import Plugins
from infracms.services import inventory, modules, organisations, runs
from infracms.services.federation import consumer, instances, offerings, peering, sync
from infracms.services.federation.node import FederationContext
from infracms.services.setup import initialise
from tests.helpers import ADMIN
from tests.support.apps import AppPool
from tests.support.seed import seed_database
from tests.web.conftest import ADMIN_PASSWORD, RecordingExecutor, Site

CONSUMER, PROVIDER = "b.test", "a.test"
OFFERING, SMALL, LARGE = "coop-webspace", "coop-webspace.small", "coop-webspace.large"
PRICES = [
    {"name": "small", "price": {"amount": "4.50", "currency": "EUR", "unit": "month"},
     "capacity": 10, "region": "eu-west"},
    {"name": "large", "price": {"amount": "30", "currency": "EUR", "unit": "month"},
     "capacity": 2, "region": "eu-north"},
]  # fmt: skip


@dataclass
class Network:
    """Routes each request to the app of the node its URL names."""

    clients: dict[str, TestClient] = field(default_factory=dict)

    def transport(self) -> httpx.MockTransport:
        """A transport for peer clients: into the named node's app, no sockets."""
        return httpx.MockTransport(self._route)

    def _route(self, request: httpx.Request) -> httpx.Response:
        client = self.clients.get(request.url.host)
        if client is None:
            raise httpx.ConnectError(f"no node at {request.url.host}", request=request)
        answer = client.request(
            request.method,
            request.url.raw_path.decode("ascii"),
            headers=list(request.headers.multi_items()),
            content=request.content,
        )
        return httpx.Response(
            answer.status_code, headers=answer.headers.multi_items(), content=answer.content
        )


@dataclass
class Node:
    """A node other than the one under test: its settings, database, and an admin browser."""

    name: str
    settings: Settings
    app: FastAPI
    engine: Engine
    admin: Site
    executor: RecordingExecutor
    network: Network

    @property
    def ctx(self) -> FederationContext:
        """The node's federation context, reaching other nodes through the network."""
        return FederationContext.load(self.settings, transport=self.network.transport())


def node_settings(pool: AppPool, request: pytest.FixtureRequest, name: str) -> Settings:
    """A node called `name` at https://`name`, with cheap password hashing, in a data
    directory of the pool's."""
    return pool.settings(
        request,
        name,
        node_name=name,
        base_url=f"https://{name}",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        admin_password=ADMIN_PASSWORD,
    )


@pytest.fixture
def network() -> Network:
    return Network()


@pytest.fixture
def settings(app_pool: AppPool, request: pytest.FixtureRequest) -> Settings:
    """The node under test is b.test."""
    return node_settings(app_pool, request, CONSUMER)


@pytest.fixture
def plugins() -> Plugins:
    """The built-in modules and `webspace`, which offers a service."""
    return Plugins.load(
        builtins=(*BUILTIN_MODULES, "tests.web.federation.module"), entry_points=False
    )


@pytest.fixture
def app(app: FastAPI, network: Network) -> FastAPI:
    """b.test's app, reaching its peers through the network."""
    app.state.federation_transport = network.transport()
    return app


@pytest.fixture
def site(app: FastAPI, network: Network) -> Iterator[Site]:
    """A signed-out browser on b.test (over https: its cookies are Secure)."""
    with TestClient(app, base_url=f"https://{CONSUMER}") as client:
        assert client.get("/no/such/page").status_code == 404  # build the routes first
        network.clients[CONSUMER] = TestClient(app, base_url=f"https://{CONSUMER}")
        yield Site(client)
        network.clients.pop(CONSUMER).close()


@pytest.fixture
def other_site(site: Site, app: FastAPI) -> Iterator[Site]:
    """A second browser on b.test, for a second user."""
    client = TestClient(app, base_url=f"https://{CONSUMER}")
    yield Site(client)
    client.close()


@pytest.fixture
def provider(
    app_pool: AppPool,
    request: pytest.FixtureRequest,
    network: Network,
    plugins: Plugins,
    site: Site,
) -> Iterator[Node]:
    """a.test, serving on the network, with its admin signed in to its pages."""
    settings = node_settings(app_pool, request, PROVIDER)
    seed_database(settings)
    engine = make_engine(settings)
    initialise(settings, engine)
    app = app_pool.app(settings, plugins)
    app.state.federation_transport = network.transport()
    base = f"https://{PROVIDER}"
    with TestClient(app, base_url=base) as client:  # runs the app's lifespan, once
        assert client.get("/no/such/page").status_code == 404
        network.clients[PROVIDER] = client
        executor = RecordingExecutor()
        app.state.executor = executor
        browser = TestClient(app, base_url=base)
        admin = Site(browser)
        assert admin.login().status_code == 303
        try:
            yield Node(PROVIDER, settings, app, app.state.engine, admin, executor, network)
        finally:
            network.clients.pop(PROVIDER, None)
            browser.close()
    app.state.engine.dispose()
    engine.dispose()


def context_of(app: FastAPI) -> FederationContext:
    """The federation context of the app under test."""
    return FederationContext.load(app.state.settings, transport=app.state.federation_transport)


def invite(node: Node) -> str:
    """An invitation token made by `node`'s admin."""
    with session_scope(node.engine, write=True) as session:
        return peering.create_invitation(session=session, actor=ADMIN, ctx=node.ctx).token


def publish(node: Node, plugins: Plugins, **terms: Any) -> None:
    """Organisation `coop` on `node` publishes `webspace` on its pool of one host."""
    with session_scope(node.engine, write=True) as session:
        organisations.create_organisation(session=session, actor=ADMIN, data={"name": "coop"})
    offer(node, plugins, "webspace", "webspace", "pool", **terms)


def offer(
    node: Node, plugins: Plugins, module: str, offering: str, group: str, **terms: Any
) -> None:
    """`coop` on `node` publishes a module's offering on a new group of one new host."""
    with session_scope(node.engine, write=True) as session:
        scope: dict[str, Any] = {"session": session, "actor": ADMIN, "organisation": "coop"}
        inventory.create_group(**scope, data={"name": group})
        hosts = inventory.list_hosts(**scope).total
        host = {"name": f"h{hosts + 1}", "address": f"198.51.100.{hosts + 10}", "groups": [group]}
        inventory.create_host(**scope, data=host)
        for name in ("base", module):
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )
        modules.enable_module(**scope, plugins=plugins, name=module)
        data = {"module": module, "offering": offering, "group": group, "plans": PRICES}
        offerings.publish_offering(**scope, plugins=plugins, data={**data, **terms})


@pytest.fixture
def peered(app: FastAPI, engine: Engine, provider: Node, plugins: Plugins) -> Node:
    """b.test peered with a.test, a.test's `coop` publishing web space, b.test synced."""
    publish(provider, plugins)
    ctx = context_of(app)
    with session_scope(engine, write=True) as session:
        peering.accept_invitation(session=session, actor=ADMIN, ctx=ctx, token=invite(provider))
    with session_scope(engine, write=True) as session:
        results = sync.sync_catalogs(session=session, actor=ADMIN, ctx=ctx)
    assert [(r.peer, r.error) for r in results] == [(PROVIDER, None)]
    with session_scope(engine, write=True) as session:
        organisations.create_organisation(session=session, actor=ADMIN, data={"name": "clinic"})
    return provider


def ask(app: FastAPI, engine: Engine, site: str = "blog") -> uuid.UUID:
    """b.test's `clinic` requests the small plan; the provider's id of the request."""
    data = {
        "peer": PROVIDER,
        "offering_id": "coop-webspace",
        "plan_id": SMALL,
        "parameters": {"site": site, "disk_gb": 3},
    }
    with session_scope(engine, write=True) as session:
        asked = consumer.request_service(
            session=session, actor=ADMIN, ctx=context_of(app), organisation="clinic", data=data
        )
    return asked.id


def provided(node: Node) -> uuid.UUID:
    """The id of the newest request on the provider."""
    with session_scope(node.engine) as session:
        return instances.list_requests(session=session, actor=ADMIN, organisation="coop")[0].id


def finish(node: Node, run_id: uuid.UUID, status: RunStatus = RunStatus.succeeded) -> None:
    """End a run on `node` as its executor would."""
    with session_scope(node.engine, write=True) as session:
        assert runs.claim_run(session, run_id=run_id, worker="page-test") is not None
    with session_scope(node.engine, write=True) as session:
        runs.finish_run(session, run_id=run_id, status=status, rc=0, recap={}, stdout_sha256=None)
