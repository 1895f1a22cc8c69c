"""Mixed API load, reads and writes, from 200 concurrent clients, on SQLite and PostgreSQL.

Starts a real `infracms serve` (one process, the embedded default) on loopback for each
database, creates one organisation with 500 hosts and an owner token, and drives it
with `--clients` clients for `--seconds` each. Each client sends its next request as
soon as the last is answered (closed loop), picking at random: a page of hosts (30%),
one host (25%), a host update (20%, a write with its audit entry), a page of runs (15%),
a page of audit entries (10%). The clients run in two load processes (httpx, asyncio)
so that the load generator is not one busy core. Prints requests/s, errors (any answer
other than 200, any dropped connection or timeout), p50/p99/max, and the machine's load.
Target: 0 errors and p99 <= 1 s on both; SQLite at least as many requests/s as PostgreSQL.

    .venv/bin/python bench/api_mixed.py [--clients 200] [--seconds 60] [--only sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api_reads import PASSWORD, populate
from infracms.config import Settings
from tests.support.postgres import create_database, drop_database, postgres_url
from tests.support.server import live_server

MIX = (
    ("hosts", 30),
    ("host", 25),
    ("update", 20),
    ("runs", 15),
    ("audit", 10),
)
LOAD_PROCESSES = 2
TIMEOUT = 60.0


def request_for(kind: str, hosts: int, rng: random.Random) -> tuple[str, str, Any]:
    """(method, path, json body) of one request of `kind`."""
    org = "/api/v1/orgs/bench"
    name = f"host-{rng.randrange(hosts):05d}"
    if kind == "hosts":
        return "GET", f"{org}/hosts?limit=50&offset={rng.randrange(0, hosts, 50)}", None
    if kind == "host":
        return "GET", f"{org}/hosts/{name}", None
    if kind == "update":
        return "PATCH", f"{org}/hosts/{name}", {"variables": {"rack": rng.randrange(40)}}
    if kind == "runs":
        return "GET", f"{org}/runs?limit=20", None
    return "GET", "/api/v1/audit/entries?organisation=bench&newest_first=true&limit=20", None


async def _drive(base: str, token: str, clients: int, seconds: float, hosts: int) -> list[Any]:
    import httpx

    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    results: list[tuple[str, float, int]] = []  # kind, seconds, status (0: no answer)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=TIMEOUT
    ) as client:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds

        async def one_client(seed: int) -> None:
            rng = random.Random(seed)
            while loop.time() < end:
                kind = rng.choice(kinds)
                method, path, body = request_for(kind, hosts, rng)
                sent = loop.time()
                try:
                    status = (await client.request(method, path, json=body)).status_code
                except httpx.HTTPError:
                    status = 0
                results.append((kind, loop.time() - sent, status))

        await asyncio.gather(*(one_client(seed) for seed in range(clients)))
    return results


def _load_process(args: tuple[str, str, int, float, int, int]) -> list[Any]:
    base, token, clients, seconds, hosts, seed = args
    random.seed(seed)
    return asyncio.run(_drive(base, token, clients, seconds, hosts))


def drive(base: str, token: str, clients: int, seconds: float, hosts: int) -> list[Any]:
    """Every request's (kind, latency in seconds, status) from `clients` clients."""
    share = [clients // LOAD_PROCESSES] * LOAD_PROCESSES
    share[0] += clients % LOAD_PROCESSES
    jobs = [(base, token, n, seconds, hosts, i * 10_000) for i, n in enumerate(share)]
    with multiprocessing.get_context("spawn").Pool(LOAD_PROCESSES) as pool:
        return [result for part in pool.map(_load_process, jobs) for result in part]


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


def summarise(name: str, results: list[Any], seconds: float, load: tuple[float, ...]) -> list[str]:
    """One table row: backend, req/s, errors, p50, p99, max, writes/s, load."""
    latencies = [latency for _, latency, _ in results]
    errors = sum(1 for _, _, status in results if status != 200)
    writes = sum(1 for kind, _, status in results if kind == "update" and status == 200)
    ok = errors == 0 and percentile(latencies, 0.99) <= 1.0
    return [
        name,
        f"{len(results) / seconds:.0f}",
        f"{writes / seconds:.0f}",
        str(errors),
        f"{percentile(latencies, 0.5) * 1000:.0f}",
        f"{percentile(latencies, 0.99) * 1000:.0f}",
        f"{max(latencies, default=0) * 1000:.0f}",
        " ".join(f"{value:.1f}" for value in load),
        "ok" if ok else "MISSED",
    ]


def statuses(results: list[Any]) -> str:
    """How many answers of each status other than 200 (0: no answer)."""
    counts: dict[int, int] = {}
    for _, _, status in results:
        if status != 200:
            counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{status}: {n}" for status, n in sorted(counts.items())) or "none"


def run_case(name: str, settings: Settings, args: argparse.Namespace) -> tuple[list[str], str]:
    """Serve `settings`, drive it, and summarise."""
    token = populate(settings, args.hosts)
    env = {"INFRACMS_ARGON2_TIME_COST": "1", "INFRACMS_ARGON2_MEMORY_KIB": "1024"}
    with live_server(settings, env=env, extra_args=["--workers", str(args.workers)]) as base:
        drive(base, token, min(args.clients, 20), 3, args.hosts)  # warm up
        results = drive(base, token, args.clients, args.seconds, args.hosts)
        load = os.getloadavg()
    return summarise(name, results, args.seconds, load), f"{name}: {statuses(results)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    rows: list[list[str]] = []
    notes: list[str] = []
    common: dict[str, Any] = {
        "admin_password": PASSWORD,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "sqlite"):
            row, note = run_case("sqlite", Settings(data_dir=Path(tmp) / "sqlite", **common), args)
            rows.append(row)
            notes.append(note)
        if args.only in (None, "postgresql"):
            url = create_database(postgres_url())
            try:
                settings = Settings(data_dir=Path(tmp) / "pg", database_url=url, **common)
                row, note = run_case("postgresql", settings, args)
                rows.append(row)
                notes.append(note)
            finally:
                drop_database(url)
    header = ["database", "req/s", "writes/s", "errors", "p50 ms", "p99 ms", "max ms"]
    header += ["load 1/5/15 min", "target: 0 errors, p99<=1s"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    mix = ", ".join(f"{kind} {weight}%" for kind, weight in MIX)
    print(
        f"\n{args.clients} closed-loop clients for {args.seconds:.0f} s each ({mix}); "
        f"{args.hosts} hosts; {args.workers} server process(es); {os.cpu_count()} cores "
        f"shared with the load generator; {time.monotonic() - started:.0f} s in all.\n"
        f"answers other than 200 — {'; '.join(notes)}"
    )


if __name__ == "__main__":
    main()
