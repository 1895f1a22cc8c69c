"""The hosts page sorted each way at 1,000 and 10,000 hosts, on SQLite (and PostgreSQL).

The organisation of bench/dashboard.py (N hosts in 50 groups, a host_run_state row for
90% of them); times `GET /orgs/bench?sort=…` (the first page of 25, signed in as the
node admin) for each order against the page by name, in the same run.

    .venv/bin/python bench/host_list_sorts.py [--hosts 1000 10000] [--repeat 9] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from bench.dashboard import PASSWORD, populate, timed
from infracms.app import create_app
from infracms.cli.setup import quiet_gc
from infracms.config import Settings
from tests.support.postgres import create_database, drop_database, postgres_url

SORTS = ["name", "-address", "group", "-group", "last_outcome", "-last_run_at"]


def run_case(name: str, settings: Settings, hosts: int, repeat: int) -> list[list[str]]:
    populate(settings, hosts)
    rows = []
    app = create_app(settings)
    quiet_gc()
    with TestClient(app) as client:
        form = client.get("/login").text
        csrf = form.split('name="csrf_token" value="')[1].split('"')[0]
        login = {"username": "admin", "password": PASSWORD, "next": "/", "csrf_token": csrf}
        assert client.post("/login", data=login, follow_redirects=False).status_code == 303
        base = statistics.median(timed(client, "/orgs/bench", repeat))
        for sort in SORTS:
            samples = timed(client, f"/orgs/bench?sort={sort}", repeat)
            p50, worst = statistics.median(samples), max(samples)
            rows.append([name, str(hosts), sort, f"{p50:.0f}", f"{worst:.0f}", f"{p50 / base:.2f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--no-postgres", action="store_true")
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
    header = ["database", "hosts", "sort", "p50 ms", "max ms", "x by name"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
