"""Job: fire the schedules that are due (drift checks, and reconciles of what they found).

The runs are created by ``services.schedules`` (audited, like any run) and then handed
to the executor: Celery's queue under ``infracms beat``, else a thread of this process
(the embedded scheduler of a node with no broker).
"""

from __future__ import annotations

import functools
import logging
import socket
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from infracms.db import session_scope
from infracms.models.base import utcnow
from infracms.orchestration.queue import QUEUE, TASK_NAME
from infracms.plugins import Plugins
from infracms.services import schedules

if TYPE_CHECKING:
    from infracms.orchestration.jobs import JobContext

log = logging.getLogger(__name__)
Submit = Callable[[uuid.UUID], None]


def fire_schedules(context: JobContext) -> None:
    """Queue the runs of the schedules that are due, and submit each."""
    fire_due(context)


def fire_due(
    context: JobContext, *, now: datetime | None = None, submit: Submit | None = None
) -> list[uuid.UUID]:
    """Queue the runs of the schedules due at `now` and submit each (the runs queued)."""
    plugins = _plugins()
    with session_scope(context.engine, write=True) as session:
        queued = schedules.fire_due(session, plugins, now or utcnow())
    send = submit or _submitter(context, plugins)
    for run_id in queued:
        log.info("schedule: run %s queued", run_id)
        send(run_id)
    return queued


@functools.cache
def _plugins() -> Plugins:
    """The installed modules, loaded once per process (on the first firing, not at import)."""
    return Plugins.load()


def _submitter(context: JobContext, plugins: Plugins) -> Submit:
    if context.app is not None:
        return lambda run_id: context.app.send_task(TASK_NAME, args=[str(run_id)], queue=QUEUE)

    def here(run_id: uuid.UUID) -> None:
        from infracms.services.execution import dispatch_run

        dispatch_run(  # named as the embedded executor's runs, so a restart reaps them
            settings=context.settings,
            engine=context.engine,
            plugins=plugins,
            run_id=run_id,
            worker=f"embedded@{socket.gethostname()}",
        )

    return here
