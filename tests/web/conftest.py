"""Fixtures of the page tests: a fresh node, and a browser-like client that signs in."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import make_engine
from infracms.plugins import Plugins
from infracms.services.setup import initialise
from tests.support.apps import AppPool
from tests.support.seed import seed_database

ADMIN_PASSWORD = "correct horse battery staple"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class Site:
    """A TestClient used like a browser: it keeps cookies and sends each form's CSRF field."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        response = self.client.get(url, follow_redirects=False, **kwargs)
        self._remember_csrf(response)
        return response

    def post(self, url: str, data: dict[str, Any], *, csrf: str | None = None) -> httpx.Response:
        """Post a form; `csrf` replaces the page's token ("" sends none)."""
        token = self.csrf if csrf is None else csrf
        body = {**data, "csrf_token": token} if token else dict(data)
        response = self.client.post(url, data=body, follow_redirects=False)
        self._remember_csrf(response)
        return response

    def login(
        self, username: str = "admin", password: str = ADMIN_PASSWORD, next: str = "/"
    ) -> httpx.Response:
        """Fill in and submit the login form."""
        self.get(f"/login?next={next}")
        response = self.post("/login", {"username": username, "password": password, "next": next})
        self.get("/")  # picks up the session's CSRF token
        return response

    def _remember_csrf(self, response: httpx.Response) -> None:
        found = CSRF_RE.search(response.text)
        if found:
            self.csrf = found.group(1)


@pytest.fixture
def settings(app_pool: AppPool, request: pytest.FixtureRequest) -> Settings:
    """A new node's settings, in a data directory of the pool's (emptied for the test)."""
    return app_pool.settings(
        request,
        "data",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        admin_password=ADMIN_PASSWORD,
    )


@pytest.fixture
def plugins() -> Plugins | None:
    """The modules the app loads: None for the node's own; a test module may override it."""
    return None


@pytest.fixture
def app(settings: Settings, plugins: Plugins | None, app_pool: AppPool) -> Iterator[FastAPI]:
    """The node's app (the pool's, built once per worker for these settings and modules)."""
    seed_database(settings)  # the migrated schema, copied: initialise does the rest
    engine = make_engine(settings)
    initialise(settings, engine)
    engine.dispose()
    application = app_pool.app(settings, plugins)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def engine(app: FastAPI) -> Engine:
    """The app's own engine, to check what was written."""
    found: Engine = app.state.engine
    return found


@pytest.fixture
def site(app: FastAPI) -> Iterator[Site]:
    """A signed-out browser."""
    with TestClient(app) as client:
        yield Site(client)


@pytest.fixture
def admin(site: Site) -> Site:
    """A browser signed in as the node's admin."""
    response = site.login()
    assert response.status_code == 303, response.text
    return site


class RecordingExecutor:
    """Stands in for the app's executor: records the runs submitted, runs nothing."""

    def __init__(self) -> None:
        self.submitted: list[uuid.UUID] = []

    def submit(self, run_id: uuid.UUID) -> None:
        self.submitted.append(run_id)


@pytest.fixture
def executor(site: Site, app: FastAPI) -> RecordingExecutor:
    """The app's executor, replaced once the app has started (no Ansible in page tests)."""
    recording = RecordingExecutor()
    app.state.executor = recording
    return recording


@pytest.fixture
def other_site(site: Site, app: FastAPI) -> Iterator[Site]:
    """A second browser, for a second user, on the app `site` started (one lifespan)."""
    client = TestClient(app)
    yield Site(client)
    client.close()
