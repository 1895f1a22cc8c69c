"""Tampering with the database directly (SQL), then exporting afresh: the offline
verifier must fail and name the entry or checkpoint, at every position tried."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from infracms.audit import store
from infracms.audit.checkpoint import Checkpoint, sign_checkpoint
from infracms.audit.errors import BadCheckpointError, BadEntryError
from infracms.audit.merkle import hash_leaf
from infracms.audit.note import Signer
from infracms.audit.verifier import verify_export, verify_export_file
from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.services import audit
from tests.audit_store.conftest import append_entries
from tests.conftest import make_settings
from tests.helpers import ADMIN

BATCH = 8
Tamper = Callable[[sqlite3.Connection], None]


@pytest.fixture
def log(engine: Engine, settings: Settings) -> int:
    """A log of 41 entries integrated 8 at a time: checkpoints at 8, 16, 24, 32, 40, 41."""
    append_entries(engine, 40, per_transaction=3)
    done = store.integrate(engine, audit.node_signer(settings), batch=BATCH)
    assert done.size == 41
    return done.size


@pytest.fixture
def tampered(tmp_path: Path, settings: Settings) -> Iterator[Callable[[Tamper], Settings]]:
    """Copy the node's database, run some SQL on the copy, and give settings that use it."""
    count = 0

    def make(tamper: Tamper) -> Settings:
        nonlocal count
        count += 1
        copy = tmp_path / f"copy{count}" / "infracms.db"
        copy.parent.mkdir()
        source, target = sqlite3.connect(settings.data_dir / "infracms.db"), sqlite3.connect(copy)
        source.backup(target)
        source.close()
        tamper(target)
        target.commit()
        target.close()
        return make_settings(
            copy.parent,
            database_url=f"sqlite:///{copy}",
            identity_key_file=settings.resolved_identity_key_file,
        )

    yield make


def export_of(settings: Settings) -> list[bytes]:
    """A fresh export of the database `settings` point at."""
    engine = make_engine(settings)
    try:
        with session_scope(engine) as session:
            return list(audit.export_lines(session=session, actor=ADMIN, settings=settings))
    finally:
        engine.dispose()


def entry_failure(settings: Settings) -> BadEntryError:
    with pytest.raises(BadEntryError) as caught:
        verify_export(export_of(settings), audit.verifier_key(settings))
    return caught.value


def sql(statement: str, *args: object) -> Tamper:
    return lambda db: db.execute(statement, args) and None


def run_all(*statements: tuple[str, tuple[object, ...]]) -> Tamper:
    def tamper(db: sqlite3.Connection) -> None:
        for statement, args in statements:
            db.execute(statement, args)

    return tamper


POSITIONS = [0, 7, 8, 20, 39, 40]


def test_the_untouched_copy_verifies(log: int, tampered: Callable[[Tamper], Settings]) -> None:
    copy = tampered(lambda db: None)
    report = verify_export(export_of(copy), audit.verifier_key(copy))
    assert (report.entries, report.checkpoints, report.size) == (log, 6, log)


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize(
    "column, value",
    [
        ("payload", '{"n":999,"tag":"e"}'),
        ("actor_name", "mallory"),
        ("action", "test.nothing"),
        ("time", "2001-01-01 00:00:00.000000"),
        ("organisation_id", "0123456789abcdef0123456789abcdef"),
    ],
)
def test_a_modified_row_is_named(
    log: int,
    tampered: Callable[[Tamper], Settings],
    position: int,
    column: str,
    value: str,
) -> None:
    statement = f'UPDATE audit_entry SET {column} = ? WHERE "index" = ?'
    failure = entry_failure(tampered(sql(statement, value, position)))
    assert (failure.position, failure.reason) == (position, "modified"), str(failure)
    assert f"entry {position}" in str(failure)


