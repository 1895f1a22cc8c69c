"""``infracms worker``: a Celery worker process that runs runs in threads.

The pool is threads: a run's work happens in its ansible-playbook process, and the
worker only relays events and heartbeats, which threads do as well as processes at a
fraction of the memory. It also makes every way of dying the same: the process that
started the playbooks is the one whose death stops the heartbeats, whereas a prefork
child could outlive a killed parent and go on with its run unacknowledged. The
embedded executor runs ``execute_run`` in threads too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery.worker import state as worker_state
from kombu.asynchronous import set_event_loop

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
RESTART_PAUSE_SECONDS = 1.0  # a failed Celery worker is started again after this, doubling
RESTART_PAUSE_MAX_SECONDS = 30.0


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
    (``infracms worker`` quiets the GC). A Celery worker that ends with an error (an
    "Unrecoverable error" after a broker outage) is started again here, after a pause
    that grows while it keeps failing: runs queued meanwhile wait in the database.
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
    argv = _worker_argv(concurrency, loglevel)
    supervise(lambda: _worker_app(settings, contexts), argv, first=app)


def supervise(make_app: Callable[[], Any], argv: list[str], *, first: Any = None) -> None:
    """Run Celery workers one after another until one ends cleanly (stopped by a signal)."""
    stop = threading.Event()
    app, pause = first or make_app(), RESTART_PAUSE_SECONDS
    while True:
        began = time.monotonic()
        code = _run_celery_worker(app, argv)
        _catch_stop_signals(stop)  # Celery's own handlers ended with its worker
        if code == 0 or stop.is_set():
            return
        if time.monotonic() - began > RESTART_PAUSE_MAX_SECONDS:
            pause = RESTART_PAUSE_SECONDS  # it ran for a while: a new failure, not the same
        log.error("the Celery worker ended with exit code %s; starting again in %g s", code, pause)
        if stop.wait(pause):
            return
        pause = min(pause * 2, RESTART_PAUSE_MAX_SECONDS)
        app = make_app()


def _run_celery_worker(app: Any, argv: list[str]) -> int:
    """Run one Celery worker to its end; its exit code."""
    worker_state.should_stop = worker_state.should_terminate = None  # a previous one's
    set_event_loop(None)  # a previous worker's hub is closed: the next one makes its own
    try:
        code = app.start(argv)  # worker_main would drop the exit code
    except SystemExit as ended:
        code = ended.code
    except Exception:  # whatever ended this worker, the next one may do better
        log.exception("the Celery worker failed")
        code = 1
    finally:
        with contextlib.suppress(Exception):
            app.close()
    return code if isinstance(code, int) else (0 if code is None else 1)


def _catch_stop_signals(stop: threading.Event) -> None:
    """Between two Celery workers, SIGTERM and SIGINT stop the supervisor."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())


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
