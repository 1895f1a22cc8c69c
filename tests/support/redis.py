"""A Redis server for tests: the machine's own, or a throwaway ``redis-server``.

`redis_url()` answers the base URL of a server the tests may use: the one at
127.0.0.1:6379 when it answers PING, otherwise a private ``redis-server`` (Debian package
redis-server, installed by scripts/install-test-deps.sh) on a free loopback port, with
no persistence, stopped when the process exits. ``INFRACMS_TEST_REDIS`` chooses:

- ``auto`` (the default): the running server if it answers, else a private one;
- ``server``: the running server, or an error saying it does not answer;
- ``private``: always a private server (so CI exercises the fallback).

Fixtures (load with ``pytest_plugins = ["tests.support.redis"]``): ``redis_server``
(session, the base URL) and ``fresh_redis_url`` (function: the URL of a logical database
of its own, claimed while empty and flushed afterwards, so that tests running at the
same time on a shared server do not see each other's keys).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.support import tiers

MODE_VARIABLE = "INFRACMS_TEST_REDIS"
MODES = ("auto", "server", "private")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6379
DATABASES = 16  # redis' default number of logical databases
CLAIM_KEY = "infracms:test:claimed-by"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


class RedisUnavailable(RuntimeError):
    """No Redis server could be found or started for the tests."""


@dataclass
class RedisServer:
    """A Redis server on loopback TCP, without a password."""

    host: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    directory: Path | None = field(default=None, repr=False)

    @property
    def private(self) -> bool:
        """True when this server is one that we started."""
        return self.process is not None

    def url(self, database: int = 0) -> str:
        """The redis:// URL of logical `database`."""
        return f"redis://{self.host}:{self.port}/{database}"

    def stop(self) -> None:
        """Stop a private server and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def server_answers(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> bool:
    """True when a Redis server at host:port answers PING without a password."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as conn:
            conn.settimeout(2)
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def find_or_start_server(mode: str | None = None) -> RedisServer:
    """The server at 127.0.0.1:6379 or a new private one, as `mode` (or the env) says."""
    mode = mode or os.environ.get(MODE_VARIABLE, "auto") or "auto"
    if mode not in MODES:
        raise RedisUnavailable(f"{MODE_VARIABLE}={mode!r}, expected one of {', '.join(MODES)}")
    if mode != "private" and server_answers():
        return RedisServer(DEFAULT_HOST, DEFAULT_PORT)
    if mode == "server":
        raise RedisUnavailable(
            f"{MODE_VARIABLE}=server but no Redis answers PING at {DEFAULT_HOST}:{DEFAULT_PORT}"
        )
    return start_private_server()


def start_private_server() -> RedisServer:
    """Start redis-server on a free loopback port, without persistence."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        raise RedisUnavailable(
            "no Redis answers at 127.0.0.1:6379 and there is no redis-server: install the "
            "Debian package redis-server (make test installs it with "
            "scripts/install-test-deps.sh)"
        )
    directory = Path(tempfile.mkdtemp(prefix="infracms-redis-"))
    failure = ""
    for _attempt in range(3):
        server = _spawn(binary, directory, _free_port())
        if _wait_until_ready(server):
            return server
        server.directory = None  # keep the directory for the next attempt
        server.stop()
        failure = (directory / "redis.log").read_text(errors="replace")
    shutil.rmtree(directory, ignore_errors=True)
    raise RedisUnavailable(f"redis-server did not start in {START_TIMEOUT:.0f} s:\n{failure}")


def _spawn(binary: str, directory: Path, port: int) -> RedisServer:
    command = [binary, "--bind", DEFAULT_HOST, "--port", str(port), "--dir", str(directory)]
    command += ["--save", "", "--appendonly", "no", "--databases", str(DATABASES)]
    with open(directory / "redis.log", "wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
            start_new_session=True,
        )
    return RedisServer(DEFAULT_HOST, port, process=process, directory=directory)


def _wait_until_ready(server: RedisServer) -> bool:
    assert server.process is not None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        if server_answers(server.host, server.port):
            return True
        time.sleep(0.05)
    return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((DEFAULT_HOST, 0))
        return int(probe.getsockname()[1])


_shared: RedisServer | None = None


def shared_server() -> RedisServer:
    """This process's server, found or started on first use."""
    global _shared
    tiers.needs("Redis", "integration")
    if _shared is None:
        _shared = find_or_start_server()
        if _shared.private:
            atexit.register(stop_shared_server)
    return _shared


def stop_shared_server() -> None:
    """Stop this process's private server, if one was started."""
    global _shared
    server, _shared = _shared, None
    if server is not None:
        server.stop()


def redis_url() -> str:
    """The base URL of a Redis server for the tests."""
    return shared_server().url()


@contextlib.contextmanager
def fresh_database(server: RedisServer) -> Iterator[str]:
    """Claim an empty logical database (1-15), yield its URL, flush it afterwards."""
    token = uuid.uuid4().hex
    for database in range(1, DATABASES):
        client = redis.Redis(host=server.host, port=server.port, db=database)
        try:
            if client.dbsize() == 0 and client.set(CLAIM_KEY, token, nx=True, ex=3600):
                break
        finally:
            client.close()
    else:
        raise RedisUnavailable(
            f"no empty logical database on the Redis at {server.host}:{server.port}: "
            f"other tests hold all of 1-{DATABASES - 1}, or left keys behind"
        )
    try:
        yield server.url(database)
    finally:
        client = redis.Redis(host=server.host, port=server.port, db=database)
        try:
            if client.get(CLAIM_KEY) == token.encode():
                client.flushdb()
        finally:
            client.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The Redis server of the session (the machine's own, or a private one)."""
    yield shared_server()
    stop_shared_server()


@pytest.fixture
def fresh_redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The URL of an empty logical database of its own, flushed after the test."""
    with fresh_database(redis_server) as url:
        yield url