@pytest.mark.parametrize("position", POSITIONS)
def test_a_deleted_row_is_named(
    log: int, tampered: Callable[[Tamper], Settings], position: int
) -> None:
    failure = entry_failure(tampered(sql('DELETE FROM audit_entry WHERE "index" = ?', position)))
    assert (failure.position, failure.reason) == (position, "deleted"), str(failure)


def shift_from(position: int) -> list[tuple[str, tuple[object, ...]]]:
    """Make room at `position` by moving every later row up one index."""
    return [
        ('UPDATE audit_entry SET "index" = "index" + 1000000 WHERE "index" >= ?', (position,)),
        ('UPDATE audit_entry SET "index" = "index" - 999999 WHERE "index" >= 1000000', ()),
    ]


@pytest.mark.parametrize("position", POSITIONS)
def test_an_inserted_row_is_named(
    log: int, tampered: Callable[[Tamper], Settings], position: int
) -> None:
    forge = (
        'INSERT INTO audit_entry ("index", time, actor_kind, actor_id, actor_name, '
        "organisation_id, action, subject, payload, request_id) "
        "SELECT ?, time, actor_kind, actor_id, actor_name, organisation_id, 'host.delete', "
        "'host:clinic/web1', '{}', request_id FROM audit_entry WHERE \"index\" = ?"
    )
    failure = entry_failure(
        tampered(run_all(*shift_from(position), (forge, (position, position + 1))))
    )
    assert failure.position == position, str(failure)
    assert failure.reason in ("inserted", "modified"), str(failure)


SWAP = (
    "UPDATE audit_entry SET "
    + ", ".join(
        f'{c} = (SELECT {c} FROM audit_entry AS o WHERE o."index" = '
        f'CASE audit_entry."index" WHEN :a THEN :b ELSE :a END)'
        for c in (
            "time",
            "actor_kind",
            "actor_id",
            "actor_name",
            "organisation_id",
            "action",
            "subject",
            "payload",
            "request_id",
        )
    )
    + ' WHERE "index" IN (:a, :b)'
)


@pytest.mark.parametrize("first", [0, 7, 20, 39])
def test_reordered_rows_are_named(
    log: int, tampered: Callable[[Tamper], Settings], first: int
) -> None:
    def swap(db: sqlite3.Connection) -> None:
        db.execute(SWAP, {"a": first, "b": first + 1})

    failure = entry_failure(tampered(swap))
    assert failure.position == first, str(failure)
    assert failure.reason in ("reordered", "modified"), str(failure)


def test_moving_a_row_to_another_index_is_named(
    log: int, tampered: Callable[[Tamper], Settings]
) -> None:
    moves = run_all(
        ('UPDATE audit_entry SET "index" = -1 WHERE "index" = 5', ()),
        ('UPDATE audit_entry SET "index" = 5 WHERE "index" = 12', ()),
        ('UPDATE audit_entry SET "index" = 12 WHERE "index" = -1', ()),
    )
    failure = entry_failure(tampered(moves))
    assert failure.position == 5, str(failure)


def test_a_row_that_is_no_entry_is_named_malformed(
    log: int, tampered: Callable[[Tamper], Settings]
) -> None:
    failure = entry_failure(
        tampered(sql("UPDATE audit_entry SET payload = '[' WHERE \"index\" = 9"))
    )
    assert failure.position == 9 and failure.reason == "malformed", str(failure)


@pytest.mark.parametrize("number", [0, 2, 5])
def test_a_checkpoint_signed_by_another_key_is_named(
    log: int,
    tampered: Callable[[Tamper], Settings],
    engine: Engine,
    settings: Settings,
    number: int,
) -> None:
    size = [8, 16, 24, 32, 40, 41][number]
    with session_scope(engine) as session:
        root = store.root_at(session, size)
    forger = Signer.generate(settings.node_name)
    forged = sign_checkpoint(Checkpoint(settings.node_name, size, root), forger)
    bad = tampered(sql("UPDATE audit_checkpoint SET note = ? WHERE size = ?", forged, size))
    with pytest.raises(BadCheckpointError) as caught:
        verify_export(export_of(bad), audit.verifier_key(bad))
    assert caught.value.number == number, str(caught.value)


