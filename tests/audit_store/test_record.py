"""The choke point: numbering, canonical payloads, redaction, and waking the integrator."""

from __future__ import annotations

import json
import threading
import time

import pytest
import rfc8785
from sqlalchemy import Engine, insert
from sqlmodel import Session, func, select

from infracms import keys
from infracms.audit import store
from infracms.audit.entry import Secret
from infracms.audit.integrator import Integrator
from infracms.audit.note import Signer
from infracms.config import Settings
from infracms.db import session_scope
from infracms.models.audit import AuditCheckpoint, AuditEntry, AuditHead
from infracms.models.base import utcnow
from infracms.services import audit
from tests.helpers import ADMIN, audit_size


def last_payload(engine: Engine) -> dict[str, object]:
    with Session(engine) as session:
        entry = session.exec(select(AuditEntry).order_by(AuditEntry.index.desc())).first()  # type: ignore[attr-defined]
    assert entry is not None
    value: dict[str, object] = json.loads(entry.payload)
    return value


def record_one(engine: Engine, payload: dict[str, object], **extra: object) -> None:
    with session_scope(engine, write=True) as session:
        audit.record(session, actor=ADMIN, action="t.x", subject="t:1", payload=payload, **extra)  # type: ignore[arg-type]
        session.commit()


def test_a_thousand_entries_in_one_transaction_are_numbered_in_order(engine: Engine) -> None:
    before = audit_size(engine)
    with session_scope(engine, write=True) as session:
        entries = [
            audit.record(session, actor=ADMIN, action="t.bulk", subject=f"t:{i}")
            for i in range(1000)
        ]
        session.commit()
    assert [e.index for e in entries] == list(range(before, before + 1000))
    with Session(engine) as session:
        assert session.get(AuditHead, 1).size == before + 1000  # type: ignore[union-attr]


def test_a_session_reused_after_others_committed_takes_the_next_free_index(
    engine: Engine,
) -> None:
    with (
        Session(engine, expire_on_commit=False) as first,
        Session(engine, expire_on_commit=False) as second,
    ):
        a = audit.record(first, actor=ADMIN, action="t.a", subject="t:a")
        first.commit()
        b = audit.record(second, actor=ADMIN, action="t.b", subject="t:b")
        second.commit()
        c = audit.record(first, actor=ADMIN, action="t.c", subject="t:c")
        first.commit()
    assert (b.index, c.index) == (a.index + 1, a.index + 2)


def test_a_rolled_back_entry_frees_its_index(engine: Engine) -> None:
    with session_scope(engine, write=True) as session:
        lost = audit.record(session, actor=ADMIN, action="t.lost", subject="t:1")
        session.rollback()
        kept = audit.record(session, actor=ADMIN, action="t.kept", subject="t:1")
        session.commit()
    assert kept.index == lost.index


def test_payloads_round_trip_and_their_leaf_is_rfc8785(engine: Engine) -> None:
    payload = {"b": 1.5e-7, "a": "é\u2028😀", "n": [3, {"z": None, "y": True}], "\ue000": 1}
    record_one(engine, payload)
    with Session(engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "t.x")).one()
    assert json.loads(entry.payload) == payload
    leaf = store.leaf_data(entry)
    assert b'"payload":' + rfc8785.dumps(payload) + b',"request_id"' in leaf


@pytest.mark.parametrize("bad", [2**60, -(2**53), float("nan"), float("inf"), object(), "\ud800"])
def test_a_payload_that_cannot_be_canonical_fails_the_change(engine: Engine, bad: object) -> None:
    before = audit_size(engine)
    with pytest.raises((ValueError, TypeError)):
        record_one(engine, {"value": bad})
    assert audit_size(engine) == before


def test_secrets_are_withheld_without_a_key(engine: Engine) -> None:
    record_one(
        engine,
        {
            "name": "db",
            "db_password": "hunter2",
            "nested": [{"private_key": "-----BEGIN"}, Secret("s3")],
            "unset_password": None,
        },
    )
    payload = last_payload(engine)
    assert "hunter2" not in json.dumps(payload) and "s3" not in json.dumps(payload)
    assert payload == {
        "name": "db",
        "db_password": {"redacted": "withheld"},
        "nested": [{"private_key": {"redacted": "withheld"}}, {"redacted": "withheld"}],
        "unset_password": None,
    }


def test_secrets_become_keyed_hmacs_equal_for_equal_values(
    engine: Engine, settings: Settings
) -> None:
    key = keys.load_audit_key(settings)
    record_one(
        engine, {"a": Secret("same"), "b": Secret("same"), "password": "other"}, hmac_key=key
    )
    payload = last_payload(engine)
    assert payload["a"] == payload["b"] != payload["password"]
    assert str(payload["a"]).startswith("{'redacted': 'hmac-sha256:")
    assert "same" not in json.dumps(payload)


def test_init_creates_the_audit_key_once(settings: Settings, engine: Engine) -> None:
    key = keys.load_audit_key(settings)
    assert len(key) == 32 and not keys.ensure_audit_key(settings)
    assert keys.audit_key_path(settings).stat().st_mode & 0o077 == 0


def checkpoints(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(AuditCheckpoint)).one())


def wait_for(condition: object, timeout: float) -> float:
    start = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - start < timeout, f"not within {timeout} s"
        time.sleep(0.01)
    return time.monotonic() - start


def test_a_commit_wakes_the_integrator_at_once(engine: Engine, settings: Settings) -> None:
    integrator = Integrator(engine, lambda: audit.node_signer(settings), interval=30, settle=0)
    integrator.start()
    try:
        wait_for(lambda: checkpoints(engine) == 1, 5)
        record_one(engine, {"n": 1})
        took = wait_for(lambda: checkpoints(engine) == 2, 5)
    finally:
        integrator.stop()
    assert took < 1.0


def test_entries_from_elsewhere_are_integrated_within_the_interval(
    engine: Engine, settings: Settings, signer: Signer
) -> None:
    """No nudge reaches this process when another one appends: the interval bounds it."""
    integrator = Integrator(engine, lambda: signer, interval=0.3, settle=0.05)
    integrator.start()
    try:
        wait_for(lambda: checkpoints(engine) == 1, 5)
        with session_scope(engine, write=True) as session:  # as another process would
            head = session.get(AuditHead, 1)
            assert head is not None
            row = {"index": head.size, "time": utcnow(), "actor_kind": "system"}
            row |= {"actor_name": "far", "action": "t.far", "subject": "t:1", "payload": "{}"}
            head.size += 1
            session.execute(insert(store.ENTRIES).values(**row))
            session.commit()
        took = wait_for(lambda: checkpoints(engine) == 2, 5)
    finally:
        integrator.stop()
    assert took < 1.0


def test_the_integrator_survives_errors_and_stops_promptly(
    engine: Engine, settings: Settings
) -> None:
    def broken() -> Signer:
        raise RuntimeError("no key today")

    integrator = Integrator(engine, broken, interval=0.05, settle=0)
    integrator.start()
    time.sleep(0.3)
    started = time.monotonic()
    integrator.stop()
    assert time.monotonic() - started < 2
    assert threading.active_count() >= 1
