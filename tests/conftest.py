"""Fixtures shared by the whole suite: a fresh node (settings, engine, admin) per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import make_engine
from infracms.services.setup import initialise
from tests.support.seed import seed_database

if TYPE_CHECKING:  # imported by pytest_plugins below, where pytest rewrites its asserts
    from tests.support.apps import AppPool

pytest_plugins = [
    "tests.support.apps",
    "tests.support.postgres",
    "tests.support.browser",
    "tests.support.hosts",
    "tests.support.redis",
]

ADMIN_PASSWORD = "correct horse battery staple"


def make_settings(data_dir: Path, database_url: str | None = None, **extra: object) -> Settings:
    """Settings for a throwaway node, with cheap password hashing."""
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        admin_password=ADMIN_PASSWORD,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest, app_pool: AppPool) -> Settings:
    """A new node's settings on SQLite; for a test with an app (`client`, `people`), in a
    data directory of the app pool's (emptied for the test): its app is built once per
    worker."""
    if {"client", "people"} & set(request.fixturenames):
        cheap = {"argon2_time_cost": 1, "argon2_memory_kib": 1024}
        return app_pool.settings(request, "var", admin_password=ADMIN_PASSWORD, **cheap)
    return make_settings(tmp_path / "var")


@pytest.fixture(scope="session")
def initialised_node(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One node initialised per session (keys, migrations, admin), copied by `engine`."""
    template = make_settings(tmp_path_factory.mktemp("initialised") / "var")
    engine = make_engine(template)
    initialise(template, engine)
    engine.dispose()
    return template


def _same_node(settings: Settings, template: Settings) -> bool:
    """Whether `settings` differ from the template's in nothing but the data dir."""
    return settings.model_dump(exclude={"data_dir"}) == template.model_dump(exclude={"data_dir"})


@pytest.fixture
def engine(settings: Settings, initialised_node: Settings) -> Iterator[Engine]:
    """The new node, initialised: keys, migrations, admin.

    A copy of the session's initialised node, which `initialise` then finds complete:
    about 20 ms instead of 200 ms of migrations and key generation for every test.
    """
    if not settings.data_dir.exists() and _same_node(settings, initialised_node):
        shutil.copytree(initialised_node.data_dir, settings.data_dir)
    seed_database(settings)  # another node (name, database): its own keys, migrated schema
    engine = make_engine(settings)
    initialise(settings, engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A new node's settings, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return make_settings(tmp_path / "var")
    url = request.getfixturevalue("fresh_postgres_database")
    return make_settings(tmp_path / "var", database_url=url)


@pytest.fixture
def any_engine(any_db_settings: Settings) -> Iterator[Engine]:
    """An initialised node on SQLite or PostgreSQL."""
    engine = make_engine(any_db_settings)
    initialise(any_db_settings, engine)
    yield engine
    engine.dispose()


@pytest.fixture
def client(settings: Settings, engine: Engine, app_pool: AppPool) -> Iterator[TestClient]:
    """An API client for the node (not signed in)."""
    app = app_pool.app(settings)
    with TestClient(app) as client:
        yield client
    app.state.engine.dispose()
