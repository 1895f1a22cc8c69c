"""The periodic jobs: one registry, read by the embedded scheduler and by beat; the
embedded scheduler runs each job on its interval and survives a failing one."""

from __future__ import annotations

import time
from pathlib import Path

from infracms.orchestration.jobs import JobContext, PeriodicJob, periodic_jobs, registry
from infracms.orchestration.scheduler import Scheduler
from infracms.services.execution import node_runtime
from tests.conftest import make_settings


def test_jobs_run_on_their_interval_and_a_failure_does_not_stop_them(tmp_path: Path) -> None:
    calls: list[str] = []

    def failing(context: JobContext) -> None:
        calls.append("failing")
        raise RuntimeError("boom")

    context = JobContext(make_settings(tmp_path), engine=None)  # type: ignore[arg-type]
    scheduler = Scheduler(
        context,
        [PeriodicJob("ok", 1.0, lambda c: calls.append("ok")), PeriodicJob("bad", 1.0, failing)],
    )
    scheduler.start()
    deadline = time.monotonic() + 10
    while calls.count("ok") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    scheduler.stop()
    assert calls.count("ok") >= 2 and calls.count("failing") >= 2
    scheduler.start()  # a second lifespan of the same app starts it again
    scheduler.stop()


def test_beat_and_the_embedded_scheduler_read_the_same_registry() -> None:
    every = {job.name: job for job in registry()}
    with_broker = periodic_jobs(broker=True)
    without = periodic_jobs(broker=False)
    assert [j.name for j in with_broker] == list(every), "beat runs every registered job"
    assert {j.name for j in without} == {n for n, j in every.items() if not j.needs_broker}
    assert {j.name for j in with_broker} - {j.name for j in without} == {
        "reap lost runs",
        "resend lost runs",
    }, "only the jobs that look after Celery's queue need a broker"
    for job in without:
        assert job == every[job.name], f"{job.name} differs between beat and the server"


def test_beat_takes_its_reap_period_from_the_command_line() -> None:
    periods = {job.name: job.every_seconds for job in periodic_jobs(broker=True, reap_seconds=2)}
    assert periods["reap lost runs"] == periods["resend lost runs"] == 2


def test_a_server_without_broker_runs_the_registry_itself(tmp_path: Path) -> None:
    runtime = node_runtime(settings=make_settings(tmp_path), engine=None, plugins=None)  # type: ignore[arg-type]
    assert runtime.scheduler is not None
    assert [j.name for j in runtime.scheduler.jobs] == [j.name for j in periodic_jobs(broker=False)]
