"""Job: fail the runs whose Celery worker stopped heartbeating, and release their locks.

One reaper at a time across the node (a Redis lock), so that two never finish the same
run twice. A starting worker reaps too (``worker.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

import redis

from infracms.config import Settings
from infracms.db import session_scope
from infracms.services import runs as run_service

if TYPE_CHECKING:
    from infracms.orchestration.jobs import JobContext

log = logging.getLogger(__name__)


def reap_lost_runs(context: JobContext) -> None:
    """Fail the runs whose worker stopped heartbeating and release their host locks."""
    with maintenance_lock(context.settings, "reap") as ours:
        if not ours:
            return
        with session_scope(context.engine, write=True) as session:
            lost = run_service.reap_stale_runs(
                session, stale_seconds=context.settings.run_stale_seconds
            )
    for run_id in lost:
        log.warning("run %s: its worker was lost; marked failed, locks released", run_id)


@contextmanager
def maintenance_lock(settings: Settings, name: str) -> Iterator[bool]:
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
