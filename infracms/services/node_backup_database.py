"""A node's database in a backup: a consistent snapshot, and loading one back.

SQLite is copied with its online backup API (``sqlite3.Connection.backup``), which
reads one consistent state while the node keeps writing (WAL mode); PostgreSQL with
``pg_dump`` (one transaction, custom format) and loaded with ``pg_restore`` in a
single transaction, so a load that fails leaves the database as it was.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from infracms.config import Settings
from infracms.errors import ConfigurationError

SQLITE_FILE = "infracms.db"
PG_DUMP_FILE = "infracms.pgdump"
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
TOOL_TIMEOUT_SECONDS = 3600


def is_sqlite(url: str) -> bool:
    """Whether a database URL names SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path:
    """The file of a SQLite URL."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ConfigurationError(f"{url} is not a SQLite file")
    return Path(database)


def sqlite_files(url: str) -> set[Path]:
    """The database file and the files SQLite keeps beside it."""
    path = sqlite_path(url).resolve()
    return {path, *(path.with_name(path.name + side) for side in SQLITE_SIDE_FILES)}


def snapshot(settings: Settings, directory: Path) -> Path:
    """A consistent copy of the node's database in `directory`; its path."""
    url = settings.resolved_database_url
    if is_sqlite(url):
        target = directory / SQLITE_FILE
        with (
            closing(sqlite3.connect(sqlite_path(url))) as source,
            closing(sqlite3.connect(target)) as copy,
        ):
            source.backup(copy)
        return target
    target = directory / PG_DUMP_FILE
    options = ["--format=custom", "--compress=0", "--no-owner", "--no-privileges"]
    _tool("pg_dump", *options, f"--file={target}", url=url)
    return target


def schema_revision(url: str) -> str | None:
    """The Alembic revision a database is at (None when it has no schema)."""
    engine = create_engine(url)
    try:
        with _connected(engine) as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def has_tables(url: str) -> bool:
    """Whether a database holds any table (a node's, or anything else)."""
    engine = create_engine(url)
    try:
        with _connected(engine) as connection:
            return bool(inspect(connection).get_table_names())
    finally:
        engine.dispose()


@contextmanager
def _connected(engine: Engine) -> Iterator[Connection]:
    """A connection, or a ConfigurationError saying why there is none."""
    try:
        connection = engine.connect()
    except OperationalError as exc:
        raise ConfigurationError(f"cannot reach the database: {exc.orig}") from exc
    with connection:
        yield connection


def load_postgres(dump: Path, url: str) -> None:
    """Replace the tables of the database at `url` by the dump's, in one transaction."""
    options = ["--clean", "--if-exists", "--single-transaction", "--exit-on-error", "--no-owner"]
    target = f"--dbname={_libpq(url)[0]}"
    _tool("pg_restore", *options, "--no-privileges", target, str(dump), url=url)


@contextmanager
def scratch_postgres(url: str) -> Iterator[str]:
    """A new, empty database beside the one at `url` (same server and role), dropped after."""
    name = f"infracms_verify_{secrets.token_hex(6)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy URL as libpq's, without its password, and the environment carrying it
    (so the password is not on the tool's command line for `ps` to show)."""
    parsed: URL = make_url(url)
    env = {"PGPASSWORD": parsed.password} if parsed.password else {}
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str, *args: str, url: str) -> None:
    """Run pg_dump or pg_restore; a failure is a ConfigurationError with its message."""
    binary = shutil.which(name)
    if binary is None:
        raise ConfigurationError(f"{name} is not on PATH: install the PostgreSQL client")
    conninfo, env = _libpq(url)
    command = [binary, *args]
    if name == "pg_dump":
        command.append(f"--dbname={conninfo}")
    done = subprocess.run(  # noqa: S603 (a fixed binary; the URL is the node's own setting)
        command,
        capture_output=True,
        env={**os.environ, **env},
        timeout=TOOL_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise ConfigurationError(f"{name} failed (exit {done.returncode}): {message}")
