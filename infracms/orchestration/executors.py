"""Executors: where runs run. Both call ``execute_run`` with a run id.

- ``EmbeddedExecutor``: a thread pool inside the server (SQLite, one command). On start
  it removes what runs of dead processes left (``workdir.sweep``), fails the runs a
  previous process of it left running and resubmits queued ones.
- ``CeleryExecutor`` (``celery_executor.py``): with ``INFRACMS_BROKER_URL`` set, runs go to
  Celery workers over Redis.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from infracms.db import session_scope
from infracms.orchestration.execute import RunContext, execute_run
from infracms.orchestration.jobs import REAP_SECONDS
from infracms.runs import workdir
from infracms.services import runs as run_service

log = logging.getLogger(__name__)


class Executor(Protocol):
    """Something that runs runs."""

    def start(self) -> None:
        """Get ready (and recover what a previous process left)."""

    def submit(self, run_id: uuid.UUID) -> None:
        """Run `run_id` eventually."""

    def shutdown(self) -> None:
        """Stop taking runs."""


def make_executor(context: RunContext) -> Executor:
    """Celery workers when a broker is configured, else a thread pool in this process."""
    if context.settings.broker_url:
        from infracms.orchestration.celery_executor import CeleryExecutor

        return CeleryExecutor(context)
    embedded = RunContext(
        settings=context.settings,
        engine=context.engine,
        plugins=context.plugins,
        worker=f"embedded@{socket.gethostname()}",
    )
    return EmbeddedExecutor(embedded)


class EmbeddedExecutor:
    """Runs in a thread pool of this process."""

    def __init__(self, context: RunContext, *, workers: int = 4) -> None:
        self.context = context
        self.workers = workers
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run")
        self.futures: dict[uuid.UUID, Future[object]] = {}
        self.stopping = threading.Event()
        self.reaper: threading.Thread | None = None

    def start(self) -> None:
        """Recover from the previous process, then start reaping stale runs (again after a
        shutdown, with a new pool: an app's lifespan may run more than once)."""
        if self.stopping.is_set():
            self.stopping.clear()
            self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="run")
        workdir.sweep()  # a killed server's run directories hold secrets
        with session_scope(self.context.engine, write=True) as session:
            lost = run_service.reap_stale_runs(session, worker_prefix=self.context.worker)
            queued = run_service.queued_runs(session)
        if lost:
            log.warning("marked %d run(s) of a previous server failed", len(lost))
        for run_id in queued:
            self.submit(run_id)
        self.reaper = threading.Thread(target=self._reap_loop, name="run-reaper", daemon=True)
        self.reaper.start()

    def submit(self, run_id: uuid.UUID) -> None:
        """Run `run_id` on a pool thread."""
        self.futures[run_id] = self.pool.submit(execute_run, run_id, self.context)

    def wait(self, run_id: uuid.UUID, timeout: float | None = None) -> object:
        """Wait for a run submitted here to end (for tests and the CLI)."""
        return self.futures[run_id].result(timeout=timeout)

    def shutdown(self) -> None:
        """Stop reaping and wait for running runs."""
        self.stopping.set()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _reap_loop(self) -> None:
        while not self.stopping.wait(REAP_SECONDS):
            try:
                with session_scope(self.context.engine, write=True) as session:
                    run_service.reap_stale_runs(session)
            except Exception:
                log.warning("reaping stale runs failed", exc_info=True)
