"""Shared fixtures of the audit security tests: a real node app, an owner's API token,
and SQL run on the node's SQLite database as a node admin with a shell would."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine

from infracms.app import create_app
from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models import Role
from infracms.services import auth
from infracms.services.setup import initialise
from tests.conftest import make_settings
from tests.helpers import make_org, make_user, password_of
from tests.support.cli import run_infracms


@dataclass
class Node:
    """A node's app client (an owner's bearer token), its engine and settings."""

    client: TestClient
    engine: Engine
    settings: Settings

    def sql(self, *statements: str) -> None:
        """Run SQL on the node's database directly, outside infracms."""
        outside = create_engine(self.settings.resolved_database_url)
        try:
            with outside.begin() as connection:
                for statement in statements:
                    connection.exec_driver_sql(statement)
        finally:
            outside.dispose()


def owner_token(engine: Engine, settings: Settings, username: str, org: str) -> str:
    """An API token of `username`, owner of `org`."""
    make_user(engine, settings, username, **{org: Role.owner})
    with session_scope(engine, write=True) as session:
        login = auth.login(
            session=session,
            settings=settings,
            username=username,
            password=password_of(username),
            client="test",
        )
        signed_in = auth.session_info(session=session, raw_token=login.token)
        assert signed_in is not None
        issued = auth.issue_token(
            session=session,
            actor=signed_in.actor,
            data={"name": "t", "role": "owner", "organisation": org},
        )
        session.commit()
    return issued.token


@pytest.fixture(name="node")
def node_fixture(settings: Settings, engine: Engine) -> Iterator[Node]:
    """A node serving its API, with organisation `clinic` and its owner `olga`'s token."""
    yield from _serve(settings, engine)


@pytest.fixture(name="pg_node")
def pg_node_fixture(tmp_path: Path, fresh_postgres_database: str) -> Iterator[Node]:
    """The same on PostgreSQL."""
    settings = make_settings(tmp_path / "var", database_url=fresh_postgres_database)
    engine = make_engine(settings)
    initialise(settings, engine)
    try:
        yield from _serve(settings, engine)
    finally:
        engine.dispose()


def _serve(settings: Settings, engine: Engine) -> Iterator[Node]:
    make_org(engine, "clinic")
    app = create_app(settings)
    token = owner_token(engine, settings, "olga", "clinic")
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["authorization"] = f"Bearer {token}"
        yield Node(client, engine, settings)
    app.state.engine.dispose()


@dataclass
class Shell:
    """`infracms` run as the node's administrator runs it, configured by the environment
    (in the test's process: ``tests.support.cli``)."""

    env: dict[str, str]
    data_dir: Path

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_infracms(args, env=self.env, input=stdin)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        """Run and insist it worked; its stdout."""
        done = self(*args, stdin=stdin)
        assert done.returncode == 0, (args, done.returncode, done.stderr)
        return done.stdout

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, node_name="coop.example")

    def sql(self, *statements: str) -> None:
        """SQL on the node's database, as a node admin with a shell would run it."""
        connection = sqlite3.connect(self.data_dir / "infracms.db")
        try:
            for statement in statements:
                connection.execute(statement)
            connection.commit()
        finally:
            connection.close()


@pytest.fixture(name="shell")
def shell_fixture(tmp_path: Path) -> Shell:
    """A node made with `infracms init`, an organisation `clinic` and its owner `olga`."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INFRACMS_")},
        "INFRACMS_DATA_DIR": str(tmp_path / "var"),
        "INFRACMS_NODE_NAME": "coop.example",
        "INFRACMS_ARGON2_TIME_COST": "1",
        "INFRACMS_ARGON2_MEMORY_KIB": "1024",
    }
    shell = Shell(env, tmp_path / "var")
    shell.ok("init")
    shell.ok("org", "create", "clinic")
    shell.ok("user", "create", "olga", "--password-stdin", stdin="olga-long-password\n")
    shell.ok("member", "set", "clinic", "olga", "owner")
    return shell
