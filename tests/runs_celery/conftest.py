"""Runs on real Celery workers: Redis, PostgreSQL, and ``python -m infracms worker|beat``.

``node`` is an initialised node on a new PostgreSQL database and a Redis database of its
own, with the built-in `base` module enabled in organisation `clinic`. ``processes``
starts the worker and beat commands as subprocesses configured like the node, with a
temporary directory of the test's own (so the test can find what a worker left there),
and ends whatever is still running at the end. Hosts are loopback ports: one refusing
connections (unreachable at once) or one that greets like sshd and then never answers
(ssh hangs, so the run lasts until it is stopped).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models import AuditEntry
from infracms.models.run import HostLock, Run
from infracms.orchestration.celery_executor import CeleryExecutor
from infracms.orchestration.execute import RunContext
from infracms.plugins import Plugins
from infracms.services import definitions, inventory, modules, runs
from infracms.services.setup import initialise
from tests.conftest import make_settings
from tests.helpers import ADMIN, make_org
from tests.support.redis import fresh_redis_url, redis_server  # noqa: F401 (fixtures)
from tests.support.server import REPO_ROOT, settings_env

ORG = "clinic"
STALE_SECONDS = 3  # INFRACMS_RUN_STALE_SECONDS for the processes: recovery in seconds
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
T = TypeVar("T")


@dataclass
class Node:
    """An initialised node, and how to configure processes like it."""

    settings: Settings
    engine: Engine
    plugins: Plugins
    tmp: Path

    def env(self) -> dict[str, str]:
        """The environment of a worker or beat of this node."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("INFRACMS_")}
        configured = settings_env(self.settings)
        configured.pop("INFRACMS_ADMIN_PASSWORD", None)
        return {**inherited, **configured, "TMPDIR": str(self.tmp), "PYTHONUNBUFFERED": "1"}

    def executor(self) -> CeleryExecutor:
        """The web server's side of the queue, as the API builds it."""
        return CeleryExecutor(RunContext(self.settings, self.engine, self.plugins, "test"))

    def add_host(self, name: str, port: int) -> None:
        """A host at 127.0.0.1:`port` (with a pinned key) and a `base` definition for it."""
        key = ed25519.Ed25519PrivateKey.generate().public_key()
        host_key = key.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ).decode()
        with session_scope(self.engine, write=True) as session:
            inventory.create_host(
                session=session,
                actor=ADMIN,
                organisation=ORG,
                data={"name": name, "address": "127.0.0.1", "ssh_port": port, "host_key": host_key},
                allow_node_target=self.settings.allow_node_target,
            )
            definitions.create_definition(
                session=session,
                actor=ADMIN,
                plugins=self.plugins,
                organisation=ORG,
                data={"name": f"base-{name}", "module": "base", "target": {"host": name}},
            )

    def create_run(self, kind: str, host: str) -> uuid.UUID:
        """Queue a run of `kind` on `host` (not sent to any worker)."""
        with session_scope(self.engine, write=True) as session:
            run = runs.create_run(
                session=session,
                actor=ADMIN,
                plugins=self.plugins,
                organisation=ORG,
                data={"kind": kind, "hosts": [host], "timeout_seconds": 600},
            )
        return run.id

    def submit(self, kind: str, host: str) -> uuid.UUID:
        """Queue a run and send it to the workers through a CeleryExecutor."""
        run_id = self.create_run(kind, host)
        executor = self.executor()
        executor.start()
        try:
            executor.submit(run_id)
        finally:
            executor.shutdown()
        return run_id

    def run(self, run_id: uuid.UUID) -> Run:
        """The run as stored now."""
        with Session(self.engine) as session:
            run = session.get(Run, run_id)
            assert run is not None, f"no run {run_id}"
            return run

    def locks_of(self, run_id: uuid.UUID) -> list[HostLock]:
        """The host locks `run_id` holds."""
        with Session(self.engine) as session:
            return list(session.exec(select(HostLock).where(HostLock.run_id == run_id)))

    def audit_actions(self, run_id: uuid.UUID) -> list[str]:
        """The audit actions recorded about `run_id`, in order."""
        with Session(self.engine) as session:
            query = select(AuditEntry.action).where(col(AuditEntry.subject).endswith(str(run_id)))
            return list(session.exec(query.order_by(col(AuditEntry.index))))

    def cancel(self, run_id: uuid.UUID) -> None:
        """Ask the run to stop, as a user would (the flag in the database)."""
        with session_scope(self.engine, write=True) as session:
            runs.cancel_run(session=session, actor=ADMIN, organisation=ORG, run_id=run_id)


