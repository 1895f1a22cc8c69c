"""Runs on Celery workers over Redis: the app, its one task, the executor, worker and beat.

Delivery is at least once and the database decides (a killed pool process gets its task
redelivered within about 50 ms while its ansible-playbook runs on; a killed worker leaves
its task unacknowledged until the broker's visibility timeout):

- tasks are acknowledged late and a worker reserves one message per free thread, so a
  run's message leaves Redis only when the run has ended;
- a delivered task runs its run only while the run is queued (``claim_run``): a
  redelivered message of a run that started, ended or was reaped does nothing;
- the visibility timeout is above the longest run, so Redis never hands the message of
  a live run to a second worker;
- a worker that dies stops renewing its runs' heartbeats: ``infracms beat`` fails those
  runs and releases their host locks within ``run_stale_seconds`` plus one reap period;
  ending their ansible-playbook, ssh masters and ssh-agent is ``playbook_wrapper.py``'s job;
- run directories live in the per-user tmpfs directory of ``runs/workdir.py``; a starting
  worker sweeps those of dead processes.

``app`` is built on first access from ``get_settings()``, for ``celery -A
infracms.runs.celery_app inspect ...``; ``infracms worker`` and ``infracms beat`` are the
supported way to run workers and the scheduler.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import OperationalError
from kombu.utils.url import maybe_sanitize_url
from sqlalchemy import Engine
from sqlmodel import col, select

from infracms.config import Settings, get_settings
from infracms.db import make_engine, session_scope
from infracms.errors import ConfigurationError
from infracms.models.base import utcnow
from infracms.models.run import Run, RunCreate, RunStatus
from infracms.plugins import Plugins
from infracms.runs import workdir
from infracms.runs.execute import RunContext, execute_run
from infracms.services import audit as audit_service
from infracms.services import runs as run_service
from infracms.services import witness

log = logging.getLogger(__name__)
TASK_NAME = "infracms.execute_run"
QUEUE = "infracms.runs"
VISIBILITY_MARGIN_SECONDS = 3600  # rendering, storing the last events, finishing
WORKDIR_PREFIX = "infracms-worker-"
REAP_SECONDS = 15.0
WITNESS_SECONDS = 10.0  # peers are asked to cosign the latest checkpoint this often
FEDERATION_SECONDS = 300.0
AUDIT_CHECK_SECONDS = 600.0  # the node rehashes its whole stored log this often
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")  # beat's locks are Redis locks


def longest_run_seconds() -> int:
    """The longest timeout a run may be given: the upper bound of ``RunCreate.timeout_seconds``."""
    for bound in RunCreate.model_fields["timeout_seconds"].metadata:
        if getattr(bound, "le", None) is not None:
            return int(bound.le)
    raise RuntimeError("RunCreate.timeout_seconds has no upper bound to derive a timeout from")


def visibility_timeout() -> int:
    """How long Redis waits for an unacknowledged message before handing it out again."""
    return longest_run_seconds() + VISIBILITY_MARGIN_SECONDS


def make_celery(settings: Settings, contexts: WorkerContexts | None = None) -> Any:
    """A Celery app on ``settings.broker_url`` with the ``infracms.execute_run`` task."""
    if not settings.broker_url:
        raise ConfigurationError("INFRACMS_BROKER_URL is not set: Celery workers need a broker")
    if not settings.broker_url.startswith(REDIS_SCHEMES):
        raise ConfigurationError(
            f"INFRACMS_BROKER_URL must be a Redis URL ({', '.join(REDIS_SCHEMES)}), "
            f"got {maybe_sanitize_url(settings.broker_url)}"
        )
    app = Celery("infracms", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,  # for prefork pools; ours are threads (see run_worker)
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": visibility_timeout()},
        broker_connection_retry_on_startup=True,
        # a redelivery after a lost connection does nothing (claim_run): keep the run going
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_ignore_result=True,  # state is in the database
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        worker_send_task_events=False,
    )
    contexts = contexts or WorkerContexts(settings)

    def execute(run_id: str) -> str | None:
        return run_task(contexts, run_id)

    app.task(name=TASK_NAME, ignore_result=True)(execute)
    return app


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


class CeleryExecutor:
    """The web server's side: sends runs to the workers through the broker."""

    def __init__(self, context: RunContext) -> None:
        self.context = context
        self.app = make_celery(context.settings)

    def start(self) -> None:
        """Check that the broker answers, so that a wrong URL fails at start-up, named."""
        check_broker(self.app)

    def submit(self, run_id: uuid.UUID) -> None:
        """Send `run_id` to a worker; if the broker is down the run stays queued and beat
        sends it again once the broker is back."""
        try:
            self.app.send_task(TASK_NAME, args=[str(run_id)], queue=QUEUE)
        except OperationalError as exc:
            log.warning(
                "could not send run %s to the broker (%s); beat will resend it", run_id, exc
            )

    def shutdown(self) -> None:
        """Close the broker connections."""
        self.app.close()


