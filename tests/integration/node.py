"""The end-to-end run tests' shared parts: a node, its server, host checks.

`Node` is an initialised node (SQLite under a temporary data dir) with organisation
`clinic` and every built-in module enabled; it sets up hosts, credentials and
definitions through the services, as the API would, and runs a run in this process
with ``execute_run`` (the function both executors call). `served` starts the real
``infracms serve`` on that node (the embedded executor) with its output in a file, and
`ApiClient` talks to it signed in, following runs through their server-sent events.

Hosts are real (tests/support/hosts.py); see conftest.py for how tests share them.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.keys import load_keyring, load_node_ssh_key, node_ssh_key_path
from infracms.models import AuditEntry
from infracms.models.host import Host
from infracms.models.run import Run, RunEvent
from infracms.orchestration.execute import RunContext, execute_run
from infracms.plugins import Plugins
from infracms.services import (
    auth,
    credentials,
    definitions,
    inventory,
    modules,
    runs,
    secret_sources,
)
from infracms.services.setup import initialise
from tests.conftest import ADMIN_PASSWORD, make_settings
from tests.helpers import ADMIN, make_org
from tests.support.hosts import TestHost
from tests.support.server import REPO_ROOT, settings_env

ORG = "clinic"
BUILT_IN = (
    "base",
    "users",
    "ssh_hardening",
    "firewall",
    "nginx_site",
    "postgresql",
    "backup",
    "wireguard",
    "calendars",
)
RUN_TIMEOUT = 900  # seconds a run may take before ansible-runner stops it
SERVER_READY = 30.0


@dataclass
class Node:
    """An initialised node and the services a sysadmin would use on it."""

    settings: Settings
    engine: Engine
    plugins: Plugins
    org: str = ORG

    def add_credential(self, name: str, secret: str, kind: str = "password") -> None:
        """Store a credential (sealed) in the organisation."""
        with session_scope(self.engine, write=True) as session:
            credentials.create_credential(
                session=session,
                actor=ADMIN,
                keyring=load_keyring(self.settings),
                organisation=self.org,
                data={"name": name, "kind": kind, "secret": secret},
            )

    def grant_secret(self, kind: str, name: str) -> None:
        """Let the organisation's definitions refer to an $env variable or a $file, as a
        node admin does (`infracms org grant-secret`)."""
        with session_scope(self.engine, write=True) as session:
            secret_sources.grant_source(
                session=session,
                actor=ADMIN,
                settings=self.settings,
                organisation=self.org,
                data={"kind": kind, "name": name},
            )

    def add_host(
        self, name: str, host: TestHost, *, credential: str | None = None, pin: bool = True
    ) -> None:
        """Put a test host in the inventory, its key pinned unless `pin` is false."""
        data: dict[str, Any] = {"name": name, "address": host.address, "ssh_port": host.port}
        if pin:
            data["host_key"] = host.host_key
        if credential:
            data["credential"] = credential
        with session_scope(self.engine, write=True) as session:
            inventory.create_host(session=session, actor=ADMIN, organisation=self.org, data=data)

    def update_host(self, name: str, **data: Any) -> None:
        """Change a host's inventory entry."""
        with session_scope(self.engine, write=True) as session:
            inventory.update_host(
                session=session, actor=ADMIN, organisation=self.org, name=name, data=data
            )

    def host_row(self, name: str) -> Host:
        """The host as stored."""
        with Session(self.engine) as session:
            host = session.exec(select(Host).where(Host.name == name)).one()
            session.expunge(host)
            return host

    def define(self, name: str, module: str, host: str, settings: dict[str, Any]) -> None:
        """A definition of `module` for one host, published."""
        with session_scope(self.engine, write=True) as session:
            definitions.create_definition(
                session=session,
                actor=ADMIN,
                plugins=self.plugins,
                organisation=self.org,
                data={
                    "name": name,
                    "module": module,
                    "target": {"host": host},
                    "settings": settings,
                },
            )

    def revise(self, name: str, settings: dict[str, Any]) -> None:
        """Save and publish new settings for a definition."""
        with session_scope(self.engine, write=True) as session:
            definitions.save_revision(
                session=session,
                actor=ADMIN,
                plugins=self.plugins,
                organisation=self.org,
                name=name,
                data={"settings": settings},
            )

    def create_run(self, kind: str, **scope: Any) -> uuid.UUID:
        """Queue a run, as the API does before it hands the id to an executor."""
        data = {"kind": kind, "timeout_seconds": RUN_TIMEOUT, **scope}
        with session_scope(self.engine, write=True) as session:
            run = runs.create_run(
                session=session, actor=ADMIN, plugins=self.plugins, organisation=self.org, data=data
            )
        return run.id

    def execute(self, run_id: uuid.UUID) -> Run:
        """Run a queued run to its end in this process, as the embedded executor does."""
        execute_run(run_id, RunContext(self.settings, self.engine, self.plugins, "tests"))
        return self.run(run_id)

    def rerun_failed(self, run_id: uuid.UUID) -> uuid.UUID:
        """Queue a run of the hosts that failed in `run_id`."""
        with session_scope(self.engine, write=True) as session:
            run = runs.rerun_failed(
                session=session,
                actor=ADMIN,
                plugins=self.plugins,
                organisation=self.org,
                run_id=run_id,
            )
        return run.id

    def run(self, run_id: uuid.UUID) -> Run:
        """The run as stored now."""
        with Session(self.engine) as session:
            run = session.get(Run, run_id)
            assert run is not None, f"no run {run_id}"
            session.expunge(run)
            return run

    def events(self, run_id: uuid.UUID) -> list[RunEvent]:
        """Every stored event of a run, in order."""
        with Session(self.engine) as session:
            query = select(RunEvent).where(RunEvent.run_id == run_id).order_by(col(RunEvent.seq))
            rows = list(session.exec(query))
            for row in rows:
                session.expunge(row)
            return rows

    def all_runs(self) -> list[Run]:
        """Every run of the node."""
        with Session(self.engine) as session:
            rows = list(session.exec(select(Run).order_by(col(Run.created_at))))
            for row in rows:
                session.expunge(row)
            return rows

    def audit(self, action: str | None = None) -> list[AuditEntry]:
        """The audit entries, oldest first (only `action`'s when given)."""
        with Session(self.engine) as session:
            query = select(AuditEntry).order_by(col(AuditEntry.index))
            if action is not None:
                query = query.where(AuditEntry.action == action)
            rows = list(session.exec(query))
            for row in rows:
                session.expunge(row)
            return rows

    @property
    def public_key(self) -> str:
        """The node's SSH public key line."""
        return load_node_ssh_key(self.settings)[1]

    @property
    def private_key_path(self) -> Path:
        """Where the node's SSH private key is."""
        return node_ssh_key_path(self.settings)


