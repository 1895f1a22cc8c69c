"""Run event ingestion: ansible-runner-shaped events into SQLite and PostgreSQL.

Synthetic events shaped like ansible-runner's (a task start, then a start and an ok or
changed result per host, with the result's ``res`` and stdout, a few failures) are
pushed as fast as one producer thread can into the `EventSink` that executes runs
(redaction, batching), whose writer is ``services.runs.write_events`` in a write
session, exactly as ``orchestration/execute.py`` wires it. The clock runs from the first event
pushed to the last one committed. The baseline stores each event in a transaction of
its own (what the sink exists to avoid); the ratio is batched over baseline.
Target: >= 10,000 events/s on both databases.

    .venv/bin/python bench/event_ingest.py [--events 50000] [--baseline-events 2000] [--hosts 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, func
from sqlmodel import select

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models import Organisation
from infracms.models.run import Run, RunEvent, RunKind
from infracms.runs.events import EventSink, Redactor
from infracms.services import runs as run_service
from infracms.services.setup import initialise
from tests.support.postgres import create_database, drop_database, postgres_url

TARGET = 10_000
SECRETS = ("correct-horse-battery-staple", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA")
TASKS = (
    ("Look up the time zone", "ansible.builtin.stat"),
    ("Point /etc/localtime at the time zone", "ansible.builtin.file"),
    ("Name the time zone in /etc/timezone", "ansible.builtin.copy"),
    ("Switch unattended upgrades on or off", "ansible.builtin.template"),
)


def runner_events(count: int, hosts: int) -> Iterator[dict[str, Any]]:
    """`count` events as ansible-runner hands them to an event handler."""
    counter = 0
    play = {"playbook": "apply.yml", "play": "Apply infracms definitions", "play_pattern": "all"}
    while True:
        for task, action in TASKS:
            common = {**play, "task": task, "task_action": action, "role": "base"}
            batch: list[tuple[str, str, dict[str, Any]]] = [
                ("playbook_on_task_start", f"\nTASK [base : {task}] " + "*" * 40, common)
            ]
            for h in range(hosts):
                host = f"host-{h:05d}"
                where = {**common, "host": host, "remote_addr": f"10.231.0.{h % 250 + 2}"}
                batch.append(("runner_on_start", "", where))
                changed = (counter + h) % 3 == 0
                failed = (counter + h) % 97 == 0
                res = {
                    "changed": changed,
                    "path": "/etc/timezone",
                    "mode": "0644",
                    "invocation": {"module_args": {"dest": "/etc/timezone", "mode": "0644"}},
                    "_ansible_no_log": False,
                }
                if failed:
                    name, line = "runner_on_failed", f"fatal: [{host}]: FAILED! => {{...}}"
                    res["msg"] = "Destination directory /etc does not exist"
                else:
                    name, line = "runner_on_ok", f"{'changed' if changed else 'ok'}: [{host}]"
                batch.append((name, line, {**where, "res": res, "duration": 0.41}))
            for name, stdout, data in batch:
                counter += 1
                yield {
                    "uuid": str(uuid.uuid4()),
                    "counter": counter,
                    "stdout": stdout,
                    "start_line": counter,
                    "end_line": counter + 1,
                    "runner_ident": "bench",
                    "event": name,
                    "pid": 4242,
                    "created": datetime.now(UTC).isoformat(),
                    "event_data": {**data, "uuid": str(uuid.uuid4())},
                }
                if counter == count:
                    return


def new_run(engine: Engine) -> uuid.UUID:
    """A run row for the events to belong to."""
    with session_scope(engine, write=True) as session:
        org = session.exec(select(Organisation).where(Organisation.name == "bench")).first()
        if org is None:
            org = Organisation(name="bench")
            session.add(org)
            session.flush()
        run = Run(organisation_id=org.id, kind=RunKind.apply, requested_by="bench")
        session.add(run)
        session.commit()
        return run.id


def writer(engine: Engine) -> Callable[[uuid.UUID, list[dict[str, Any]]], None]:
    """The sink's writer, as orchestration/execute.py makes it."""

    def write(run_id: uuid.UUID, rows: list[dict[str, Any]]) -> None:
        with session_scope(engine, write=True) as session:
            run_service.write_events(session, run_id=run_id, rows=rows)

    return write


def stored(engine: Engine, run_id: uuid.UUID) -> int:
    with session_scope(engine) as session:
        query = select(func.count()).select_from(RunEvent).where(RunEvent.run_id == run_id)
        return int(session.exec(query).one())


def batched(engine: Engine, events: list[dict[str, Any]]) -> tuple[float, int]:
    """Events/s through EventSink -> write_events, first push to last commit; batches."""
    run_id = new_run(engine)
    batches: list[int] = []
    write = writer(engine)

    def counting(run: uuid.UUID, rows: list[dict[str, Any]]) -> None:
        batches.append(len(rows))
        write(run, rows)

    start = time.perf_counter()
    with EventSink(run_id, counting, Redactor(SECRETS)) as sink:
        for event in events:
            sink(event)
    took = time.perf_counter() - start
    assert stored(engine, run_id) == len(events), "not every event was stored"
    return len(events) / took, len(batches)


def one_per_event(engine: Engine, events: list[dict[str, Any]]) -> float:
    """Events/s with one transaction per event (the baseline)."""
    run_id = new_run(engine)
    write = writer(engine)
    shaper = EventSink(run_id, write, Redactor(SECRETS))  # only its row shaping is used
    start = time.perf_counter()
    for event in events:
        write(run_id, [shaper._row(event)])
    took = time.perf_counter() - start
    assert stored(engine, run_id) == len(events)
    return len(events) / took


def measure(name: str, settings: Settings, args: argparse.Namespace) -> list[str]:
    engine = make_engine(settings)
    initialise(settings, engine)
    events = list(runner_events(args.events, args.hosts))
    batched(engine, events[: min(2000, len(events))])  # warm up connections and caches
    rates, batches = [], []
    for _ in range(args.repeat):
        rate, count = batched(engine, events)
        rates.append(rate)
        batches.append(count)
    baseline = one_per_event(engine, events[: args.baseline_events])
    engine.dispose()
    best, median = max(rates), statistics.median(rates)
    verdict = "ok" if median >= TARGET else "MISSED"
    return [
        name,
        f"{median:,.0f}",
        f"{best:,.0f}",
        f"{statistics.median(batches):.0f}",
        f"{baseline:,.0f}",
        f"{median / baseline:.0f}x",
        verdict,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--baseline-events", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=50, help="hosts the events are spread over")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    rows = []
    common: dict[str, Any] = {
        "admin_password": "bench-password-1",
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
    }
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(measure("sqlite", Settings(data_dir=Path(tmp) / "sqlite", **common), args))
        if not args.skip_postgres:
            url = create_database(postgres_url())
            try:
                settings = Settings(data_dir=Path(tmp) / "pg", database_url=url, **common)
                rows.append(measure("postgresql", settings, args))
            finally:
                drop_database(url)
    header = [
        "database",
        "batched ev/s (median)",
        "best",
        "batches",
        "1 tx/event ev/s",
        "ratio",
        "target >=10,000/s",
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(
        f"\n{args.events:,} events over {args.hosts} hosts, median of {args.repeat}; "
        f"baseline over {args.baseline_events:,} events; one producer thread, "
        "the sink's flusher writing (EventSink defaults: 500 a batch or every 0.2 s)"
    )


if __name__ == "__main__":
    main()
