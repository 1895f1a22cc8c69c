"""``infracms beat``: the periodic jobs of a node that runs Celery workers.

It reads the one registry (``jobs/``), with the jobs that look after Celery's queue.
"""

from __future__ import annotations

import logging
import threading
import time

from infracms.config import Settings
from infracms.db import make_engine
from infracms.orchestration.celery_app import make_celery
from infracms.orchestration.jobs import REAP_SECONDS, JobContext, PeriodicJob, periodic_jobs

log = logging.getLogger(__name__)


def run_beat(
    settings: Settings, stop: threading.Event, *, reap_seconds: float = REAP_SECONDS
) -> None:
    """Run the registry's jobs (with those of Celery's queue), each every its period,
    until `stop` is set; a failing job is logged."""
    run_jobs(settings, periodic_jobs(broker=True, reap_seconds=reap_seconds), stop)


def run_jobs(settings: Settings, jobs: list[PeriodicJob], stop: threading.Event) -> None:
    """Run `jobs`, each every its period, until `stop` is set."""
    app, engine = make_celery(settings), make_engine(settings)
    context = JobContext(settings=settings, engine=engine, app=app)
    due = {job.name: 0.0 for job in jobs}
    try:
        while not stop.is_set():
            for job in jobs:
                if time.monotonic() >= due[job.name]:
                    _run_job(job, context)
                    due[job.name] = time.monotonic() + job.every_seconds
            stop.wait(max(0.0, min(due.values()) - time.monotonic()))
    finally:
        app.close()
        engine.dispose()


def _run_job(job: PeriodicJob, context: JobContext) -> None:
    try:
        job.run(context)
    except Exception:  # the next period tries again
        log.exception("periodic job %r failed", job.name)
