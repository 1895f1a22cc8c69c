"""A PostgreSQL server for tests: the machine's own, or a throwaway cluster.

`postgres_url()` answers the base SQLAlchemy URL of a server the tests may use:
the one at 127.0.0.1:5432 when it answers (trust auth, user postgres), otherwise a
private cluster made with initdb in a temporary directory, on a free loopback port,
stopped when the process exits. ``INFRACMS_TEST_POSTGRES`` chooses:

- ``auto`` (the default): the running server if it answers, else a private cluster;
- ``server``: the running server, or an error saying it does not answer;
- ``private``: always a private cluster (so CI exercises the fallback).

Fixtures (load with ``pytest_plugins = ["tests.support.postgres"]``):
``postgres_server`` (session, the base URL), ``fresh_postgres_database`` (function,
the URL of a new database dropped afterwards) and ``session_postgres_database``.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
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

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.support import tiers

MODE_VARIABLE = "INFRACMS_TEST_POSTGRES"
MODES = ("auto", "server", "private")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5432
SUPERUSER = "postgres"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be found or started for the tests."""


@dataclass
class PostgresServer:
    """A PostgreSQL server reachable over TCP with trust auth for `user`."""

    host: str
    port: int
    user: str = SUPERUSER
    process: subprocess.Popen[bytes] | None = None
    directory: Path | None = None
    log_path: Path | None = field(default=None, repr=False)

    @property
    def private(self) -> bool:
        """True when this server is a throwaway cluster that we started."""
        return self.process is not None

    def url(self, database: str | None = None) -> str:
        """Return the SQLAlchemy URL of `database` (or of the server, without one)."""
        base = f"postgresql+psycopg://{self.user}@{self.host}:{self.port}"
        return f"{base}/{database}" if database else base

    def stop(self) -> None:
        """Stop a private cluster (fast shutdown) and remove its directory."""
        if self.process is not None:
            _stop_process(self.process)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def server_answers(
    host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, user: str = SUPERUSER
) -> bool:
    """Return True when a PostgreSQL server at host:port accepts `user` without a password."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            pass
    except OSError:
        return False
    try:
        with psycopg.connect(
            host=host, port=port, user=user, dbname="postgres", connect_timeout=2
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def find_or_start_server(
    mode: str | None = None, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> PostgresServer:
    """Return the server at host:port or a new private cluster, as `mode` (or the env) says."""
    mode = mode or os.environ.get(MODE_VARIABLE, "auto") or "auto"
    if mode not in MODES:
        raise PostgresUnavailable(f"{MODE_VARIABLE}={mode!r}, expected one of {', '.join(MODES)}")
    if mode != "private" and server_answers(host, port):
        return PostgresServer(host, port)
    if mode == "server":
        raise PostgresUnavailable(
            f"{MODE_VARIABLE}=server but no PostgreSQL answers at {host}:{port} "
            f"for user {SUPERUSER} with trust auth"
        )
    return start_private_cluster()


def start_private_cluster() -> PostgresServer:
    """initdb a throwaway cluster in a temporary directory and start it on a free port."""
    bindir = _postgres_bindir()
    directory = Path(tempfile.mkdtemp(prefix="infracms-pg-"))
    try:
        account = _cluster_account(directory)
        _initdb(bindir, directory, account)
        return _start_postmaster(bindir, directory, account)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


_shared: PostgresServer | None = None


def shared_server() -> PostgresServer:
    """Return this process's server, finding or starting it on first use."""
    global _shared
    tiers.needs("PostgreSQL", "postgres")
    if _shared is None:
        _shared = find_or_start_server()
        if _shared.private:
            atexit.register(stop_shared_server)
    return _shared


def stop_shared_server() -> None:
    """Stop this process's private cluster, if one was started."""
    global _shared
    server, _shared = _shared, None
    if server is not None:
        server.stop()


def postgres_url() -> str:
    """Return the base SQLAlchemy URL of a PostgreSQL server for the tests."""
    return shared_server().url()


