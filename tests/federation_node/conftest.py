"""Two real infracms nodes as separate processes on loopback, each with its own data
directory, database, keys, name and port; the tests drive them through their CLI and
HTTP, and read their databases to check what changed (and what did not)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models import AuditEntry
from infracms.plugins import Plugins
from infracms.services import inventory, organisations
from infracms.services.context import system_actor
from tests.support.provider import HOST_KEY, set_up_provider
from tests.support.server import live_server

DUMMY = Path(__file__).resolve().parents[1] / "dummy_module"
KEY = HOST_KEY
ADMIN = system_actor("test-setup")
CLI_TIMEOUT = 60


@dataclass
class Node:
    """One running node: its name, URL, environment, and a way into its database."""

    name: str
    data_dir: Path
    env: dict[str, str]
    base_url: str = ""
    engine: Engine | None = field(default=None, repr=False)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `infracms ARGS` as this node's administrator."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFRACMS_")}
        env.update(self.env, INFRACMS_BASE_URL=self.base_url)
        done = subprocess.run(
            [sys.executable, "-m", "infracms", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"infracms {' '.join(args)} exited {done.returncode}, expected 0:\n"
                f"{done.stdout}\n{done.stderr}"
            )
        return done

    @property
    def settings(self) -> Settings:
        """This node's settings, as its processes read them."""
        return Settings(
            data_dir=self.data_dir,
            node_name=self.name,
            base_url=self.base_url,
            argon2_time_cost=1,
            argon2_memory_kib=1024,
        )

    def session(self, write: bool = False) -> Any:
        """A session on this node's database."""
        if self.engine is None:
            self.engine = make_engine(self.settings)
        return session_scope(self.engine, write=write)

    def count(self, table: Any) -> int:
        """How many rows `table` has on this node."""
        with self.session() as session:
            return int(session.exec(select(func.count()).select_from(table)).one())

    def audit_size(self) -> int:
        """How many audit entries this node has."""
        return self.count(AuditEntry)

    def audit_actions(self) -> list[tuple[str, dict[str, Any]]]:
        """(action, payload) of every audit entry, in order."""
        import json

        with self.session() as session:
            rows = session.exec(select(AuditEntry).order_by(AuditEntry.index)).all()  # type: ignore[arg-type]
        return [(row.action, json.loads(row.payload)) for row in rows]


@pytest.fixture(scope="session")
def dummy_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test module package (`motd`, which offers a service) installed in a folder."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(DUMMY),
        ],
        check=True,
        capture_output=True,
        timeout=180,
        cwd=tmp_path_factory.mktemp("build"),
    )
    return target


def _node(name: str, root: Path, site: Path) -> Node:
    env = {
        "INFRACMS_DATA_DIR": str(root / name),
        "INFRACMS_NODE_NAME": name,
        "INFRACMS_ADMIN_PASSWORD": "correct horse battery staple",
        "INFRACMS_ARGON2_TIME_COST": "1",
        "INFRACMS_ARGON2_MEMORY_KIB": "1024",
        "PYTHONPATH": str(site),
    }
    return Node(name=name, data_dir=root / name, env=env)


@contextlib.contextmanager
def running(node: Node) -> Iterator[Node]:
    """Initialise the node (`infracms init`) and serve it until the block ends."""
    node.base_url = "http://127.0.0.1:1"  # init needs none; the server picks its port
    node.cli("init")
    with live_server(dict(node.env), env={"PYTHONPATH": node.env["PYTHONPATH"]}) as url:
        node.base_url = url
        try:
            yield node
        finally:
            if node.engine is not None:
                node.engine.dispose()


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, dummy_site: Path
) -> Iterator[tuple[Node, Node]]:
    """Nodes a.test (the provider) and b.test (the consumer), peered, A's offering published."""
    root = tmp_path_factory.mktemp("nodes")
    with (
        running(_node("a.test", root, dummy_site)) as a,
        running(_node("b.test", root, dummy_site)) as b,
    ):
        token = a.cli("peer", "invite").stdout.strip()
        b.cli("peer", "accept", token)
        _provider_setup(a)
        with b.session(write=True) as session:
            organisations.create_organisation(session=session, actor=ADMIN, data={"name": "client"})
        yield a, b


def _provider_setup(a: Node) -> None:
    with a.session(write=True) as session:
        organisations.create_organisation(session=session, actor=ADMIN, data={"name": "coop"})
    for module in ("base", "motd"):
        a.cli("module", "available", module)
    a.cli("module", "enable", "coop", "motd")
    with a.session(write=True) as session:
        inventory.create_group(
            session=session, actor=ADMIN, organisation="coop", data={"name": "pool"}
        )
    with a.session(write=True) as session:
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation="coop",
            data={"name": "h1", "address": "198.51.100.10", "groups": ["pool"]},
        )
    a.cli("offering", "publish", "coop", "motd", "motd", "--group", "pool", "--plan", "standard")


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    """The built-in modules (for the in-process provider of the offering hooks' tests)."""
    return Plugins.load(entry_points=False)


@pytest.fixture
def provider(engine: Engine, plugins: Plugins) -> Iterator[Engine]:
    """Organisation coop with postgresql and backup enabled, pools db (h1) and store (h2)."""
    set_up_provider(engine, plugins)
    yield engine


def rows(node: Node, table: Any, *where: Any) -> list[Any]:
    """Rows of `table` on a node."""
    with node.session() as session:
        return list(session.exec(select(table).where(*where)).all())


__all__ = ["Node", "Session", "rows"]
