"""The log on PostgreSQL: several processes appending and integrating at once never
give two entries one index or leave a gap, and the tree they build verifies."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from infracms.audit import merkle, store
from infracms.audit.verifier import verify_export
from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models import AuditEntry, AuditHead, Host
from infracms.services import audit
from infracms.services.setup import initialise
from tests.audit_store.conftest import append_entries
from tests.conftest import make_settings
from tests.helpers import ADMIN, make_org
from tests.support.server import settings_env

pytestmark = pytest.mark.postgres
PROCESSES = 4
CHANGES = 30


@pytest.fixture
def pg_settings(tmp_path: Path, fresh_postgres_database: str) -> Settings:
    return make_settings(tmp_path / "var", database_url=fresh_postgres_database)


@pytest.fixture
def pg_engine(pg_settings: Settings) -> Engine:
    engine = make_engine(pg_settings)
    initialise(pg_settings, engine)
    yield engine  # type: ignore[misc]
    engine.dispose()


def all_leaves(engine: Engine) -> list[merkle.LeafHash]:
    with session_scope(engine) as session:
        return [merkle.hash_leaf(store.leaf_data(r)) for r in store.pending_rows(session, 0, 10**9)]


def export_lines(engine: Engine, settings: Settings) -> list[bytes]:
    with session_scope(engine) as session:
        return list(audit.export_lines(session=session, actor=ADMIN, settings=settings))


@pytest.mark.slow
def test_processes_appending_and_integrating_at_once_keep_one_gapless_log(
    pg_engine: Engine, pg_settings: Settings
) -> None:
    make_org(pg_engine, "clinic")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRACMS_")}
    env.update(settings_env(pg_settings))
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.audit_store.appender", str(CHANGES), f"p{n}"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    for writer in writers:
        _, errors = writer.communicate(timeout=300)
        assert writer.returncode == 0, errors
    with Session(pg_engine) as session:
        indexes = list(session.exec(select(AuditEntry.index).order_by(AuditEntry.index)))
        head = session.get(AuditHead, 1)
        hosts = set(session.exec(select(Host.name)))
        created = Counter(
            session.exec(select(AuditEntry.subject).where(AuditEntry.action == "host.create"))
        )
    assert indexes == list(range(len(indexes))), "two entries share an index, or one is missing"
    assert head is not None and head.size == len(indexes)
    assert len(hosts) == PROCESSES * CHANGES
    assert created == Counter(f"host:clinic/{name}" for name in hosts)
    leaves = all_leaves(pg_engine)
    with session_scope(pg_engine) as session:
        state = store.tree_state(session)
        assert state.size == len(leaves) and state.root == merkle.root_of(leaves)
        signed = store.list_checkpoints(session, limit=10_000, offset=0)
    assert len(signed) > PROCESSES
    for checkpoint in signed:
        assert checkpoint.root == merkle.root_of(leaves[: checkpoint.size])
    report = verify_export(export_lines(pg_engine, pg_settings), audit.verifier_key(pg_settings))
    assert report.entries == len(leaves)


def test_proofs_tiles_and_export_on_postgres(pg_engine: Engine, pg_settings: Settings) -> None:
    append_entries(pg_engine, 300, per_transaction=100)
    done = store.integrate(pg_engine, audit.node_signer(pg_settings), batch=64)
    leaves = all_leaves(pg_engine)
    assert done.size == len(leaves) and done.root == merkle.root_of(leaves)
    memory = merkle.dict_reader(dict(merkle.integrate(0, merkle.dict_reader({}), leaves).stored))
    with session_scope(pg_engine) as session:
        for size in (1, 5, 64, 256, 257, done.size):
            for index in {0, size // 2, size - 1}:
                proof = store.inclusion_proof(session, index, size)
                assert proof == merkle.inclusion_proof(index, size, memory)
            old = min(3, size)
            assert store.consistency_proof(session, old, size) == merkle.consistency_proof(
                old, size, memory
            )
        tile = audit.read_tile(session=session, actor=None, level="0", index="000")
    assert tile == b"".join(leaves[:256])
    report = verify_export(export_lines(pg_engine, pg_settings), audit.verifier_key(pg_settings))
    assert (report.entries, report.checkpoints) == (done.size, done.checkpoints)
