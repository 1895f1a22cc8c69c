"""The node's self check of its stored rows against its signed checkpoints."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy import Engine

from infracms.audit import store
from infracms.config import Settings
from infracms.services import audit
from tests.audit_store.conftest import append_entries


@pytest.fixture
def log(engine: Engine, settings: Settings) -> int:
    """41 entries (with init's) integrated 8 at a time: checkpoints at 8, 16, …, 40, 41."""
    append_entries(engine, 39, per_transaction=3)  # plus init's entries
    done = store.integrate(engine, audit.node_signer(settings), batch=8)
    return done.size


def sql(settings: Settings, statement: str) -> None:
    connection = sqlite3.connect(settings.data_dir / "infracms.db")
    connection.execute(statement)
    connection.commit()
    connection.close()


def test_an_untouched_log_passes_and_health_is_ok(
    engine: Engine, settings: Settings, log: int
) -> None:
    assert audit.health(engine=engine)["audit"] == "not checked yet"
    outcome = audit.self_check(engine=engine, settings=settings)
    assert (outcome.ok, outcome.size, outcome.first_bad) == (True, log, None), outcome
    assert audit.health(engine=engine) == {"status": "ok", "audit": "verified"}


@pytest.mark.parametrize(
    ("statement", "index", "words"),
    [
        (
            "UPDATE audit_entry SET subject = 'x' WHERE \"index\" = 13",
            13,
            "entry 13 does not match",
        ),
        ('DELETE FROM audit_entry WHERE "index" = 20', 20, "entry 20 is missing"),
        ("UPDATE audit_entry SET payload = '[' WHERE \"index\" = 3", 3, "entry 3 is malformed"),
        ("UPDATE audit_hash SET hash = zeroblob(32) WHERE id = 30", 30, "entry 30 does not match"),
        ("UPDATE audit_tree SET size = 16", 16, "the tree was set back"),
    ],
)
def test_a_tampered_store_fails_loudly_and_nothing_more_is_signed(
    engine: Engine,
    settings: Settings,
    log: int,
    statement: str,
    index: int,
    words: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sql(settings, statement)
    with caplog.at_level(logging.ERROR, logger="infracms.services.audit"):
        outcome = audit.self_check(engine=engine, settings=settings)
    assert (outcome.ok, outcome.first_bad) == (False, index), outcome
    assert words in outcome.detail, outcome.detail
    assert f"audit self check failed at entry {index}" in caplog.text
    assert audit.health(engine=engine)["status"] == "degraded"

    append_entries(engine, 2, tag="after")
    with pytest.raises(store.SelfCheckFailed, match="no checkpoint is signed"):
        store.integrate(engine, audit.node_signer(settings))
    with pytest.raises(store.SelfCheckFailed) as caught:
        audit.sign_checkpoint(engine=engine, settings=settings)
    assert caught.value.index == index


def test_a_leaf_and_its_stored_hash_changed_together_is_narrowed_to_a_checkpoint(
    engine: Engine, settings: Settings, log: int
) -> None:
    from infracms.audit.merkle import hash_leaf
    from infracms.db import session_scope

    sql(settings, "UPDATE audit_entry SET subject = 'x' WHERE \"index\" = 13")
    with session_scope(engine) as session:
        rows = list(store.entry_records(session.execute(store.select_entries())))
    leaf = hash_leaf(store.leaf_data(rows[13])).hex()
    sql(settings, f"UPDATE audit_hash SET hash = x'{leaf}' WHERE id = 13")
    outcome = audit.self_check(engine=engine, settings=settings)
    assert (outcome.ok, outcome.first_bad) == (False, 8), outcome
    assert "an entry in [8, 16) was changed together with its stored leaf hash" in outcome.detail


def test_a_passing_check_after_repair_lets_the_node_sign_again(
    engine: Engine, settings: Settings, log: int
) -> None:
    sql(settings, "UPDATE audit_entry SET action = 'x' WHERE \"index\" = 5")
    assert not audit.self_check(engine=engine, settings=settings).ok
    sql(settings, "UPDATE audit_entry SET action = 'test.append' WHERE \"index\" = 5")
    assert audit.self_check(engine=engine, settings=settings).ok
    append_entries(engine, 1, tag="after")
    assert audit.sign_checkpoint(engine=engine, settings=settings).size == log + 1
