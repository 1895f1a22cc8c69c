"""The dashboard at 1,000 and 10,000 hosts, on SQLite (and PostgreSQL), in-process.

One organisation with N hosts in 50 groups, 20 published definitions (on groups and on
single hosts), a host_run_state row for 90% of the hosts (a mix of outcomes, some out of
date) and 2,000 finished runs. Times `GET /` in-process (the GC set as `infracms serve`
sets it), signed in as the node admin (the attention
summary plus the organisation cards and the latest runs) against `GET /orgs/bench` (one
page of the host list) as the baseline in the same run. Target: the dashboard in
<= 200 ms at 10,000 hosts on SQLite.

A second table counts the SQL statements `GET /` sends with 1, 10 and 50 organisations
(20 hosts and 40 runs each, on SQLite): the same whatever their number.

    .venv/bin/python bench/dashboard.py [--hosts 1000 10000] [--repeat 15] [--no-postgres]
        [--orgs 1 10 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient
from sqlalchemy import event

from infracms.app import create_app
from infracms.cli.setup import quiet_gc
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
from infracms.services.setup import initialise
from tests.support.postgres import create_database, drop_database, postgres_url

PASSWORD = "bench-password-long"
OUTCOMES = [HostOutcome.ok] * 6 + [HostOutcome.changed, HostOutcome.failed, HostOutcome.unreachable]


def populate(settings: Settings, hosts: int) -> None:
    """The node and one organisation as the module docstring describes."""
    engine = make_engine(settings)
    initialise(settings, engine)
    now = utcnow()
    with session_scope(engine, write=True) as session:
        org = Organisation(name="bench")
        session.add(org)
        session.flush()
        groups = [HostGroup(name=f"g{i:02d}", organisation_id=org.id) for i in range(50)]
        session.add_all(groups)
        rows = [
            Host(name=f"host-{i:05d}", address="198.51.100.1", organisation_id=org.id)
            for i in range(hosts)
        ]
        session.add_all(rows)
        session.flush()
        session.add_all(
            HostGroupLink(host_id=h.id, group_id=groups[i % 50].id) for i, h in enumerate(rows)
        )
        for i in range(20):
            on_group = i < 15
            d = Definition(
                name=f"def-{i:02d}",
                module="base",
                organisation_id=org.id,
                group_id=groups[i * 3].id if on_group else None,
                host_id=None if on_group else rows[i * 7].id,
                published=2,
                latest=2,
            )
            session.add(d)
            session.flush()
            for n in (1, 2):
                session.add(Revision(definition_id=d.id, number=n, settings={}, author="bench"))
        runs = [
            Run(
                organisation_id=org.id,
                kind=RunKind.apply,
                status=RunStatus.failed if i % 10 == 0 else RunStatus.succeeded,
                requested_by="bench",
                created_at=now - timedelta(minutes=i),
                finished_at=now - timedelta(minutes=i),
                hosts=[f"host-{i % hosts:05d}"],
            )
            for i in range(2000)
        ]
        session.add_all(runs)
        session.flush()
        applied = {f"def-{i:02d}": 2 for i in range(20)}
        session.add_all(
            HostRunState(
                host_id=h.id,
                organisation_id=org.id,
                last_run_id=runs[i % 2000].id,
                last_kind=RunKind.apply,
                last_outcome=OUTCOMES[i % len(OUTCOMES)],
                last_run_at=now,
                applied_at=now,
                applied=applied if i % 13 else {**applied, "def-00": 1},
            )
            for i, h in enumerate(rows)
            if i % 10
        )
        session.commit()
    engine.dispose()


def timed(client: TestClient, path: str, repeat: int) -> list[float]:
    client.get(path)  # warm up
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return samples


def run_case(name: str, settings: Settings, hosts: int, repeat: int) -> list[list[str]]:
    populate(settings, hosts)
    rows = []
    app = create_app(settings)
    quiet_gc()  # as `infracms serve` does once its app is built
    with TestClient(app) as client:
        form = client.get("/login").text
        csrf = form.split('name="csrf_token" value="')[1].split('"')[0]
        login = {"username": "admin", "password": PASSWORD, "next": "/", "csrf_token": csrf}
        assert client.post("/login", data=login, follow_redirects=False).status_code == 303
        base = timed(client, "/orgs/bench", repeat)
        dash = timed(client, "/", repeat)
        for label, samples in (("host list page", base), ("dashboard", dash)):
            p50, worst = statistics.median(samples), max(samples)
            ratio = p50 / statistics.median(base)
            target = "" if label != "dashboard" else ("ok" if p50 <= 200 else "MISSED")
            rows.append(
                [name, str(hosts), label, f"{p50:.0f}", f"{worst:.0f}", f"{ratio:.2f}", target]
            )
    return rows


def populate_orgs(settings: Settings, count: int) -> None:
    """`count` organisations of 20 hosts (no pinned key) and 40 runs each."""
    engine = make_engine(settings)
    initialise(settings, engine)
    with session_scope(engine, write=True) as session:
        for n in range(count):
            org = Organisation(name=f"org-{n:03d}")
            session.add(org)
            session.flush()
            session.add_all(
                Host(name=f"h{i:02d}", address="198.51.100.1", organisation_id=org.id)
                for i in range(20)
            )
            session.add_all(
                Run(
                    organisation_id=org.id,
                    kind=RunKind.apply,
                    status=RunStatus.failed if i % 4 == 0 else RunStatus.succeeded,
                    requested_by="bench",
                    hosts=["h00"],
                )
                for i in range(40)
            )
        session.commit()
    engine.dispose()


def queries_case(settings: Settings, count: int) -> list[str]:
    """How many statements `GET /` sends, and its median time, with `count` organisations."""
    populate_orgs(settings, count)
    app = create_app(settings)
    with TestClient(app) as client:
        form = client.get("/login").text
        csrf = form.split('name="csrf_token" value="')[1].split('"')[0]
        login = {"username": "admin", "password": PASSWORD, "next": "/", "csrf_token": csrf}
        assert client.post("/login", data=login, follow_redirects=False).status_code == 303
        samples = timed(client, "/", 5)
        sent: list[str] = []

        def record(*args: object) -> None:
            sent.append(str(args[2]))

        event.listen(app.state.engine, "before_cursor_execute", record)
        assert client.get("/").status_code == 200
        event.remove(app.state.engine, "before_cursor_execute", record)
    app.state.engine.dispose()
    return [str(count), str(len(sent)), f"{statistics.median(samples):.0f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--orgs", type=int, nargs="+", default=[1, 10, 50])
    args = parser.parse_args()
    common = {"admin_password": PASSWORD, "argon2_time_cost": 1, "argon2_memory_kib": 1024}
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for hosts in args.hosts:
            data = Path(tmp) / f"sqlite-{hosts}"
            rows += run_case("sqlite", Settings(data_dir=data, **common), hosts, args.repeat)  # type: ignore[arg-type]
            if args.no_postgres:
                continue
            url = create_database(postgres_url())
            try:
                data = Path(tmp) / f"pg-{hosts}"
                settings = Settings(data_dir=data, database_url=url, **common)  # type: ignore[arg-type]
                rows += run_case("postgresql", settings, hosts, args.repeat)
            finally:
                drop_database(url)
        counted = [
            queries_case(Settings(data_dir=Path(tmp) / f"orgs-{n}", **common), n)  # type: ignore[arg-type]
            for n in args.orgs
        ]
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    header = ["database", "hosts", "page", "p50 ms", "max ms", "x host list", "target <=200ms"]
    table(header, rows)
    print()
    table(["organisations (SQLite)", "statements for GET /", "p50 ms"], counted)


def table(header: list[str], rows: list[list[str]]) -> None:
    """Print `rows` under `header`, in columns."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
