"""Executing runs, for the HTTP layers and the CLI: where a created run goes to run.

A run is created (and audited) by ``services.runs``; these functions hand it to an
executor (``orchestration/``): Celery workers when ``INFRACMS_BROKER_URL`` is set, else
this process. The faces call these and never the orchestration package itself.
"""

from __future__ import annotations

import socket
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from infracms.config import Settings
from infracms.models.run import RunStatus
from infracms.orchestration.execute import RunContext, execute_run
from infracms.orchestration.executors import Executor, make_executor
from infracms.orchestration.jobs import JobContext, periodic_jobs
from infracms.orchestration.scheduler import Scheduler
from infracms.plugins import Plugins


@dataclass
class NodeRuntime:
    """A server's executor and, without a broker, its periodic jobs (no ``infracms beat``)."""

    executor: Executor
    scheduler: Scheduler | None = field(default=None)

    def start(self) -> None:
        """Start the executor (recovering what a previous process left), then the jobs."""
        self.executor.start()
        if self.scheduler is not None:
            self.scheduler.start()

    def stop(self) -> None:
        """Stop the jobs, then the executor (waiting for its runs)."""
        if self.scheduler is not None:
            self.scheduler.stop()
        self.executor.shutdown()

    def submit(self, run_id: uuid.UUID) -> None:
        """Run `run_id` eventually."""
        self.executor.submit(run_id)


def node_runtime(*, settings: Settings, engine: Engine, plugins: Plugins) -> NodeRuntime:
    """What a server runs runs and periodic jobs with (not started)."""
    context = RunContext(settings=settings, engine=engine, plugins=plugins)
    scheduler = (
        None
        if settings.broker_url
        else Scheduler(JobContext(settings, engine), periodic_jobs(broker=False))
    )
    return NodeRuntime(executor=make_executor(context), scheduler=scheduler)


def execute_here(
    *, settings: Settings, engine: Engine, plugins: Plugins, run_id: uuid.UUID, worker: str = ""
) -> RunStatus | None:
    """Run `run_id` in this process until it ends; None if it was not queued any more."""
    context = RunContext(
        settings=settings, engine=engine, plugins=plugins, worker=worker or socket.gethostname()
    )
    return execute_run(run_id, context)


def dispatch_run(
    *, settings: Settings, engine: Engine, plugins: Plugins, run_id: uuid.UUID, worker: str = ""
) -> threading.Thread | None:
    """Send `run_id` to the workers (None), or, without a broker, start it here in a
    thread (returned, to join)."""
    if settings.broker_url:
        context = RunContext(settings=settings, engine=engine, plugins=plugins)
        executor = make_executor(context)
        try:
            executor.submit(run_id)
        finally:
            executor.shutdown()
        return None
    kwargs: dict[str, Any] = dict(
        settings=settings, engine=engine, plugins=plugins, run_id=run_id, worker=worker
    )
    thread = threading.Thread(target=execute_here, kwargs=kwargs, daemon=True)
    thread.start()
    return thread
