"""Live log lag at 70 hosts: from Ansible making an event to a watcher receiving it.

Starts 70 sshd-mode test hosts (real sshd in network namespaces; needs root), a node on
SQLite with a `base` definition on them (bench/run_overhead.py's set-up) and a real
``infracms serve``; then POSTs an apply and follows it as a browser does, on the
server-sent events stream (GET /runs/{id}/stream) from this process. Each event's lag
is the time this watcher read it minus the event's ``created_at``, which is
ansible-runner's ``created`` (the time Ansible's callback made the event, in the
ansible-playbook process); both clocks are this machine's. Target: <= 1 s.

    .venv/bin/python bench/live_lag.py [--hosts 70] [--runs 1] [--forks 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from run_overhead import check_run, make_node, serving, table, test_hosts

TARGET = 1.0


def follow(client: httpx.Client) -> tuple[list[tuple[str, float]], dict[str, Any], float]:
    """Apply, and read the run's stream to its end: [(event, lag s)], the run, wall s."""
    start = time.perf_counter()
    response = client.post("/runs", json={"kind": "apply"})
    response.raise_for_status()
    run_id = response.json()["id"]
    lags: list[tuple[str, float]] = []
    run: dict[str, Any] = {}
    kind, data = "message", ""
    with client.stream("GET", f"/runs/{run_id}/stream", timeout=None) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                kind = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                data += line.removeprefix("data:").strip()
            elif not line and data:
                received = time.time()
                if kind == "events":
                    for event in json.loads(data):
                        created = datetime.fromisoformat(event["created_at"]).timestamp()
                        lags.append((event["event"], received - created))
                elif kind == "end":
                    run = json.loads(data)
                    break
                kind, data = "message", ""
    return lags, run, time.perf_counter() - start


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=70)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--forks", type=int, default=10)
    args = parser.parse_args()
    rows: list[list[str]] = []
    every: list[float] = []
    kinds: Counter[str] = Counter()
    with (
        tempfile.TemporaryDirectory(prefix="bench-lag-") as tmp,
        test_hosts(args.hosts) as (
            hosts,
            key_path,
        ),
    ):
        node = make_node(Path(tmp) / "node", hosts, key_path)
        with serving(node, args.forks) as client:
            for number in range(args.runs):
                lags, run, wall = follow(client)
                check_run(run, args.hosts)
                values = [lag for _, lag in lags]
                every += values
                kinds.update(name for name, _ in lags)
                rows.append(
                    [
                        str(number + 1),
                        str(len(values)),
                        f"{wall:.0f}",
                        f"{len(values) / wall:.1f}",
                        f"{statistics.median(values):.3f}",
                        f"{percentile(values, 0.99):.3f}",
                        f"{max(values):.3f}",
                    ]
                )
                print(f"run {number + 1}: {len(values)} events in {wall:.0f} s", flush=True)
        node.engine.dispose()
    p99 = percentile(every, 0.99)
    rows.append(
        [
            "all",
            str(len(every)),
            "",
            "",
            f"{statistics.median(every):.3f}",
            f"{p99:.3f}",
            f"{max(every):.3f}",
        ]
    )
    print()
    table(["run", "events", "wall s", "events/s", "p50 lag s", "p99 lag s", "max s"], rows)
    print(
        f"\n{args.hosts} sshd-mode hosts, forks {args.forks}, SQLite, embedded executor, one "
        f"watcher on the SSE stream; target p99 <= {TARGET:.0f} s: "
        f"{'ok' if p99 <= TARGET else 'MISSED'}; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores at the end\nevents: "
        + ", ".join(f"{name} {count}" for name, count in kinds.most_common())
    )


if __name__ == "__main__":
    main()
