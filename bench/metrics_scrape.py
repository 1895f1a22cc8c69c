"""How long one /metrics scrape takes as the node's history grows (SQLite).

Builds a node with `--orgs` organisations and, in steps, finished runs (durations
spread over the histogram), then times `--repeat` scrapes of the collector (the same
function the route calls: one read session of aggregates) at each size. Prints runs
held, the median and worst scrape, the size of the answer, and the machine's load.

    .venv/bin/python bench/metrics_scrape.py [--orgs 50] [--steps 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models.base import utcnow
from infracms.models.organisation import Organisation
from infracms.models.run import Run, RunKind, RunStatus
from infracms.services import metrics
from infracms.services.setup import initialise


def add_runs(engine: object, orgs: list[uuid.UUID], count: int, start: int) -> None:
    now = utcnow()
    rows = []
    for i in range(start, start + count):
        seconds = 5 + (i * 37) % 3000
        rows.append(
            {
                "id": uuid.uuid4(),
                "organisation_id": orgs[i % len(orgs)],
                "kind": RunKind.plan if i % 3 else RunKind.apply,
                "status": RunStatus.succeeded if i % 7 else RunStatus.failed,
                "requested_by": "bench",
                "created_at": now,
                "started_at": now - timedelta(seconds=seconds),
                "finished_at": now,
                "hosts": [],
                "definitions": [],
                "recap": {},
                "event_count": 40,
                "timeout_seconds": 3600,
                "cancel_requested": False,
            }
        )
    with session_scope(engine, write=True) as session:  # type: ignore[arg-type]
        session.execute(insert(Run), rows)
        session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=50)
    parser.add_argument("--steps", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), admin_password="bench-bench-bench-pw")
        engine = make_engine(settings)
        initialise(settings, engine)
        with session_scope(engine, write=True) as session:
            orgs = [Organisation(name=f"org{i:03d}") for i in range(args.orgs)]
            session.add_all(orgs)
            session.commit()
            ids = [org.id for org in orgs]
        registry = metrics.registry(engine=engine, settings=settings)
        print(f"{'runs held':>10} {'median ms':>10} {'worst ms':>9} {'bytes':>8}")
        held = 0
        for target in (int(step) for step in args.steps.split(",")):
            add_runs(engine, ids, target - held, held)
            held = target
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                body = metrics.generate_latest(registry)
                times.append((time.perf_counter() - started) * 1000)
            print(f"{held:>10} {statistics.median(times):>10.1f} {max(times):>9.1f} {len(body):>8}")
        engine.dispose()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
