"""A Redis server and a PostgreSQL cluster of a test's own, to stop and start again on
the same port while a node's worker and beat run (the machine's shared servers are
never touched)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support import postgres
from tests.support.redis import server_answers

START_TIMEOUT = 30.0


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateRedis:
    """``redis-server --port <port> --save ''``, stopped and started again at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="infracms-faults-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again) on its port and wait until it answers PING."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        command = [binary, "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--dir", str(self.directory), "--save", "", "--appendonly", "no"]
        with open(self.directory / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not server_answers("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server did not start on {self.port}: "
                    + (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop it (SIGTERM, as a service manager would)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class PrivatePostgres:
    """A throwaway cluster (initdb in a temporary directory), restarted on its port."""

    def __init__(self) -> None:
        self.server = postgres.start_private_cluster()
        self.port = self.server.port

    @property
    def url(self) -> str:
        return self.server.url()

    def stop(self) -> None:
        """Stop the postmaster (fast shutdown: clients are disconnected)."""
        if self.server.process is not None:
            postgres._stop_process(self.server.process)
            self.server.process = None

    def start(self) -> None:
        """Start the postmaster again on the same port and wait until it answers."""
        assert self.server.directory is not None
        directory = self.server.directory
        account = postgres._cluster_account(directory)
        log = directory / f"postgres-{self.port}-again.log"
        self.server.process = postgres._spawn_postmaster(
            postgres._postgres_bindir(), directory, account, self.port, log
        )
        if not postgres._wait_until_ready(self.server):
            raise RuntimeError(f"postgres did not start again: {log.read_text(errors='replace')}")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.server.stop()