def make_node(data_dir: Path) -> Node:
    """A new node under `data_dir` with organisation `clinic` and the built-ins enabled."""
    settings = make_settings(data_dir, log_level="debug")
    engine = make_engine(settings)
    initialise(settings, engine)
    plugins = Plugins.load()
    make_org(engine, ORG)
    with session_scope(engine, write=True) as session:
        for name in BUILT_IN:
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )
        for name in BUILT_IN:
            modules.enable_module(
                session=session, actor=ADMIN, plugins=plugins, organisation=ORG, name=name
            )
    return Node(settings=settings, engine=engine, plugins=plugins)


# --- checks ------------------------------------------------------------------------


def on_host(host: TestHost, command: str | Sequence[str], *, input: str | None = None) -> str:
    """Run `command` inside `host` (not over SSH); its stdout, failing on a non-zero exit."""
    done = host.run(command, input=input)
    assert done.returncode == 0, (
        f"on {host.name}: {command!r} exited {done.returncode}\n"
        f"stdout: {done.stdout}\nstderr: {done.stderr}"
    )
    return done.stdout


def ssh_as(
    host: TestHost, user: str, key: Path, command: str, known_hosts: Path
) -> subprocess.CompletedProcess[str]:
    """Log in to `host` over SSH as `user` with `key` (host key pinned) and run `command`."""
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes",
         "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known_hosts}",
         "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10",
         "-p", str(host.port), f"{user}@{host.address}", command],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def describe_failures(node: Node, run: Run) -> str:
    """A run's status, error and the output of its failed or unreachable events."""
    lines = [f"run {run.id} ({run.kind}) ended {run.status}: {run.error}; recap {run.recap}"]
    for event in node.events(run.id):
        if event.status in ("failed", "unreachable"):
            lines.append(f"--- {event.host} / {event.task}:\n{event.stdout[-3000:]}")
    return "\n".join(lines)


def assert_succeeded(node: Node, run: Run) -> None:
    """Fail with the failed tasks' output unless `run` succeeded."""
    assert run.status == "succeeded", describe_failures(node, run)


def changed_tasks(events: Sequence[RunEvent], host: str) -> list[str]:
    """The tasks that changed (or in a plan, would change) something on `host`."""
    return sorted({e.task or "" for e in events if e.host == host and e.changed})


# --- a served node -----------------------------------------------------------------


@dataclass
class Server:
    """``infracms serve`` of a node: where it answers, and everything it printed."""

    base_url: str
    log: Path
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        """What the server printed so far (stdout and stderr, with its log lines)."""
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def served(node: Node, workdir: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Serve `node` with the embedded executor, logging everything at DEBUG level into
    `workdir`/server.log; its TMPDIR is `workdir`/tmp."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    tmp = workdir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    configured = settings_env(node.settings)
    configured.pop("INFRACMS_ADMIN_PASSWORD", None)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("INFRACMS_")}
    child_env = {**inherited, **configured, **(env or {}), "TMPDIR": str(tmp)}
    child_env["INFRACMS_BASE_URL"] = f"http://127.0.0.1:{port}"
    log = workdir / "server.log"
    with open(log, "wb") as output:
        command = [sys.executable, "-m", "tests.integration.serve_logging_everything", "serve"]
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=child_env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(base_url=f"http://127.0.0.1:{port}", log=log, process=process)
    try:
        _wait_until_healthy(server)
        yield server
    finally:
        _stop(process)


