"""The Celery app: runs go to workers over Redis, one task, ``infracms.execute_run``.

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
  runs and releases their host locks within ``run_stale_seconds`` plus one reap period
  (``jobs/reap.py``); ending their ansible-playbook, ssh masters and ssh-agent is
  ``runs/playbook_wrapper.py``'s job;
- a lost broker is waited for, for ever, and its lost connection is torn down without
  ending the worker (``consumer.py``): a worker outlives Redis restarts; if a Celery
  worker ends in error all the same, ``infracms worker`` starts another (``worker.py``).

``app`` is built on first access from ``get_settings()``, for ``celery -A
infracms.orchestration.celery_app inspect ...``; ``infracms worker`` and ``infracms
beat`` are the supported way to run workers and the scheduler (``worker.py``,
``beat.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError
from kombu.utils.url import maybe_sanitize_url

from infracms.config import Settings, get_settings
from infracms.errors import ConfigurationError
from infracms.models.run import RunCreate
from infracms.orchestration.queue import QUEUE, TASK_NAME

CONSUMER = "infracms.orchestration.consumer:Consumer"

VISIBILITY_MARGIN_SECONDS = 3600  # rendering, storing the last events, finishing
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")  # beat's locks are Redis locks
__all__ = ["QUEUE", "TASK_NAME", "check_broker", "make_celery", "visibility_timeout"]


def longest_run_seconds() -> int:
    """The longest timeout a run may be given: the upper bound of ``RunCreate.timeout_seconds``."""
    for bound in RunCreate.model_fields["timeout_seconds"].metadata:
        if getattr(bound, "le", None) is not None:
            return int(bound.le)
    raise RuntimeError("RunCreate.timeout_seconds has no upper bound to derive a timeout from")


def visibility_timeout() -> int:
    """How long Redis waits for an unacknowledged message before handing it out again."""
    return longest_run_seconds() + VISIBILITY_MARGIN_SECONDS


def make_celery(settings: Settings, task: Callable[[str], str | None] | None = None) -> Any:
    """A Celery app on ``settings.broker_url``; `task` (a worker's) is ``infracms.execute_run``."""
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
        task_reject_on_worker_lost=True,  # for prefork pools; ours are threads (see worker.py)
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": visibility_timeout()},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits for a lost broker for ever
        # a redelivery after a lost connection does nothing (claim_run): keep the run going
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_ignore_result=True,  # state is in the database
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        worker_send_task_events=False,
        worker_consumer=CONSUMER,  # survives a lost Redis connection (consumer.py)
    )
    # shared=False: this app's task only (a shared one would join every app made later)
    app.task(name=TASK_NAME, ignore_result=True, shared=False)(
        task or _task_of_this_process(settings)
    )
    return app


def _task_of_this_process(settings: Settings) -> Callable[[str], str | None]:
    """The task for an app built without one (``celery -A ... worker``): a worker's body,
    with this process's context built on the first run."""
    contexts: list[Any] = []

    def execute(run_id: str) -> str | None:
        from infracms.orchestration.worker import WorkerContexts, run_task

        if not contexts:
            contexts.append(WorkerContexts(settings))
        return run_task(contexts[0], run_id)

    return execute


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


@lru_cache(maxsize=1)
def _app_from_environment() -> Any:
    return make_celery(get_settings())


def __getattr__(name: str) -> Any:
    """``app``, built on first access (``celery -A infracms.orchestration.celery_app``)."""
    if name == "app":
        return _app_from_environment()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
