"""Notifications: an event is written to the outbox in the transaction that reports it.

`emit` adds one ``notification_outbox`` row per destination that wants the event: each
enabled channel with a rule for its kind (the organisation's, or the node's own for node
events), and each person who subscribed to their own events of that kind by email. It
never commits: the rows are written with the change they report, or not at all, and the
delivery job (``notification_delivery``) sends them at least once under their key.

A notification carries the event's subject and data with every secret withheld (the
audit log's rule: values under keys naming a secret), and never a run's settings.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, col, select

from infracms.audit import selfcheck
from infracms.audit.payload import payload_text
from infracms.models.base import new_id, utcnow
from infracms.models.federation import ServiceInstance
from infracms.models.notification import (
    NotificationChannel,
    NotificationKind,
    NotificationRule,
    NotificationSubscription,
    OutboxMessage,
)
from infracms.models.organisation import Organisation
from infracms.models.run import Run, RunStatus
from infracms.models.user import User

MAX_SUBJECT = 500
RUN_OUTCOMES = {
    RunStatus.succeeded: NotificationKind.run_succeeded,
    RunStatus.failed: NotificationKind.run_failed,
    RunStatus.timed_out: NotificationKind.run_failed,
}


def emit(
    session: Session,
    *,
    organisation_id: uuid.UUID | None,
    kind: NotificationKind,
    subject: str,
    data: Mapping[str, Any],
    user: str | None = None,
) -> uuid.UUID | None:
    """Queue a notification of `kind` in the caller's transaction (no commit): one outbox
    row per channel whose rules want it, and one per subscriber among `user` (the person
    whose doing it is). Returns the notification's id, or None if nobody wants it."""
    channels = _channels_for(session, organisation_id, kind)
    people = _subscribers(session, organisation_id, kind, user)
    if not channels and not people:
        return None
    notification_id = new_id()
    document = _document(session, notification_id, organisation_id, kind, subject, data)
    for channel in channels:
        _queue(session, document, organisation_id, channel.name, channel_id=channel.id)
    for person in people:
        _queue(session, document, organisation_id, f"{person.username} (email)", user_id=person.id)
    return notification_id


def _channels_for(
    session: Session, organisation_id: uuid.UUID | None, kind: NotificationKind
) -> list[NotificationChannel]:
    query = (
        select(NotificationChannel)
        .join(NotificationRule, col(NotificationRule.channel_id) == NotificationChannel.id)
        .where(NotificationRule.kind == kind, col(NotificationChannel.enabled).is_(True))
    )
    if organisation_id is None:
        query = query.where(col(NotificationChannel.organisation_id).is_(None))
    else:
        query = query.where(NotificationChannel.organisation_id == organisation_id)
    return list(session.exec(query.order_by(col(NotificationChannel.name))))


def _subscribers(
    session: Session, organisation_id: uuid.UUID | None, kind: NotificationKind, user: str | None
) -> list[User]:
    if organisation_id is None or user is None:
        return []
    query = (
        select(User)
        .join(NotificationSubscription, col(NotificationSubscription.user_id) == User.id)
        .where(
            NotificationSubscription.organisation_id == organisation_id,
            NotificationSubscription.kind == kind,
            User.username == user,
            col(User.is_active).is_(True),
            col(User.email).is_not(None),
        )
    )
    return list(session.exec(query))


def _document(
    session: Session,
    notification_id: uuid.UUID,
    organisation_id: uuid.UUID | None,
    kind: NotificationKind,
    subject: str,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    org = session.get(Organisation, organisation_id) if organisation_id else None
    return {
        "id": str(notification_id),
        "kind": kind.value,
        "subject": one_line(subject)[:MAX_SUBJECT],
        "organisation": org.name if org else None,
        "occurred_at": utcnow().isoformat(),
        "data": json.loads(payload_text(data)),  # secrets withheld, as in audit payloads
    }


def one_line(text: str) -> str:
    """`text` with its line breaks and control characters made spaces (a mail subject)."""
    return "".join(" " if ord(ch) < 32 or ch == "\x7f" else ch for ch in text).strip()


def _queue(
    session: Session,
    document: dict[str, Any],
    organisation_id: uuid.UUID | None,
    destination: str,
    *,
    channel_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
) -> None:
    row_id = new_id()
    session.add(
        OutboxMessage(
            id=row_id,
            idempotency_key=f"infracms-{row_id}",
            notification_id=uuid.UUID(document["id"]),
            organisation_id=organisation_id,
            kind=NotificationKind(document["kind"]),
            subject=document["subject"],
            channel_id=channel_id,
            user_id=user_id,
            destination=destination[:300],
            body=document,
        )
    )


def run_finished(session: Session, run: Run, organisation: str) -> None:
    """Queue "run succeeded" or "run failed" (a timed-out run failed; a cancelled one is
    neither): what ran where, how it ended; never the definitions' settings."""
    kind = RUN_OUTCOMES.get(run.status)
    if kind is None:
        return
    emit(
        session,
        organisation_id=run.organisation_id,
        kind=kind,
        subject=f"{run.kind} of {organisation} {run.status}: run {run.id}",
        data={
            "run": run.id,
            "run_kind": run.kind,
            "status": run.status,
            "rc": run.rc,
            "hosts": run.hosts,
            "recap": run.recap,
            "definitions": [
                {"name": d.get("name"), "module": d.get("module"), "revision": d.get("revision")}
                for d in run.definitions
            ],
            "requested_by": run.requested_by,
            "error": run.error,
        },
        user=run.requested_by,
    )


def self_check_failed(session: Session, outcome: selfcheck.CheckOutcome) -> None:
    """Queue "audit self check failed" for the node's channels when a check fails after
    one that passed (or none): once per failure, not at every check while it lasts."""
    if outcome.ok:
        return
    last = selfcheck.last_outcome(session)
    if last is not None and not last.ok:
        return
    emit(
        session,
        organisation_id=None,
        kind=NotificationKind.audit_check_failed,
        subject=f"the audit self check failed at entry {outcome.first_bad}",
        data={"size": outcome.size, "first_bad": outcome.first_bad, "detail": outcome.detail},
    )


def provision_requested(session: Session, instance: ServiceInstance) -> None:
    """Queue "provision request received" for the offering's organisation: who asks for
    which offering and plan (not the request's parameters)."""
    emit(
        session,
        organisation_id=instance.organisation_id,
        kind=NotificationKind.provision_requested,
        subject=f"{instance.client} requests {instance.offering_id} ({instance.plan_id})",
        data={
            "instance": instance.instance_id,
            "client": instance.client,
            "offering": instance.offering_id,
            "plan": instance.plan_id,
            "status": instance.status,
        },
    )


def catalog_stale(
    session: Session, peer: str, why: str, error: str, kept_version: int | None
) -> None:
    """Queue "peer catalog stale" for the node's channels when a peer's catalog stops
    syncing (the first failure after a success: the copy held is stale from then on)."""
    emit(
        session,
        organisation_id=None,
        kind=NotificationKind.peer_catalog_stale,
        subject=f"the catalog of {peer} is stale: {why}",
        data={"peer": peer, "failure": why, "error": error[:500], "kept_version": kept_version},
    )
