"""The embedded scheduler runs each job on its interval and survives a failing one."""

from __future__ import annotations

import time
from pathlib import Path

from infracms.runs.scheduler import Job, JobContext, Scheduler
from tests.conftest import make_settings


def test_jobs_run_on_their_interval_and_a_failure_does_not_stop_them(tmp_path: Path) -> None:
    calls: list[str] = []

    def failing(context: JobContext) -> None:
        calls.append("failing")
        raise RuntimeError("boom")

    context = JobContext(make_settings(tmp_path), engine=None)  # type: ignore[arg-type]
    scheduler = Scheduler(
        context, [Job("ok", 1.0, lambda c: calls.append("ok")), Job("bad", 1.0, failing)]
    )
    scheduler.start()
    deadline = time.monotonic() + 10
    while calls.count("ok") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    scheduler.stop()
    assert calls.count("ok") >= 2 and calls.count("failing") >= 2
    scheduler.start()  # a second lifespan of the same app starts it again
    scheduler.stop()
