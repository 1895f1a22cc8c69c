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

from infracms.audit.payload import payload_text
from infracms.models.base import new_id, utcnow
from infracms.models.notification import (
    NotificationChannel,
    NotificationKind,
    NotificationRule,
    NotificationSubscription,
    OutboxMessage,
)
from infracms.models.organisation import Organisation
from infracms.models.user import User

MAX_SUBJECT = 500


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
