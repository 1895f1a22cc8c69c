"""Workers outlive their broker and their database (issue 12, Faults).

Each test has a Redis (and, for the database, a PostgreSQL cluster) of its own, which
it stops and starts again on the same port while an ``infracms worker`` and an
``infracms beat`` of the node run: the worker stays up (or its own supervisor starts it
again), the run that was running ends recorded, and a run queued while the server was
away starts once it is back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infracms.models.run import RunStatus
from tests.runs_celery.conftest import (
    Node,
    Process,
    Processes,
    SilentSshd,
    hung_in_ssh,
    make_node,
    wait_until,
)
from tests.runs_celery.faults import PrivatePostgres, PrivateRedis
from tests.support.postgres import fresh_database

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
BACK_WITHIN = 30.0  # issue 12: a run queued during the outage starts this soon after
RUN_TIMEOUT = 120.0
OUTAGE_SECONDS = 5.0  # long enough for the worker to notice and retry a few times


@pytest.fixture
def redis_server() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.close()


@pytest.fixture
def redis_node(tmp_path: Path, postgres_server: str, redis_server: PrivateRedis) -> Iterator[Node]:
    with fresh_database(postgres_server) as database_url:
        made = make_node(tmp_path, database_url=database_url, broker_url=redis_server.url)
        yield made
        made.engine.dispose()


def ended(node: Node, run_id: uuid.UUID, what: str) -> RunStatus:
    run, _ = wait_until(lambda: node.run(run_id), lambda r: r.status.finished, RUN_TIMEOUT, what)
    return run.status


def started_within(node: Node, run_id: uuid.UUID, seconds: float, what: str) -> None:
    wait_until(lambda: node.run(run_id).status, lambda s: s != "queued", seconds, what)


def assert_worker_stayed_up(worker: Process) -> None:
    """The worker process runs, and its Celery worker never had to be started again."""
    output = worker.output()
    assert worker.popen.poll() is None, (
        f"the worker exited with {worker.popen.returncode}:\n{output[-4000:]}"
    )
    assert "Unrecoverable error" not in output and "starting again" not in output, output[-6000:]


def test_redis_restarted_during_a_run_and_between_runs(
    redis_node: Node,
    redis_server: PrivateRedis,
    silent_sshd: SilentSshd,
    refusing_port: int,
    tmp_path: Path,
) -> None:
    node = redis_node
    processes = Processes(node)
    try:
        worker = processes.worker()
        processes.beat(reap_seconds=0.5)
        node.add_host("slow", silent_sshd.port)
        node.add_host("web1", refusing_port)

        running = node.submit("plan", "slow")
        hung_in_ssh(node, silent_sshd, running)
        redis_server.stop()
        node.cancel(running)  # the run ends while Redis is away
        assert ended(node, running, "the running run to end") == "cancelled"
        queued = node.create_run("plan", "web1")  # a user asks for a run meanwhile
        node.executor().submit(queued)  # the broker is away: it stays queued, logged
        time.sleep(OUTAGE_SECONDS)
        assert node.run(queued).status == "queued"
        redis_server.start()
        started_within(node, queued, BACK_WITHIN, "the run queued during the outage to start")
        assert ended(node, queued, "the queued run to end") == "failed"  # web1 refuses

        redis_server.stop()  # and between runs
        time.sleep(OUTAGE_SECONDS)
        redis_server.start()
        after = node.create_run("plan", "web1")
        node.executor().submit(after)
        started_within(node, after, BACK_WITHIN, "a run sent after the second outage to start")
        assert ended(node, after, "the last run to end") == "failed"
        assert_worker_stayed_up(worker)
        assert node.locks_of(running) == [] and node.locks_of(queued) == []
    finally:
        processes.end_all()


def test_postgres_restarted_between_two_runs(
    tmp_path: Path, redis_server: PrivateRedis, refusing_port: int
) -> None:
    cluster = PrivatePostgres()
    try:
        with fresh_database(cluster.url) as database_url:
            node = make_node(tmp_path, database_url=database_url, broker_url=redis_server.url)
            processes = Processes(node)
            try:
                worker = processes.worker()
                processes.beat(reap_seconds=0.5)
                node.add_host("web1", refusing_port)
                first = node.submit("plan", "web1")
                assert ended(node, first, "the first run to end") == "failed"
                node.engine.dispose()
                cluster.stop()
                time.sleep(OUTAGE_SECONDS)
                cluster.start()
                second = node.submit("plan", "web1")
                started_within(node, second, BACK_WITHIN, "the run after the restart to start")
                status = ended(node, second, "the second run to end")
                assert status == "failed", f"expected failed (web1 refuses), got {status}"
                assert node.run(second).error and "unreachable: web1" in node.run(second).error
                assert_worker_stayed_up(worker)
            finally:
                processes.end_all()
                node.engine.dispose()
    finally:
        cluster.close()
