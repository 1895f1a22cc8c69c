"""Notifications: how fast the outbox drains, and how long from an event's commit to the
receiver's hands, with the embedded executor (the server's job loop, no broker).

A node on SQLite (in a temporary directory) with one organisation and one webhook
channel, signed with the node's key and an HMAC, to a receiver in a process of its own
on loopback (an http.server that answers 200 and notes when each notification arrived).

- drain: `--burst` notifications are committed at once, then the delivery job drains
  them (claims, signs, sends, records); notifications/s = burst / time to drain.
- commit→receiver: the embedded job loop runs (`orchestration.scheduler.Scheduler` with
  the registry's "deliver notifications" job, every second) while `--events` events are
  committed one by one, `--gap` seconds apart; latency = arrival time - commit time.

Targets: drain ≥ 500 notifications/s; commit→receiver p99 ≤ 2 s.

    .venv/bin/python bench/notify.py [--burst 2000] [--events 100] [--gap 0.05]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import select

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models.notification import DeliveryState, NotificationKind, OutboxMessage
from infracms.orchestration.jobs import JobContext, periodic_jobs
from infracms.orchestration.scheduler import Scheduler
from infracms.services import notification_delivery, notifications, organisations
from infracms.services import notification_settings as channels
from infracms.services.context import system_actor
from infracms.services.setup import initialise

ADMIN = system_actor("bench")


def receiver(port_out: Connection, stop: Any, results: Connection) -> None:
    """A webhook receiver in its own process: notes (notification id, arrival time)."""
    arrivals: list[tuple[str, str, float]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            at = time.time()
            document = json.loads(body)
            arrivals.append((document["id"], self.headers.get("idempotency-key", ""), at))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_out.send(server.server_address[1])
    server.timeout = 0.2
    while not stop.is_set():
        server.handle_request()
    results.send(arrivals)
    server.server_close()


def make_node(directory: Path, url: str) -> tuple[Settings, Any, Any]:
    """An initialised node with organisation `bench` and a webhook channel to `url`."""
    settings = Settings(
        data_dir=directory,
        admin_password="bench-admin-password",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        notify_allow_private_targets=True,
    )
    engine = make_engine(settings)
    initialise(settings, engine)
    with session_scope(engine, write=True) as session:
        org = organisations.create_organisation(
            session=session, actor=ADMIN, data={"name": "bench"}
        )
        channels.create_channel(
            session=session,
            actor=ADMIN,
            settings=settings,
            organisation="bench",
            data={
                "name": "hook",
                "kind": "webhook",
                "url": url,
                "hmac_secret": "bench-shared-secret-0123456789",
            },
        )
        channels.add_rule(
            session=session,
            actor=ADMIN,
            organisation="bench",
            data={"channel": "hook", "kind": "run.failed"},
        )
    return settings, engine, org.id


def emit(engine: Any, org_id: Any, count: int) -> dict[str, float]:
    """Commit `count` notifications in one transaction; {notification id: commit time}."""
    ids = []
    with session_scope(engine, write=True) as session:
        for number in range(count):
            ids.append(
                notifications.emit(
                    session,
                    organisation_id=org_id,
                    kind=NotificationKind.run_failed,
                    subject=f"apply of bench failed ({number})",
                    data={"run": number, "recap": {"web1": {"failed": 1}}},
                )
            )
        session.commit()
    committed = time.time()
    return {str(i): committed for i in ids}


def drain(settings: Settings, engine: Any, org_id: Any, burst: int) -> tuple[float, float, float]:
    """(notifications/s, seconds, CPU seconds of this process) for draining a burst."""
    emit(engine, org_id, burst)
    started, cpu = time.perf_counter(), time.process_time()
    sent = 0
    while sent < burst:
        sent += notification_delivery.deliver_due(settings, engine, budget_seconds=60)
    elapsed = time.perf_counter() - started
    return burst / elapsed, elapsed, time.process_time() - cpu


def latencies(
    settings: Settings, engine: Any, org_id: Any, events: int, gap: float
) -> dict[str, float]:
    """Commit times of events sent one by one while the embedded job loop delivers."""
    jobs = [job for job in periodic_jobs(broker=False) if job.name == "deliver notifications"]
    scheduler = Scheduler(JobContext(settings, engine), jobs)
    scheduler.start()
    committed: dict[str, float] = {}
    try:
        for _ in range(events):
            committed.update(emit(engine, org_id, 1))
            time.sleep(gap)
        deadline = time.time() + 30
        while time.time() < deadline and pending(engine):
            time.sleep(0.2)
    finally:
        scheduler.stop()
    return committed


def pending(engine: Any) -> int:
    with session_scope(engine) as session:
        rows = session.exec(
            select(OutboxMessage.id).where(OutboxMessage.state == DeliveryState.pending)
        ).all()
    return len(rows)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--gap", type=float, default=0.05)
    args = parser.parse_args()
    port_in, port_out = multiprocessing.Pipe(duplex=False)
    results_in, results_out = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    process = multiprocessing.Process(target=receiver, args=(port_out, stop, results_out))
    process.start()
    port = port_in.recv()
    with tempfile.TemporaryDirectory() as directory:
        settings, engine, org_id = make_node(Path(directory), f"http://127.0.0.1:{port}/hook")
        rate, seconds, cpu = drain(settings, engine, org_id, args.burst)
        committed = latencies(settings, engine, org_id, args.events, args.gap)
        with session_scope(engine) as session:
            failed = len(
                session.exec(
                    select(OutboxMessage.id).where(OutboxMessage.state != DeliveryState.delivered)
                ).all()
            )
        engine.dispose()
    stop.set()
    arrivals = results_in.recv()
    process.join()
    first_arrival: dict[str, float] = {}
    for notification, _key, at in arrivals:
        first_arrival.setdefault(notification, at)
    lags = [first_arrival[n] - at for n, at in committed.items() if n in first_arrival]
    keys = [key for _n, key, _at in arrivals]
    report(args, rate, seconds, cpu, lags, len(committed), failed, len(keys), len(set(keys)))


def report(
    args: Any,
    rate: float,
    seconds: float,
    cpu: float,
    lags: list[float],
    events: int,
    failed: int,
    received: int,
    unique: int,
) -> None:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    rows = [
        (
            "outbox drain",
            f"{args.burst} notifications in {seconds:.2f} s",
            f"{rate:.0f}/s",
            "≥ 500/s",
        ),
        (
            "drain per CPU-second",
            f"{cpu:.2f} CPU-s in the sending process",
            f"{args.burst / cpu:.0f}/CPU-s",
            "",
        ),
        (
            "commit→receiver p50",
            f"{len(lags)} of {events} events",
            f"{statistics.median(lags):.3f} s",
            "",
        ),
        (
            "commit→receiver p99",
            "embedded job loop, 1 s",
            f"{percentile(lags, 0.99):.3f} s",
            "≤ 2 s",
        ),
        ("commit→receiver max", "", f"{max(lags):.3f} s", ""),
        ("not delivered", "", str(failed), "0"),
        ("received / distinct keys", "", f"{received} / {unique}", "equal"),
    ]
    print(
        f"\nnotifications, SQLite, embedded executor (load average {load}, {os.cpu_count()} cores)"
    )
    print(f"{'measure':<26} {'what':<36} {'figure':>12}  {'target':<8}")
    for measure, what, figure, target in rows:
        print(f"{measure:<26} {what:<36} {figure:>12}  {target:<8}")


if __name__ == "__main__":
    main()
