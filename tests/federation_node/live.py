"""Nodes served by their own processes, and people signed in to them over HTTP.

``LiveNode`` is one infracms installation on this machine: its data directory (own
SQLite database and keys), name and port; ``serving`` runs ``infracms init`` then
``infracms serve`` (tests/support/server.py) until the block ends. ``LiveNode.cli`` runs
the ``infracms`` command as the node's administrator; ``sign_in`` logs a user in through
the login form and returns an API client holding a token scoped to one organisation.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, select

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models import AuditEntry
from tests.support.server import live_server

CLI_TIMEOUT = 120
SERVE_TIMEOUT = 90.0  # start-up under load (other suites on the same cores)
ADMIN_PASSWORD = "correct horse battery staple"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
T = TypeVar("T")


@dataclass
class LiveNode:
    """One node: its name, data directory, URL, and a way into its database."""

    name: str
    data_dir: Path
    base_url: str = "http://127.0.0.1:1"  # `init` needs none; the server picks its port
    engine: Engine | None = field(default=None, repr=False)

    @property
    def env(self) -> dict[str, str]:
        """The node's configuration, as its processes get it."""
        return {
            "INFRACMS_DATA_DIR": str(self.data_dir),
            "INFRACMS_NODE_NAME": self.name,
            "INFRACMS_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "INFRACMS_ARGON2_TIME_COST": "1",
            "INFRACMS_ARGON2_MEMORY_KIB": "1024",
        }

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, node_name=self.name, base_url=self.base_url)

    def cli(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `infracms ARGS` as this node's administrator."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFRACMS_")}
        env.update(self.env, INFRACMS_BASE_URL=self.base_url)
        done = subprocess.run(
            [sys.executable, "-m", "infracms", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            input=input,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{self.name}: infracms {' '.join(args)} exited {done.returncode}, expected 0:\n"
                f"{done.stdout}\n{done.stderr}"
            )
        return done

    def session(self, write: bool = False) -> Any:
        """A session on this node's database."""
        if self.engine is None:
            self.engine = make_engine(self.settings)
        return session_scope(self.engine, write=write)

    def rows(self, table: Any, *where: Any) -> list[Any]:
        """Rows of `table` on this node."""
        with self.session() as session:
            return list(session.exec(select(table).where(*where)).all())

    def audit(self) -> list[tuple[str, dict[str, Any]]]:
        """(action, payload) of every audit entry, in order."""
        with self.session() as session:
            found = _entries(session)
        return [(row.action, json.loads(row.payload)) for row in found]

    def add_user(self, username: str, password: str, organisation: str, role: str) -> None:
        """An account with a role in an organisation (through the CLI)."""
        self.cli("user", "create", username, "--password-stdin", input=password + "\n")
        self.cli("member", "set", organisation, username, role)

    def files_holding(self, secret: str) -> list[str]:
        """The files under the data directory whose bytes hold `secret`."""
        wanted = secret.encode()
        return sorted(
            str(path.relative_to(self.data_dir))
            for path in self.data_dir.rglob("*")
            if path.is_file() and wanted in path.read_bytes()
        )


def _entries(session: Session) -> list[AuditEntry]:
    return list(session.exec(select(AuditEntry).order_by(AuditEntry.index)).all())  # type: ignore[arg-type]


@contextlib.contextmanager
def serving(node: LiveNode) -> Iterator[LiveNode]:
    """Initialise the node and serve it (embedded executor, no broker) until the block ends."""
    node.cli("init")
    with live_server(node.env, timeout=SERVE_TIMEOUT) as url:
        node.base_url = url
        try:
            yield node
        finally:
            if node.engine is not None:
                node.engine.dispose()
                node.engine = None


def sign_in(
    node: LiveNode, username: str, password: str, organisation: str, role: str
) -> httpx.Client:
    """Log in through the login form, make an API token, return a client that sends it."""
    with httpx.Client(base_url=node.base_url, trust_env=False, timeout=30) as browser:
        form = browser.get("/login")
        csrf = _csrf(form.text)
        answer = browser.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": csrf, "next": "/"},
        )
        assert answer.status_code in (302, 303), f"login as {username}: {answer.status_code}"
        page_csrf = _csrf(browser.get("/").text)
        issued = browser.post(
            "/api/v1/tokens",
            json={"name": "three-nodes", "role": role, "organisation": organisation},
            headers={"x-csrf-token": page_csrf},
        )
        assert issued.status_code == 201, issued.text
    return httpx.Client(
        base_url=node.base_url,
        trust_env=False,
        timeout=60,
        headers={"Authorization": f"Bearer {issued.json()['token']}"},
    )


def _csrf(page: str) -> str:
    found = CSRF_FIELD.search(page)
    assert found, "no csrf_token field in the page"
    return found.group(1)


def ok(answer: httpx.Response, status: int = 200) -> Any:
    """The JSON body of an answer with the expected status."""
    assert answer.status_code == status, (
        f"{answer.request.method} {answer.request.url.path}: {answer.status_code}, "
        f"expected {status}: {answer.text[:2000]}"
    )
    return answer.json() if answer.content else None


def wait_for(what: str, check: Callable[[], T | None], timeout: float, every: float = 0.5) -> T:
    """`check()` once it is truthy, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")
