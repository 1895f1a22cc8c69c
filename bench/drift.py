"""Extracting and storing the drift of 1,000 hosts x 8 definitions, on SQLite (and PostgreSQL).

One organisation with N hosts in 20 groups, 8 published definitions (each a module of
its own, on the group above all the others), every host applied once. A plan run over
all of them is stored as an executor stores it: per host and definition two changed
tasks with a diff and two unchanged ones (N x 32 events). What is timed is
`finish_run` (the run's end, the host standing, the drift rows and an audit entry per
drifted host, one commit), with the first plan (every host newly drifted: N audit
entries) and a second, identical one (nothing new to audit), and the extraction and
storing alone (`drift_record.record`).
Target: <= 1 s for 1,000 hosts x 8 definitions.

    .venv/bin/python bench/drift.py [--hosts 1000] [--repeat 3] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine
from sqlmodel import select

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models import (
    Definition,
    Host,
    HostGroup,
    HostGroupLink,
    HostOutcome,
    HostRunState,
    Organisation,
    Revision,
    Run,
    RunKind,
    RunStatus,
)
from infracms.models.base import utcnow
from infracms.models.schedule import DriftState, HostDrift
from infracms.services import drift_record, runs
from infracms.services.setup import initialise
from tests.support.postgres import create_database, drop_database, postgres_url

DEFINITIONS = 8
GROUPS = 20
PASSWORD = "bench-password-long"


def populate(engine: Engine, hosts: int) -> tuple[uuid.UUID, list[dict[str, Any]]]:
    """The organisation as the docstring says; its id and the run's definitions."""
    now = utcnow()
    with session_scope(engine, write=True) as session:
        org = Organisation(name="bench")
        session.add(org)
        session.flush()
        top = HostGroup(name="all", organisation_id=org.id)
        session.add(top)
        session.flush()
        groups = [
            HostGroup(name=f"g{i:02d}", organisation_id=org.id, parent_id=top.id)
            for i in range(GROUPS)
        ]
        session.add_all(groups)
        rows = [
            Host(name=f"host-{i:05d}", address="198.51.100.1", organisation_id=org.id)
            for i in range(hosts)
        ]
        session.add_all(rows)
        session.flush()
        session.add_all(
            HostGroupLink(host_id=h.id, group_id=groups[i % GROUPS].id) for i, h in enumerate(rows)
        )
        pinned = []
        for i in range(DEFINITIONS):
            d = Definition(
                name=f"def-{i}",
                module=f"module{i}",
                organisation_id=org.id,
                group_id=top.id,
                published=1,
                latest=1,
            )
            session.add(d)
            session.flush()
            session.add(Revision(definition_id=d.id, number=1, settings={}, author="bench"))
            pinned.append({"name": d.name, "module": d.module, "revision": 1})
        applied = {d["name"]: 1 for d in pinned}
        session.add_all(
            HostRunState(
                host_id=h.id,
                organisation_id=org.id,
                last_kind=RunKind.apply,
                last_outcome=HostOutcome.ok,
                last_run_at=now,
                applied_at=now,
                applied=applied,
            )
            for h in rows
        )
        session.commit()
        return org.id, pinned


def plan_run(
    engine: Engine, org_id: uuid.UUID, hosts: int, pinned: list[dict[str, Any]]
) -> uuid.UUID:
    """A plan over every host, claimed, with its events stored."""
    names = [f"host-{i:05d}" for i in range(hosts)]
    with session_scope(engine, write=True) as session:
        run = Run(
            organisation_id=org_id,
            kind=RunKind.plan,
            requested_by="bench",
            hosts=names,
            definitions=pinned,
        )
        session.add(run)
        session.commit()
        run_id = run.id
        runs.claim_run(session, run_id=run_id, worker="bench")
    events, seq, now = [], 0, utcnow()
    for host in names:
        for d in pinned:
            for task in range(4):
                seq += 1
                changed = task < 2
                events.append(
                    {
                        "run_id": run_id,
                        "seq": seq,
                        "event": "runner_on_ok",
                        "host": host,
                        "task": f"{d['module']} task {task}",
                        "status": "changed" if changed else "ok",
                        "changed": changed,
                        "stdout": "",
                        "created_at": now,
                        "data": {
                            "role": d["module"],
                            "diff": {"before": "a\n", "after": f"{host}\n"},
                        }
                        if changed
                        else {"role": d["module"]},
                    }
                )
    with session_scope(engine, write=True) as session:
        for start in range(0, len(events), 5000):
            runs.write_events(session, run_id=run_id, rows=events[start : start + 5000])
    return run_id


def finish(engine: Engine, run_id: uuid.UUID, hosts: int) -> float:
    recap = {f"host-{i:05d}": {"ok": 16, "changed": 16} for i in range(hosts)}
    with session_scope(engine, write=True) as session:
        start = time.perf_counter()
        runs.finish_run(
            session,
            run_id=run_id,
            status=RunStatus.succeeded,
            rc=0,
            recap=recap,
            stdout_sha256=None,
        )
        return time.perf_counter() - start


def extract_only(engine: Engine, run_id: uuid.UUID, hosts: int) -> float:
    """drift_record.record alone, in a transaction rolled back."""
    with session_scope(engine, write=True) as session:
        run = session.get(Run, run_id)
        assert run is not None
        run.finished_at = utcnow()
        ids = dict(session.exec(select(Host.name, Host.id)).all())
        outcomes = {name: HostOutcome.changed for name in ids}
        start = time.perf_counter()
        drift_record.record(session, run, ids, outcomes, set(ids.values()))
        session.flush()
        took = time.perf_counter() - start
        session.rollback()
        return took


def run_case(name: str, settings: Settings, hosts: int, repeat: int) -> list[list[str]]:
    engine = make_engine(settings)
    initialise(settings, engine)
    org_id, pinned = populate(engine, hosts)
    first = finish(engine, plan_run(engine, org_id, hosts, pinned), hosts)
    again = [finish(engine, plan_run(engine, org_id, hosts, pinned), hosts) for _ in range(repeat)]
    last = plan_run(engine, org_id, hosts, pinned)
    extract = [extract_only(engine, last, hosts) for _ in range(repeat)]
    with session_scope(engine) as session:
        drifted = len(
            session.exec(select(HostDrift).where(HostDrift.state == DriftState.drifted)).all()
        )
    engine.dispose()
    assert drifted == hosts, f"{drifted} hosts drifted, expected {hosts}"
    size = f"{hosts} x {DEFINITIONS}"
    rows = []
    for label, seconds in (
        ("finish_run, first plan (all drift new, audited)", [first]),
        ("finish_run, same drift again", again),
        ("drift extraction and storing alone", extract),
    ):
        p50 = statistics.median(seconds)
        rows.append(
            [
                name,
                size,
                str(hosts * DEFINITIONS * 4),
                label,
                f"{p50 * 1000:.0f}",
                "ok" if p50 <= 1.0 else "MISSED",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    common = {"admin_password": PASSWORD, "argon2_time_cost": 1, "argon2_memory_kib": 1024}
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "sqlite", **common)  # type: ignore[arg-type]
        rows += run_case("sqlite", settings, args.hosts, args.repeat)
        if not args.no_postgres:
            url = create_database(postgres_url())
            try:
                pg = Settings(data_dir=Path(tmp) / "pg", database_url=url, **common)  # type: ignore[arg-type]
                rows += run_case("postgresql", pg, args.hosts, args.repeat)
            finally:
                drop_database(url)
    header = ["database", "hosts x defs", "events", "what", "p50 ms", "target <=1 s"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
