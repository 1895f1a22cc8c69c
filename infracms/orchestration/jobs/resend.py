"""Job: send again the queued runs whose Celery message was lost."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlmodel import col, select

from infracms.db import session_scope
from infracms.models.base import utcnow
from infracms.models.run import Run, RunStatus
from infracms.orchestration.queue import QUEUE, TASK_NAME

if TYPE_CHECKING:
    from infracms.orchestration.jobs import JobContext

log = logging.getLogger(__name__)


def resend_lost_runs(context: JobContext) -> None:
    """Send again the runs queued for over `run_stale_seconds` while no message waits in
    the queue: their message was lost (sending failed, or Redis lost its data). A
    duplicate does nothing (claim_run), so this errs on the side of sending."""
    with context.app.connection_for_read() as connection:
        waiting = connection.default_channel.queue_declare(QUEUE).message_count
    if waiting:
        return
    cutoff = utcnow() - timedelta(seconds=context.settings.run_stale_seconds)
    query = select(Run.id).where(Run.status == RunStatus.queued, col(Run.created_at) < cutoff)
    with session_scope(context.engine) as session:
        lost = list(session.exec(query.order_by(col(Run.created_at))))
    for run_id in lost:
        log.warning("run %s has been queued with no message for it: sending it again", run_id)
        context.app.send_task(TASK_NAME, args=[str(run_id)], queue=QUEUE)
