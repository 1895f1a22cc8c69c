"""Events from the sink to the database and back, on SQLite and on PostgreSQL (COPY)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from infracms.db import session_scope
from infracms.models.run import Run, RunKind
from infracms.runs.events import MASK, EventSink, Redactor
from infracms.services import runs
from tests.helpers import ADMIN, make_org

SECRET = "hunter2-but-longer"


def test_a_batch_is_stored_as_it_came_and_read_back_in_order(any_engine: Engine) -> None:
    org = make_org(any_engine, "clinic")
    with session_scope(any_engine, write=True) as session:
        run = Run(organisation_id=org, kind=RunKind.apply, requested_by="admin", hosts=["web1"])
        session.add(run)
        session.commit()
        run_id = run.id

    def write(run_id: Any, rows: list[dict[str, Any]]) -> None:
        with session_scope(any_engine, write=True) as session:
            runs.write_events(session, run_id=run_id, rows=rows)

    made = "2026-03-04T05:06:07.123456"
    with EventSink(run_id, write, Redactor([SECRET]), batch=7, interval=60) as sink:
        for n in range(1, 31):
            result = {"changed": n % 3 == 0, "msg": f"n={n} pw={SECRET}", "diff": {"n": [n]}}
            line = f"{'changed' if n % 3 == 0 else 'ok'}: [web1] \t tab, 'quote', \\ and é"
            sink(
                {
                    "event": "runner_on_ok",
                    "stdout": line,
                    "created": made,
                    "event_data": {"host": "web1", "task": f"task {n}", "res": result},
                }
            )
    with session_scope(any_engine) as session:
        stored = runs.run_events(
            session=session, actor=ADMIN, organisation="clinic", run_id=run_id, limit=100
        )
        count = session.get(Run, run_id).event_count  # type: ignore[union-attr]
    assert [e.seq for e in stored] == list(range(1, 31)) and count == 30
    third = stored[2]
    assert (third.status, third.changed, third.task) == ("changed", True, "task 3")
    assert third.stdout == "changed: [web1] \t tab, 'quote', \\ and é"
    assert third.data["msg"] == f"n=3 pw={MASK}" and third.data["diff"] == {"n": [3]}
    assert third.created_at == datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    assert SECRET not in repr(stored)