def check_broker(app: Any) -> None:
    """Raise ConfigurationError, naming the broker, when it does not answer."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0.5, timeout=5)
    except OperationalError as exc:
        where = maybe_sanitize_url(app.conf.broker_url)
        raise ConfigurationError(
            f"the broker at {where} does not answer ({exc}): start Redis or fix INFRACMS_BROKER_URL"
        ) from exc


def run_worker(
    settings: Settings,
    *,
    concurrency: int,
    loglevel: str = "info",
    started: Callable[[], None] | None = None,
) -> None:
    """Run a Celery worker in this process until it is stopped (SIGTERM lets runs end).

    The pool is threads: a run's work happens in its ansible-playbook process, and the
    worker only relays events and heartbeats, which threads do as well as processes at a
    fraction of the memory. It also makes every way of dying the same: the process that
    started the playbooks is the one whose death stops the heartbeats, whereas a prefork
    child could outlive a killed parent and go on with its run unacknowledged. The
    embedded executor runs ``execute_run`` in threads too. `started` is called once the
    worker's context is built, before it takes runs (``infracms worker`` quiets the GC).
    """
    contexts = WorkerContexts(settings)
    app = make_celery(settings, contexts)
    check_broker(app)
    context = contexts.get()  # fail now, not at the first run, on a bad database or plugin
    use_private_tempdir()
    workdir.sweep()  # a killed worker's run directories hold secrets; end its ssh too
    reap_lost_runs(BeatContext(settings=settings, engine=context.engine, app=app))
    if started is not None:
        started()
    app.worker_main(
        [
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
    )


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


# --- beat: periodic jobs ---------------------------------------------------------------


@dataclass(frozen=True)
class BeatContext:
    """What a periodic job may use."""

    settings: Settings
    engine: Engine
    app: Any


@dataclass(frozen=True)
class PeriodicJob:
    """Something ``infracms beat`` does every `every_seconds`."""

    name: str
    every_seconds: float
    run: Callable[[BeatContext], None]


def beat_jobs(*, reap_seconds: float = REAP_SECONDS) -> list[PeriodicJob]:
    """The periodic jobs of a node."""
    return [
        PeriodicJob("reap lost runs", reap_seconds, reap_lost_runs),
        PeriodicJob("resend lost runs", reap_seconds, resend_lost_runs),
        PeriodicJob("gather cosignatures", WITNESS_SECONDS, witness.beat_job),
        PeriodicJob("federation", FEDERATION_SECONDS, federation_job),
        PeriodicJob("audit self check", AUDIT_CHECK_SECONDS, audit_service.self_check_job),
    ]


def federation_job(beat: BeatContext) -> None:
    """Sync peers' catalogs, follow requested services, prune the replay cache."""
    from infracms.services.federation.jobs import run_periodic

    run_periodic(beat.settings, beat.engine)


def reap_lost_runs(beat: BeatContext) -> None:
    """Fail the runs whose worker stopped heartbeating and release their host locks."""
    with _maintenance_lock(beat.settings, "reap") as ours:
        if not ours:
            return
        with session_scope(beat.engine, write=True) as session:
            lost = run_service.reap_stale_runs(
                session, stale_seconds=beat.settings.run_stale_seconds
            )
    for run_id in lost:
        log.warning("run %s: its worker was lost; marked failed, locks released", run_id)


def resend_lost_runs(beat: BeatContext) -> None:
    """Send again the runs queued for over `run_stale_seconds` while no message waits in
    the queue: their message was lost (sending failed, or Redis lost its data). A
    duplicate does nothing (claim_run), so this errs on the side of sending."""
    with beat.app.connection_for_read() as connection:
        waiting = connection.default_channel.queue_declare(QUEUE).message_count
    if waiting:
        return
    cutoff = utcnow() - timedelta(seconds=beat.settings.run_stale_seconds)
    query = select(Run.id).where(Run.status == RunStatus.queued, col(Run.created_at) < cutoff)
    with session_scope(beat.engine) as session:
        lost = list(session.exec(query.order_by(col(Run.created_at))))
    for run_id in lost:
        log.warning("run %s has been queued with no message for it: sending it again", run_id)
        beat.app.send_task(TASK_NAME, args=[str(run_id)], queue=QUEUE)


def run_beat(settings: Settings, jobs: list[PeriodicJob], stop: threading.Event) -> None:
    """Run `jobs`, each every its period, until `stop` is set; a failing job is logged."""
    app, engine = make_celery(settings), make_engine(settings)
    beat = BeatContext(settings=settings, engine=engine, app=app)
    due = {job.name: 0.0 for job in jobs}
    try:
        while not stop.is_set():
            for job in jobs:
                if time.monotonic() >= due[job.name]:
                    _run_job(job, beat)
                    due[job.name] = time.monotonic() + job.every_seconds
            stop.wait(max(0.0, min(due.values()) - time.monotonic()))
    finally:
        app.close()
        engine.dispose()


def _run_job(job: PeriodicJob, beat: BeatContext) -> None:
    try:
        job.run(beat)
    except Exception:  # the next period tries again
        log.exception("periodic job %r failed", job.name)


@contextmanager
def _maintenance_lock(settings: Settings, name: str) -> Iterator[bool]:
    """Whether we hold the node-wide lock `name` (a Redis lock: one beat or worker at a
    time, so that two reapers never finish the same run twice)."""
    client = redis.Redis.from_url(settings.broker_url or "")
    lock = client.lock(f"infracms:maintenance:{name}", timeout=60, blocking=False)
    try:
        ours = bool(lock.acquire())
        try:
            yield ours
        finally:
            if ours:
                with suppress(redis.exceptions.LockError):
                    lock.release()
    finally:
        client.close()


@lru_cache(maxsize=1)
def _app_from_environment() -> Any:
    return make_celery(get_settings())


def __getattr__(name: str) -> Any:
    """``app``, built on first access (``celery -A infracms.runs.celery_app``)."""
    if name == "app":
        return _app_from_environment()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