REPLACE_WITH_OLDER = (
    "UPDATE audit_checkpoint SET note = "
    "(SELECT note FROM audit_checkpoint WHERE size = ?) WHERE size = ?"
)


def test_the_latest_checkpoint_replaced_by_an_older_genuine_one_is_named(
    log: int, tampered: Callable[[Tamper], Settings]
) -> None:
    bad = tampered(sql(REPLACE_WITH_OLDER, 40, 41))
    with pytest.raises(BadCheckpointError) as caught:
        verify_export(export_of(bad), audit.verifier_key(bad))
    assert caught.value.number == 5, str(caught.value)
    assert "entries past a checkpoint are not signed" in str(caught.value)


@pytest.mark.parametrize("number", [1, 3])
def test_an_earlier_checkpoint_replaced_by_another_genuine_one_is_flagged_by_the_node(
    log: int, tampered: Callable[[Tamper], Settings], number: int
) -> None:
    """Every note left still signs the truth, so the export verifies (it only lost a
    checkpoint); the node's own list of checkpoints shows the row does not match."""
    sizes = [8, 16, 24, 32, 40, 41]
    bad = tampered(sql(REPLACE_WITH_OLDER, sizes[number - 1], sizes[number]))
    verify_export(export_of(bad), audit.verifier_key(bad))
    engine = make_engine(bad)
    with session_scope(engine) as session:
        listed = audit.list_checkpoints(session=session, settings=bad).items
    engine.dispose()
    flagged = [c for c in listed if not c.signature_ok]
    assert [c.size for c in flagged] == [sizes[number]]
    assert f"stored as size {sizes[number]}" in str(flagged[0].problem)


def test_an_entry_rewritten_with_its_leaf_hash_is_caught_by_the_signed_root(
    log: int, tampered: Callable[[Tamper], Settings], engine: Engine, settings: Settings
) -> None:
    with session_scope(engine) as session:
        record = store.pending_rows(session, 20, 1)[0]
    leaf = hash_leaf(store.leaf_data(replace(record, actor_name="mallory")))

    def rewrite(db: sqlite3.Connection) -> None:
        db.execute("UPDATE audit_entry SET actor_name = 'mallory' WHERE \"index\" = 20")
        db.execute("UPDATE audit_hash SET hash = ? WHERE id = 20", (leaf,))

    with pytest.raises(BadCheckpointError) as caught:
        verify_export(export_of(tampered(rewrite)), audit.verifier_key(settings))
    assert caught.value.number == 2 and "[16, 24)" in str(caught.value), str(caught.value)


def test_the_command_line_names_the_entry_and_fails(
    log: int, tampered: Callable[[Tamper], Settings], tmp_path: Path
) -> None:
    bad = tampered(sql("UPDATE audit_entry SET subject = 'x' WHERE \"index\" = 33"))
    export = tmp_path / "tampered.jsonl"
    export.write_bytes(b"".join(export_of(bad)))
    key = audit.verifier_key(bad)
    result = subprocess.run(
        [sys.executable, "-m", "infracms", "audit", "verify", str(export), "--key", key],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 7, result.stdout + result.stderr
    assert "entry 33 was modified" in result.stderr
    with pytest.raises(BadEntryError):
        verify_export_file(export, key)


def test_the_entry_page_shows_a_modified_row(
    log: int, tampered: Callable[[Tamper], Settings]
) -> None:
    bad = tampered(sql("UPDATE audit_entry SET payload = '{}' WHERE \"index\" = 12"))
    engine = make_engine(bad)
    with session_scope(engine) as session:
        detail = audit.get_entry(session=session, actor=ADMIN, settings=bad, index=12)
        fine = audit.get_entry(session=session, actor=ADMIN, settings=bad, index=13)
    engine.dispose()
    assert detail.integrated and detail.intact is False and detail.proof_verifies is False
    assert fine.intact is True and fine.proof_verifies is True
