"""API reads with 1,000 hosts under 50 concurrent clients, on SQLite and PostgreSQL.

Starts a real `infracms serve` (uvicorn) on loopback, creates one organisation with
1,000 hosts, and drives it with wrk (C, so the load generator steals little CPU):
a page of 50 hosts, and one host's detail, with a bearer token. Prints p50/p99 and
errors per case. Target: p99 <= 50 ms, no errors.

    .venv/bin/python bench/api_reads.py [--hosts 1000] [--connections 50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models import Host, Organisation
from infracms.services import auth
from infracms.services.setup import initialise
from tests.support.postgres import create_database, drop_database, postgres_url
from tests.support.server import live_server

PASSWORD = "bench-password-long"


def populate(settings: Settings, hosts: int) -> str:
    """Create the node, an organisation with `hosts` hosts; an owner token."""
    engine = make_engine(settings)
    initialise(settings, engine)
    with session_scope(engine, write=True) as session:
        org = Organisation(name="bench")
        session.add(org)
        session.flush()
        session.add_all(
            Host(
                name=f"host-{i:05d}",
                address=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                organisation_id=org.id,
                variables={"rack": i % 40},
            )
            for i in range(hosts)
        )
        session.commit()
        result = auth.login(
            session=session, settings=settings, username="admin", password=PASSWORD, client="bench"
        )
        info = auth.session_info(session=session, raw_token=result.token)
        assert info is not None
        token = auth.issue_token(
            session=session,
            actor=info.actor,
            data={"name": "bench", "role": "owner", "organisation": "bench"},
        )
    engine.dispose()
    return token.token


def wrk(url: str, token: str, connections: int, seconds: int) -> dict[str, float]:
    """Run wrk and read its latency distribution."""
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    requests = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(
        int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|Socket errors:.*?):?\s+(\d+)", out)
    )
    return {"p50": ms("50"), "p99": ms("99"), "rps": requests, "errors": errors}


def paced(url: str, token: str, clients: int, interval: float, seconds: int) -> dict[str, float]:
    """Open loop: `clients` users, each sending one request every `interval` seconds
    (whatever the answers' latency), for `seconds`; latency percentiles and errors."""
    import asyncio

    import httpx

    async def user(
        client: httpx.AsyncClient, offset: float, latencies: list[float], errors: list[int]
    ) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time() + offset
        n = 0
        while (due := start + n * interval) < start + seconds:
            await asyncio.sleep(max(0.0, due - loop.time()))
            sent = loop.time()
            try:
                response = await client.get(url, headers={"Authorization": f"Bearer {token}"})
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append((loop.time() - sent) * 1000)
            errors.append(0 if ok else 1)
            n += 1

    async def main() -> tuple[list[float], list[int]]:
        latencies: list[float] = []
        errors: list[int] = []
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(limits=limits, timeout=10) as client:
            await asyncio.gather(
                *(user(client, i * interval / clients, latencies, errors) for i in range(clients))
            )
        return latencies, errors

    latencies, errors = asyncio.run(main())
    latencies.sort()
    return {
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[int(len(latencies) * 0.99) - 1],
        "rps": len(latencies) / seconds,
        "errors": float(sum(errors)),
    }


def run_case(
    name: str, settings: Settings, args: argparse.Namespace, rows: list[list[str]]
) -> None:
    token = populate(settings, args.hosts)
    env = {"INFRACMS_ARGON2_TIME_COST": "1", "INFRACMS_ARGON2_MEMORY_KIB": "1024"}
    with live_server(settings, env=env, extra_args=["--workers", str(args.workers)]) as base:
        for label, path in (
            ("list 50", "/api/v1/orgs/bench/hosts?limit=50&offset=500"),
            ("detail", "/api/v1/orgs/bench/hosts/host-00500"),
        ):
            wrk(base + path, token, args.connections, 2)  # warm up
            closed = wrk(base + path, token, args.connections, args.seconds)
            open_loop = paced(base + path, token, args.connections, args.interval, args.seconds)
            for mode, figures in (("closed", closed), ("paced", open_loop)):
                ok = figures["p99"] <= 50 and figures["errors"] == 0
                rows.append(
                    [
                        name,
                        label,
                        mode,
                        f"{figures['rps']:.0f}",
                        f"{figures['p50']:.1f}",
                        f"{figures['p99']:.1f}",
                        f"{figures['errors']:.0f}",
                        "ok" if ok else "MISSED",
                    ]
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--interval", type=float, default=0.5, help="paced: seconds between a client's requests"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: `make test-deps` (or apt-get install wrk) installs it")
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        common = {"admin_password": PASSWORD, "argon2_time_cost": 1, "argon2_memory_kib": 1024}
        run_case("sqlite", Settings(data_dir=Path(tmp) / "sqlite", **common), args, rows)  # type: ignore[arg-type]
        url = create_database(postgres_url())
        try:
            run_case(
                "postgresql",
                Settings(data_dir=Path(tmp) / "pg", database_url=url, **common),
                args,
                rows,
            )  # type: ignore[arg-type]
        finally:
            drop_database(url)
    header = ["database", "read", "load", "req/s", "p50 ms", "p99 ms", "errors", "target p99<=50ms"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(
        f"\n{args.hosts} hosts, {args.connections} clients, {args.workers} server processes, "
        f"{os.cpu_count()} cores shared with the load generator.\n"
        "closed: wrk; each connection sends its next request as soon as the last is answered "
        "(saturation).\n"
        f"paced: each client sends a request every {args.interval} s whatever the latency "
        f"(open loop, {args.connections / args.interval:.0f} req/s offered)."
    )


if __name__ == "__main__":
    main()