def _wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + SERVER_READY
    with httpx.Client(trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(f"infracms serve exited early:\n{server.output()[-4000:]}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"{server.base_url}/healthz").status_code == 200:
                    return
            time.sleep(0.2)
    pytest.fail(f"infracms serve did not answer in {SERVER_READY:.0f} s:\n{server.output()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, 15)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        process.wait()


@dataclass
class Message:
    """One server-sent event as it arrived."""

    event: str
    data: Any
    received_at: datetime


@dataclass
class Followed:
    """A run followed live: each message with its arrival time, and the run at its end."""

    messages: list[Message] = field(default_factory=list)

    @property
    def end(self) -> dict[str, Any]:
        """The run as the `end` message gave it."""
        ends = [m for m in self.messages if m.event == "end"]
        assert ends, f"the stream ended without an `end` message: {self.messages[-3:]}"
        data: dict[str, Any] = ends[-1].data
        return data

    def seqs(self) -> list[int]:
        """The sequence numbers of every event received, in arrival order."""
        return [e["seq"] for m in self.messages if m.event == "events" for e in m.data]


class ApiClient:
    """The admin, signed in to a served node."""

    def __init__(self, node: Node, server: Server) -> None:
        with session_scope(node.engine, write=True) as session:
            login = auth.login(
                session=session,
                settings=node.settings,
                username="admin",
                password=ADMIN_PASSWORD,
                client="integration",
            )
        self.http = httpx.Client(
            base_url=f"{server.base_url}/api/v1",
            trust_env=False,
            timeout=httpx.Timeout(30, read=600),
            cookies={"infracms_session": login.token},
            headers={"x-csrf-token": login.csrf_token},
        )
        self.org = node.org

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def start_run(self, kind: str, **scope: Any) -> uuid.UUID:
        """POST a plan or apply; the executor starts it in the background."""
        body = {"kind": kind, "timeout_seconds": RUN_TIMEOUT, **scope}
        response = self.http.post(f"/orgs/{self.org}/runs", json=body)
        assert response.status_code == 202, f"{response.status_code}: {response.text}"
        return uuid.UUID(response.json()["id"])

    def follow(self, run_id: uuid.UUID) -> Followed:
        """Read the run's event stream until its `end` message."""
        followed = Followed()
        with self.http.stream("GET", f"/orgs/{self.org}/runs/{run_id}/stream") as response:
            assert response.status_code == 200, response.read().decode()
            assert response.headers["content-type"].startswith("text/event-stream")
            fields: dict[str, str] = {}
            for line in response.iter_lines():
                if line:
                    name, _, value = line.partition(": ")
                    fields[name] = value
                    continue
                if fields:
                    message = Message(
                        fields.get("event", "message"),
                        json.loads(fields.get("data", "null")),
                        datetime.now(UTC),
                    )
                    followed.messages.append(message)
                    fields = {}
                    if message.event == "end":
                        break
        return followed


# --- secrets -----------------------------------------------------------------------


def secret_forms(secret: str) -> set[str]:
    """The ways a secret could be written down: as it is, JSON-escaped, and for a PEM or
    OpenSSH key each line of its base64 body but the first (which every key of its kind
    starts alike) on its own."""
    forms = {secret, json.dumps(secret)[1:-1]}
    body = [line.strip() for line in secret.splitlines() if not line.startswith("-----")]
    forms |= {line for line in body[1:] if len(line) >= 16}
    return {form for form in forms if len(form) >= 8}


def find_secrets(text: str | bytes, secrets: dict[str, str]) -> list[str]:
    """The names of the secrets (in any of their forms) that `text` holds."""
    data = text.encode() if isinstance(text, str) else text
    return sorted(
        name
        for name, secret in secrets.items()
        if any(form.encode() in data for form in secret_forms(secret))
    )


def files_holding_secrets(
    roots: Sequence[Path], secrets: dict[str, str], *, skip: Sequence[Path] = ()
) -> dict[str, list[str]]:
    """{file: secret names} for every file under `roots` (but `skip`) that holds one."""
    found: dict[str, list[str]] = {}
    skipped = {path.resolve() for path in skip}
    for root in roots:
        paths = [root] if root.is_file() else root.rglob("*")
        for path in paths:
            if not path.is_file() or path.is_symlink() or path.resolve() in skipped:
                continue
            with contextlib.suppress(OSError):
                names = find_secrets(path.read_bytes(), secrets)
                if names:
                    found[str(path)] = names
    return found
