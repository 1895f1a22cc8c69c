"""Periodic jobs in the server when there is no broker (the embedded default).

With Celery, ``infracms beat`` runs the registry's jobs (``beat.py``); without it the
web server runs them itself in a background thread, so catalogs sync and peers cosign
checkpoints on a one-command node too. Each job runs on its own interval; a failing
job is logged and retried.
"""

from __future__ import annotations

import logging
import threading
import time

from infracms.orchestration.jobs import JobContext, PeriodicJob

log = logging.getLogger(__name__)


class Scheduler:
    """Runs jobs in one daemon thread until stopped."""

    def __init__(self, context: JobContext, jobs: list[PeriodicJob]) -> None:
        self.context, self.jobs = context, jobs
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (again, after a stop)."""
        self.stopping.clear()
        self.thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop after the job that is running."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=30)

    def _loop(self) -> None:
        due = {job.name: time.monotonic() + job.every_seconds / 2 for job in self.jobs}
        while not self.stopping.wait(1.0):
            for job in self.jobs:
                if time.monotonic() >= due[job.name]:
                    due[job.name] = time.monotonic() + job.every_seconds
                    self._run(job)

    def _run(self, job: PeriodicJob) -> None:
        try:
            job.run(self.context)
        except Exception:  # a job fails alone and is tried again on its next turn
            log.warning("periodic job %s failed", job.name, exc_info=True)
