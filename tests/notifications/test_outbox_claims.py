"""Claimers never take the same outbox row: SELECT … FOR UPDATE SKIP LOCKED on
PostgreSQL, one writer at a time on SQLite."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import Engine
from sqlmodel import select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import Organisation
from infracms.models.base import utcnow
from infracms.models.notification import NotificationKind
from infracms.orchestration.jobs import periodic_jobs
from infracms.services import notification_delivery as delivery
from infracms.services import notifications
from tests.helpers import make_org
from tests.notifications.conftest import add_channel


def test_concurrent_claimers_share_out_the_due_rows(
    any_engine: Engine, any_db_settings: Settings
) -> None:
    make_org(any_engine, "clinic")
    add_channel(
        any_engine,
        any_db_settings,
        "run.failed",
        name="ops",
        kind="webhook",
        url="https://hooks.example/ops",
    )
    with session_scope(any_engine, write=True) as session:
        org = session.exec(select(Organisation.id).where(Organisation.name == "clinic")).one()
        for _ in range(120):
            notifications.emit(
                session, organisation_id=org, kind=NotificationKind.run_failed, subject="x", data={}
            )
        session.commit()
    moment = utcnow()
    taken: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def claimer(number: int) -> None:
        while batch := delivery.claim_due(
            any_engine, any_db_settings, claimer=f"c{number}", now=moment, limit=7
        ):
            taken[number].extend(item.id for item in batch)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [row for rows in taken for row in rows]
    assert len(every) == 120 and len(set(every)) == 120


def test_the_delivery_job_is_registered_every_second_with_and_without_a_broker() -> None:
    for broker in (False, True):
        [job] = [job for job in periodic_jobs(broker=broker) if job.name == "deliver notifications"]
        assert job.every_seconds == 1.0 and not job.needs_broker
