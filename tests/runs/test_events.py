"""Events: batched writes, secrets masked, recap from the stats event."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from infracms.runs.events import MASK, EventSink, Redactor

SECRET = "s3cret-Value-42"


def event(counter: int, name: str = "runner_on_ok", **data: Any) -> dict[str, Any]:
    return {"event": name, "counter": counter, "stdout": f"line {counter}", "event_data": data}


def test_batches_not_one_write_per_event() -> None:
    writes: list[int] = []
    sink = EventSink(
        uuid.uuid4(),
        lambda run_id, rows: writes.append(len(rows)),
        Redactor([]),
        batch=100,
        interval=5,
    )
    with sink:
        for i in range(1000):
            sink(event(i, host="web1", task="t", res={"changed": i % 2 == 0}))
        deadline = time.monotonic() + 5
        while sum(writes) < 1000 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert sum(writes) == 1000
    assert len(writes) <= 15, writes  # batches of about 100, not 1,000 transactions


def test_slow_trickle_is_flushed_within_the_interval() -> None:
    seen = threading.Event()
    sink = EventSink(
        uuid.uuid4(), lambda run_id, rows: seen.set(), Redactor([]), batch=500, interval=0.05
    )
    with sink:
        sink(event(1))
        assert seen.wait(1.0)


def test_secrets_are_masked_in_stdout_and_data() -> None:
    rows: list[dict[str, Any]] = []
    sink = EventSink(
        uuid.uuid4(), lambda run_id, batch: rows.extend(batch), Redactor([SECRET, "ab"])
    )
    with sink:
        sink(
            {
                "event": "runner_on_failed",
                "stdout": f"fatal: password {SECRET} rejected",
                "event_data": {
                    "host": "web1",
                    "task": "login",
                    "res": {"msg": f"bad {SECRET}", "changed": False},
                },
            }
        )
    assert SECRET not in repr(rows)
    assert rows[0]["stdout"] == f"fatal: password {MASK} rejected"
    assert rows[0]["data"]["msg"] == f"bad {MASK}"
    assert rows[0]["status"] == "failed"


def test_recap_and_statuses() -> None:
    rows: list[dict[str, Any]] = []
    sink = EventSink(uuid.uuid4(), lambda run_id, batch: rows.extend(batch), Redactor([]))
    with sink:
        sink(event(1, host="a", res={"changed": True}))
        sink(event(2, "runner_on_unreachable", host="b", res={"msg": "no route"}))
        sink(
            event(3, "playbook_on_stats", ok={"a": 3}, changed={"a": 1}, dark={"b": 1}, failures={})
        )
    assert [r["status"] for r in rows] == ["changed", "unreachable", None]
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert sink.recap == {"a": {"ok": 3, "changed": 1}, "b": {"unreachable": 1}}


def test_a_censored_result_keeps_whether_it_changed() -> None:
    """ansible-runner drops a no_log result whole; the task's line still tells."""
    rows: list[dict[str, Any]] = []
    censored = {"censored": "the output has been hidden"}
    sink = EventSink(uuid.uuid4(), lambda run_id, batch: rows.extend(batch), Redactor([]))
    with sink:
        for counter, line in enumerate(("changed: [web1]", "ok: [web1]"), start=1):
            sink(
                {
                    "event": "runner_on_ok",
                    "counter": counter,
                    "stdout": line,
                    "event_data": {"host": "web1", "task": "secret", "res": censored},
                }
            )
    assert [(r["status"], r["changed"]) for r in rows] == [("changed", True), ("ok", False)]


def test_an_event_is_dated_when_ansible_made_it() -> None:
    rows: list[dict[str, Any]] = []
    sink = EventSink(uuid.uuid4(), lambda run_id, batch: rows.extend(batch), Redactor([]))
    with sink:
        sink({**event(1), "created": "2026-01-02T03:04:05.250000"})
        sink({**event(2), "created": "not a time"})
    assert rows[0]["created_at"] == datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)
    assert abs((rows[1]["created_at"] - datetime.now(UTC)).total_seconds()) < 60
