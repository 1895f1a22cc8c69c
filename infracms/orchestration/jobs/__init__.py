"""The one registry of periodic jobs: what a node does on its own, and how often.

The server's in-process scheduler (``scheduler.py``, no broker) and ``infracms beat``
(``beat.py``, with Celery) both read ``periodic_jobs``. Jobs that look after Celery's
queue (reaping runs of lost workers, resending lost messages) run only with a broker:
the embedded executor reaps its own runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from infracms.config import Settings

REAP_SECONDS = 15.0  # runs of lost workers are failed, and lost messages resent, this often
WITNESS_SECONDS = 10.0  # peers are asked to cosign the latest checkpoint this often
FEDERATION_SECONDS = 300.0  # catalogs sync, requested services are followed
AUDIT_CHECK_SECONDS = 600.0  # the node rehashes its whole stored log this often
APPROVAL_EXPIRY_SECONDS = 60.0  # held applies past their approval's expiry end this often
SCHEDULE_SECONDS = 30.0  # due schedules (drift checks) fire this often
NOTIFY_SECONDS = 1.0  # the notification outbox is drained this often


@dataclass(frozen=True)
class JobContext:
    """What a periodic job may use (`app`: the Celery app under ``infracms beat``, else None)."""

    settings: Settings
    engine: Engine
    app: Any = None


@dataclass(frozen=True)
class PeriodicJob:
    """Something a node does every `every_seconds`."""

    name: str
    every_seconds: float
    run: Callable[[JobContext], None]
    needs_broker: bool = False


def registry(*, reap_seconds: float = REAP_SECONDS) -> list[PeriodicJob]:
    """Every periodic job of a node."""
    from infracms.orchestration.jobs.approvals import expire_approvals
    from infracms.orchestration.jobs.audit_check import self_check
    from infracms.orchestration.jobs.federation import federation_job
    from infracms.orchestration.jobs.notifications import deliver_notifications
    from infracms.orchestration.jobs.reap import reap_lost_runs
    from infracms.orchestration.jobs.resend import resend_lost_runs
    from infracms.orchestration.jobs.schedules import fire_schedules
    from infracms.orchestration.jobs.witness import gather_cosignatures

    return [
        PeriodicJob("reap lost runs", reap_seconds, reap_lost_runs, needs_broker=True),
        PeriodicJob("resend lost runs", reap_seconds, resend_lost_runs, needs_broker=True),
        PeriodicJob("gather cosignatures", WITNESS_SECONDS, gather_cosignatures),
        PeriodicJob("federation", FEDERATION_SECONDS, federation_job),
        PeriodicJob("audit self check", AUDIT_CHECK_SECONDS, self_check),
        PeriodicJob("expire approvals", APPROVAL_EXPIRY_SECONDS, expire_approvals),
        PeriodicJob("schedules", SCHEDULE_SECONDS, fire_schedules),
        PeriodicJob("deliver notifications", NOTIFY_SECONDS, deliver_notifications),
    ]


def periodic_jobs(*, broker: bool, reap_seconds: float = REAP_SECONDS) -> list[PeriodicJob]:
    """The jobs to run with a broker (``infracms beat``) or without (the server itself)."""
    return [job for job in registry(reap_seconds=reap_seconds) if broker or not job.needs_broker]