def create_database(server_url: str, name: str | None = None) -> str:
    """Create a database (a unique name unless given) and return its SQLAlchemy URL."""
    name = name or f"test_{uuid.uuid4().hex[:16]}"
    with _maintenance_connection(server_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str) -> None:
    """Drop the database named in `database_url`, closing its connections first."""
    name = make_url(database_url).database
    if not name:
        raise ValueError(f"{database_url!r} names no database")
    with _maintenance_connection(database_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """Create a uniquely named database, yield its URL and drop it afterwards."""
    url = create_database(server_url)
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The base URL of a PostgreSQL server, e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432``."""
    yield postgres_url()
    stop_shared_server()


@pytest.fixture
def fresh_postgres_database(postgres_server: str) -> Iterator[str]:
    """The URL of a new, empty database of its own, dropped after the test."""
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def session_postgres_database(postgres_server: str) -> Iterator[str]:
    """The URL of a new, empty database shared by the whole session."""
    with fresh_database(postgres_server) as url:
        yield url


def _maintenance_connection(url: str) -> psycopg.Connection[tuple[object, ...]]:
    conninfo = make_url(url).set(drivername="postgresql", database="postgres")
    return psycopg.connect(
        conninfo.render_as_string(hide_password=False), autocommit=True, connect_timeout=5
    )


def _postgres_bindir() -> Path:
    def version(path: str) -> tuple[int, ...]:
        number = Path(path).parent.name
        return tuple(int(part) for part in number.split(".") if part.isdigit())

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if not candidates:
        raise PostgresUnavailable(
            "no PostgreSQL server answers at 127.0.0.1:5432 and there is no initdb in "
            "/usr/lib/postgresql/*/bin: install the Debian package postgresql "
            "(make test installs it with scripts/install-test-deps.sh)"
        )
    return Path(candidates[-1]).parent


@dataclass(frozen=True)
class _Account:
    """Whom initdb and postgres run as: None for ourselves, else a uid/gid to switch to."""

    uid: int | None = None
    gid: int | None = None

    @property
    def extra_groups(self) -> list[int] | None:
        """No supplementary groups after switching: root's must not leak to postgres."""
        return None if self.uid is None else []


def _cluster_account(directory: Path) -> _Account:
    """As root, hand `directory` to the postgres user: initdb and postgres refuse root."""
    if os.geteuid() != 0:
        return _Account()
    try:
        entry = pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise PostgresUnavailable(
            "running as root, and there is no 'postgres' system user to run initdb as: "
            "install the Debian package postgresql"
        ) from None
    os.chown(directory, entry.pw_uid, entry.pw_gid)
    return _Account(entry.pw_uid, entry.pw_gid)


def _initdb(bindir: Path, directory: Path, account: _Account) -> None:
    command = [
        str(bindir / "initdb"),
        "--pgdata",
        str(directory / "data"),
        "--username",
        SUPERUSER,
        "--auth",
        "trust",
        "--encoding",
        "UTF8",
        "--no-locale",
        "--no-sync",
        "--no-instructions",
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        env=_cluster_env(directory),
        cwd=directory,
        user=account.uid,
        group=account.gid,
        extra_groups=account.extra_groups,
    )
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode(errors="replace")
        raise PostgresUnavailable(f"initdb exited with {done.returncode}:\n{output}")


def _start_postmaster(bindir: Path, directory: Path, account: _Account) -> PostgresServer:
    """Start postgres on a free port, retrying if another process took the port meanwhile."""
    failure = ""
    for _attempt in range(3):
        port = _free_port()
        log = directory / f"postgres-{port}.log"
        process = _spawn_postmaster(bindir, directory, account, port, log)
        server = PostgresServer(
            DEFAULT_HOST, port, process=process, directory=directory, log_path=log
        )
        if _wait_until_ready(server):
            return server
        _stop_process(process)
        failure = log.read_text(errors="replace")
    raise PostgresUnavailable(
        f"private PostgreSQL cluster did not start in {START_TIMEOUT:.0f} s:\n{failure}"
    )


def _spawn_postmaster(
    bindir: Path, directory: Path, account: _Account, port: int, log: Path
) -> subprocess.Popen[bytes]:
    command = [str(bindir / "postgres"), "-D", str(directory / "data"), "-p", str(port)]
    # A test database needs no durability; a socket in our own directory avoids
    # /var/run/postgresql, which may belong to the machine's server.
    settings = {
        "listen_addresses": DEFAULT_HOST,
        "unix_socket_directories": str(directory),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "200",
    }
    for name, value in settings.items():
        command += ["-c", f"{name}={value}"]
    with open(log, "wb") as output:
        if account.uid is not None:
            os.chown(log, account.uid, account.gid or -1)
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=_cluster_env(directory),
            cwd=directory,
            start_new_session=True,
            user=account.uid,
            group=account.gid,
            extra_groups=account.extra_groups,
        )


def _wait_until_ready(server: PostgresServer) -> bool:
    assert server.process is not None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        if server_answers(server.host, server.port, server.user):
            return True
        time.sleep(0.05)
    return False


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGINT is postgres' fast shutdown; SIGKILL the group if it does not end in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _cluster_env(directory: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(directory), "LC_ALL": "C"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((DEFAULT_HOST, 0))
        return int(probe.getsockname()[1])