@pytest.fixture
def node(tmp_path: Path, fresh_postgres_database: str, fresh_redis_url: str) -> Iterator[Node]:  # noqa: F811
    made = make_node(tmp_path, database_url=fresh_postgres_database, broker_url=fresh_redis_url)
    yield made
    made.engine.dispose()


def make_node(tmp_path: Path, *, database_url: str, broker_url: str) -> Node:
    """An initialised node on `database_url` and `broker_url`, with `base` enabled in ORG."""
    settings = make_settings(
        tmp_path / "var",
        database_url=database_url,
        broker_url=broker_url,
        run_stale_seconds=STALE_SECONDS,
        log_level="info",
        allow_node_target=True,  # the hosts are ports on 127.0.0.1
    )
    engine = make_engine(settings)
    initialise(settings, engine)
    plugins = Plugins.load()
    make_org(engine, ORG)
    with session_scope(engine, write=True) as session:
        modules.set_available(
            session=session, actor=ADMIN, plugins=plugins, name="base", available=True
        )
        modules.enable_module(
            session=session, actor=ADMIN, plugins=plugins, organisation=ORG, name="base"
        )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    return Node(settings=settings, engine=engine, plugins=plugins, tmp=scratch)


@dataclass
class Process:
    """``python -m infracms <args>``, its output in a file."""

    args: tuple[str, ...]
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float) -> None:
        """Wait until the output contains `text`; fail, showing it, if it does not in time."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.popen.poll() is not None:
                pytest.fail(
                    f"`infracms {' '.join(self.args)}` exited with {self.popen.returncode} "
                    f"before printing {text!r}:\n{self.output()[-4000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"`infracms {' '.join(self.args)}` did not print {text!r} in "
                    f"{timeout:.0f} s:\n{self.output()[-4000:]}"
                )
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the process itself (not its children): a worker that dies mid-run."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL the process group if it lingers."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()


@dataclass
class Processes:
    """Starts worker and beat processes of a node; ends them all at the end of the test."""

    node: Node
    started: list[Process] = field(default_factory=list)

    def start(self, *args: str, ready: str) -> Process:
        log = self.node.tmp.parent / f"{args[0]}-{len(self.started)}.log"
        with open(log, "wb") as output:
            popen = subprocess.Popen(
                [sys.executable, "-m", "infracms", *args],
                env=self.node.env(),
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(args=args, popen=popen, log=log)
        self.started.append(process)
        process.wait_for_output(ready, READY_TIMEOUT)
        return process

    def worker(self, concurrency: int = 2) -> Process:
        """An `infracms worker`, ready to take runs."""
        return self.start("worker", "--concurrency", str(concurrency), ready=" ready.")

    def beat(self, reap_seconds: float = 1.0) -> Process:
        """An `infracms beat`, reaping every `reap_seconds`."""
        return self.start("beat", "--reap-seconds", str(reap_seconds), ready="beat: reaping")

    def end_all(self) -> None:
        for process in self.started:
            process.stop()
        for pid, _ in processes_mentioning(self.node.tmp):  # what a killed worker left
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def processes(node: Node) -> Iterator[Processes]:
    started = Processes(node)
    try:
        yield started
    finally:
        started.end_all()


def processes_mentioning(path: Path) -> list[tuple[int, str]]:
    """The processes (pid, command line) whose command line mentions `path`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in command:
            found.append((int(entry.name), command.strip()))
    return found


def wait_until(
    probe: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str
) -> tuple[T, float]:
    """Poll `probe` until `done` holds; its last value and the seconds it took."""
    start = time.monotonic()
    while True:
        value = probe()
        if done(value):
            return value, time.monotonic() - start
        if time.monotonic() - start > timeout:
            pytest.fail(f"waited {timeout:.0f} s for {what}; last seen: {value!r}")
        time.sleep(0.1)


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, not listening)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


class SilentSshd:
    """Accepts connections, sends an sshd greeting and then nothing: ssh waits forever."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with contextlib.suppress(OSError):
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
            self.connections.append(conn)

    def close(self) -> None:
        self.server.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def silent_sshd() -> Iterator[SilentSshd]:
    listener = SilentSshd()
    yield listener
    listener.close()


def hung_in_ssh(node: Node, sshd: SilentSshd, run_id: uuid.UUID) -> Any:
    """Wait until `run_id` runs and its ssh has connected to `sshd` (so it is mid-run)."""
    wait_until(lambda: node.run(run_id).status, lambda s: s == "running", 60, "the run to start")
    wait_until(lambda: len(sshd.connections), bool, 60, "ssh to connect to the silent sshd")
    return node.run(run_id)
