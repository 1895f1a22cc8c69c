"""Database engines, sessions and migrations. Nothing is connected at import time.

SQLite is the embedded default and PostgreSQL the production database. On SQLite (in
WAL mode, so readers never wait for a writer):

- a writing transaction starts with ``BEGIN IMMEDIATE`` so that two writers never race
  to upgrade a read lock (the audit log's numbering depends on it); reads stay deferred;
- writers of one process queue on a lock of the engine (the write gate) before they ask
  SQLite, and are woken the moment the writer before them ends; SQLite's own busy
  handler only polls, with sleeps of up to 100 ms, so under load waiting writers missed
  their turn, and a request's thread stayed blocked for its whole timeout;
- a request's write session (`request_session`) holds the write lock only until it
  commits: what the request reads afterwards (building the answer in another thread,
  sending it) holds no lock. A write transaction is opened and committed in one thread,
  with nothing awaited in between (docs/performance.md).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection
from sqlmodel import Session, create_engine

from infracms.config import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_SECONDS = 30
# Connections a served process may use at once: the request thread pool (anyio's 40),
# the embedded executor's run threads, the periodic jobs and event streams. A checkout
# beyond this waits (pool timeout) rather than opening files without bound.
SQLITE_POOL_SIZE = 64
SQLITE_POOL_OVERFLOW = 32
POSTGRES_POOL_SIZE = 10
POSTGRES_POOL_OVERFLOW = 30
# Connections kept back from requests for the executor's runs and the periodic jobs.
BACKGROUND_CONNECTIONS = 8
# Requests let into a served process at once on SQLite (`admission_places`): a few, so
# that the writer holding the write lock shares the one core Python runs on with few
# others. PostgreSQL is left as it was (no admission line).
SQLITE_ADMISSION_PLACES = 8


def make_engine(settings: Settings) -> Engine:
    """An engine for the configured database."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=POSTGRES_POOL_SIZE,
        max_overflow=POSTGRES_POOL_OVERFLOW,
    )


@dataclass(frozen=True)
class RequestSlots:
    """How many requests may hold a session at once, and how many may look up their
    caller at once: together with the background's share, no more than the pool."""

    sessions: int
    lookups: int


def request_slots(engine: Engine) -> RequestSlots:
    """The pool, shared out. A request holds its session's connection from its first
    query until its answer is sent, across thread hops; if threads could wait for a
    connection held by requests that wait for a thread, nothing would move until the
    pool timeout. So requests wait for a slot on the event loop, holding no thread and
    no connection, and the slots never ask the pool for more than it has."""
    if engine.dialect.name == "sqlite":
        total = SQLITE_POOL_SIZE + SQLITE_POOL_OVERFLOW
    else:
        total = POSTGRES_POOL_SIZE + POSTGRES_POOL_OVERFLOW
    lookups = max(2, total // 6)
    return RequestSlots(sessions=total - BACKGROUND_CONNECTIONS - lookups, lookups=lookups)


def admission_places(engine: Engine) -> int | None:
    """How many requests a served process lets in at once; the rest wait in line on the
    event loop (`middleware.AdmissionMiddleware`). On SQLite every write waits for the
    one write lock, and the writer holding it runs Python in turn with every request
    inside (one process, one core at a time): with 40 inside, a host update that needs
    5 ms of work held the lock 37 ms, the lock was held 96% of the time and writers
    waited 1.3 s for it; with 8 inside, 20-24 ms, and writers wait about 50 ms
    (docs/performance.md). Fewer than 8 left the core idle while requests waited.
    None on PostgreSQL: every request goes in as before (not measured better there)."""
    if engine.dialect.name == "sqlite":
        return SQLITE_ADMISSION_PLACES
    return None


def _sqlite_engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    gated = type("GatedConnection", (_GatedConnection,), {"gate": threading.Lock()})
    engine = create_engine(
        url,
        connect_args={
            "check_same_thread": False,
            "timeout": BUSY_TIMEOUT_SECONDS,
            "factory": gated,
        },
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=SQLITE_POOL_OVERFLOW,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        dbapi_connection = connection.connection.dbapi_connection
        if mode == "IMMEDIATE" and isinstance(dbapi_connection, _GatedConnection):
            dbapi_connection.enter_gate()
        try:
            connection.exec_driver_sql(f"BEGIN {mode}")
        except BaseException:
            if isinstance(dbapi_connection, _GatedConnection):
                dbapi_connection.leave_gate()
            raise

    return engine


class _GatedConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions pass the engine's write gate: the
    gate is taken before ``BEGIN IMMEDIATE`` and given back when the transaction ends
    (commit, rollback, or the connection closing)."""

    gate: threading.Lock  # one per engine: set on the subclass `_sqlite_engine` makes
    holds_gate = False

    def enter_gate(self) -> None:
        """Wait for this process's other writers, as long as SQLite would for others."""
        if not self.gate.acquire(timeout=BUSY_TIMEOUT_SECONDS):
            raise sqlite3.OperationalError("database is locked (write gate)")
        self.holds_gate = True

    def leave_gate(self) -> None:
        """Let the next writer in, if this connection held the gate."""
        if self.holds_gate:
            self.holds_gate = False
            self.gate.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.leave_gate()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.leave_gate()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.leave_gate()


def write_engine(engine: Engine) -> Engine:
    """The same engine, with transactions that take the write lock from the start."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(sqlite_begin="IMMEDIATE")
    return engine


@contextmanager
def session_scope(engine: Engine, *, write: bool = False) -> Iterator[Session]:
    """A session that rolls back whatever its user did not commit."""
    bind = write_engine(engine) if write else engine
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise


class RequestWriteSession(Session):
    """A request's writing session: the transaction that writes takes the write lock
    from its start (SQLite: ``BEGIN IMMEDIATE``), and once it is committed what the
    request still reads (refreshing rows, building the answer in another thread, the
    answer going out) is an ordinary read that holds no lock. A later write starts a
    writing transaction again, if nothing was read before it in that transaction."""

    def commit(self) -> None:
        super().commit()
        self.bind = self.info["read_bind"]


@event.listens_for(RequestWriteSession, "before_flush")
def _write_again(session: Session, _context: Any, _instances: Any) -> None:
    if session.bind is session.info["read_bind"] and not _has_connection(session):
        session.bind = session.info["write_bind"]


def _has_connection(session: Session) -> bool:
    # whether this transaction has already queried (SQLAlchemy has no public word for it)
    transaction = session.get_transaction()
    return transaction is not None and bool(transaction._connections)


@contextmanager
def request_session(engine: Engine, *, write: bool) -> Iterator[Session]:
    """The session of one HTTP request (see `RequestWriteSession` for a writing one)."""
    if not write:
        with session_scope(engine) as session:
            yield session
        return
    writer = write_engine(engine)
    info = {"read_bind": engine, "write_bind": writer}
    with RequestWriteSession(writer, expire_on_commit=False, info=info) as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise


def alembic_config(settings: Settings) -> Config:
    """Alembic's configuration, pointed at our migrations and database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", settings.resolved_database_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Apply the migrations up to `revision`."""
    command.upgrade(alembic_config(settings), revision)
