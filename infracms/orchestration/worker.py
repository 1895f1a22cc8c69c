"""``infracms worker``: a Celery worker process that runs runs in threads.

The pool is threads: a run's work happens in its ansible-playbook process, and the
worker only relays events and heartbeats, which threads do as well as processes at a
fraction of the memory. It also makes every way of dying the same: the process that
started the playbooks is the one whose death stops the heartbeats, whereas a prefork
child could outlive a killed parent and go on with its run unacknowledged. The
embedded executor runs ``execute_run`` in threads too.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infracms.config import Settings
from infracms.db import make_engine
from infracms.orchestration.celery_app import QUEUE, check_broker, make_celery
from infracms.orchestration.execute import RunContext, execute_run
from infracms.orchestration.jobs import JobContext
from infracms.orchestration.jobs.reap import reap_lost_runs
from infracms.plugins import Plugins
from infracms.runs import workdir

log = logging.getLogger(__name__)
WORKDIR_PREFIX = "infracms-worker-"


class WorkerContexts:
    """This worker process's RunContext: built on first use (after any fork), then kept."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._context: RunContext | None = None
        self._pid = 0

    def get(self) -> RunContext:
        """The context (engine, plugins, worker name) of the calling process."""
        with self._lock:
            if self._context is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._context = RunContext(
                    settings=self.settings,
                    engine=make_engine(self.settings),
                    plugins=Plugins.load(),
                    worker=f"celery@{socket.gethostname()}:{self._pid}",
                )
            return self._context


def run_task(contexts: WorkerContexts, run_id: str) -> str | None:
    """The task's body: run `run_id` if it is still queued; its final status, if it ran."""
    try:
        parsed = uuid.UUID(run_id)
    except ValueError:
        log.error("dropping a task with a malformed run id %r", run_id)
        return None
    status = execute_run(parsed, contexts.get())
    if status is None:
        log.info("run %s is not queued any more: nothing to do", parsed)
        return None
    return str(status)


def run_worker(
    settings: Settings,
    *,
    concurrency: int,
    loglevel: str = "info",
    started: Callable[[], None] | None = None,
) -> None:
    """Run a Celery worker in this process until it is stopped (SIGTERM lets runs end).

    `started` is called once the worker's context is built, before it takes runs
    (``infracms worker`` quiets the GC).
    """
    contexts = WorkerContexts(settings)
    app = _worker_app(settings, contexts)
    check_broker(app)
    context = contexts.get()  # fail now, not at the first run, on a bad database or plugin
    use_private_tempdir()
    workdir.sweep()  # a killed worker's run directories hold secrets; end its ssh too
    reap_lost_runs(JobContext(settings=settings, engine=context.engine, app=app))
    if started is not None:
        started()
    app.worker_main(_worker_argv(concurrency, loglevel))


def _worker_app(settings: Settings, contexts: WorkerContexts) -> Any:
    def execute(run_id: str) -> str | None:
        return run_task(contexts, run_id)

    return make_celery(settings, execute)


def _worker_argv(concurrency: int, loglevel: str) -> list[str]:
    return [
        "worker",
        "--pool=threads",
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel.upper()}",
        f"--queues={QUEUE}",
        f"--hostname=infracms-{os.getpid()}@%h",
        # mingle and gossip talk to other workers over the broker, for nothing we use
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    ]


def use_private_tempdir(base: Path | None = None) -> Path:
    """Give this process a temporary directory of its own, after removing those of this
    machine's workers that are gone: a killed worker's run directories hold credentials."""
    base = Path(base or tempfile.gettempdir())
    prefix = f"{WORKDIR_PREFIX}{socket.gethostname()}-"
    for path in base.glob(f"{prefix}*"):
        pid = path.name.removeprefix(prefix).split("-", 1)[0]
        if pid.isdigit() and _gone(int(pid)) and _ours(path):
            log.warning("removing %s, left by a worker that is gone", path)
            shutil.rmtree(path, ignore_errors=True)
    mine = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=base))
    tempfile.tempdir = str(mine)
    return mine


def _gone(pid: int) -> bool:
    """Whether no process `pid` runs here (our own pid: a previous life of this container)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _ours(path: Path) -> bool:
    status = path.lstat()
    return path.is_dir() and not path.is_symlink() and status.st_uid == os.geteuid()
