"""Delivering the outbox: claim due rows, send them, record each attempt.

A claim is a lease: due rows (pending, their next attempt come, unclaimed or their
claim run out) are marked ``claimed_until`` in one short transaction, ``SELECT … FOR
UPDATE SKIP LOCKED`` on PostgreSQL so that claimers never take the same row, and on
SQLite by the one writer at a time. They are sent outside any transaction, and the
outcome of each is recorded in one more: delivered, or its error, attempt count and
next attempt after an exponential back-off with a cap, or failed for good after
``notify_max_attempts``. A claimer that dies leaves its rows to be claimed again when
the lease runs out: a notification is delivered at least once, and always under the
same idempotency key. A claimer starts no send that could outlast its lease.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from sqlalchemy import Engine, Row, bindparam, or_, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from federation.keys import NodeKey
from infracms import keys
from infracms.config import Settings
from infracms.db import session_scope
from infracms.models.base import utcnow
from infracms.models.notification import (
    ChannelKind,
    DeliveryState,
    NotificationChannel,
    OutboxMessage,
)
from infracms.models.user import User
from infracms.services.notification_senders import (
    DeliveryFailed,
    Email,
    Mailer,
    Outgoing,
    Webhook,
    send_webhook,
)
from infracms.services.notification_settings import hmac_context

LEASE = timedelta(seconds=60)
BATCH = 200
SENDERS = 8  # webhooks sent at once
BUDGET_SECONDS = 5.0  # one call of the job drains for at most this long
ATTEMPT_LOG = 10  # the last attempts kept on a row
MAX_ERROR = 2000


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended (`error` None: delivered)."""

    id: uuid.UUID
    error: str | None
    at: datetime


def claimer_name() -> str:
    """Who claims: host, process and thread."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:200]


def backoff(settings: Settings, attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: doubling from the first, up to the cap."""
    seconds = settings.notify_backoff_seconds * 2 ** min(attempts - 1, 30)
    return timedelta(seconds=min(seconds, settings.notify_backoff_cap_seconds))


TABLE = OutboxMessage.__table__  # type: ignore[attr-defined]
CLAIMED_FIELDS = (
    TABLE.c.id,
    TABLE.c.idempotency_key,
    TABLE.c.body,
    TABLE.c.channel_id,
    TABLE.c.user_id,
)
OUTCOME_FIELDS = (
    TABLE.c.id,
    TABLE.c.state,
    TABLE.c.attempts,
    TABLE.c.attempt_log,
    TABLE.c.last_error,
    TABLE.c.next_attempt_at,
    TABLE.c.delivered_at,
)


def claim_due(
    engine: Engine, settings: Settings, *, claimer: str, now: datetime, limit: int = BATCH
) -> list[Outgoing]:
    """Claim up to `limit` due rows for `LEASE`, and what sending them needs."""
    query = (
        core_select(*CLAIMED_FIELDS)
        .where(
            TABLE.c.state == DeliveryState.pending,
            TABLE.c.next_attempt_at <= now,
            or_(TABLE.c.claimed_until.is_(None), TABLE.c.claimed_until < now),
        )
        .order_by(TABLE.c.next_attempt_at)
        .limit(limit)
    )
    # Most ticks find nothing due: a read says so without taking SQLite's write lock
    # (every second, it would queue behind and ahead of the requests that write).
    with session_scope(engine) as session:
        if session.execute(query.with_only_columns(TABLE.c.id).limit(1)).first() is None:
            return []
    if engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    with session_scope(engine, write=True) as session:
        rows = session.execute(query).all()
        if not rows:
            return []
        claim = {"claimed_until": now + LEASE, "claimed_by": claimer}
        ids = [row.id for row in rows]
        session.execute(update(TABLE).where(TABLE.c.id.in_(ids)).values(**claim))
        claimed = _outgoing(session, settings, rows)
        session.commit()
    return claimed


def _outgoing(session: Session, settings: Settings, rows: Sequence[Row[Any]]) -> list[Outgoing]:
    channel_ids = {row.channel_id for row in rows if row.channel_id}
    user_ids = {row.user_id for row in rows if row.user_id}
    channels = {
        c.id: c
        for c in session.exec(
            select(NotificationChannel).where(col(NotificationChannel.id).in_(channel_ids))
        )
    }
    emails = dict(session.exec(select(User.id, User.email).where(col(User.id).in_(user_ids))).all())
    keyring = keys.load_keyring(settings) if channels else None
    targets = {key: _target(channel, keyring) for key, channel in channels.items()}
    claimed = []
    for row in rows:
        if row.channel_id is not None:
            target: Webhook | Email = targets[row.channel_id]
        else:
            address = emails.get(row.user_id) if row.user_id else None
            target = Email(recipients=(address,) if address else ())
        claimed.append(Outgoing(row.id, row.idempotency_key, row.body, target))
    return claimed


def _target(channel: NotificationChannel, keyring: keys.Keyring | None) -> Webhook | Email:
    if channel.kind is ChannelKind.email:
        return Email(recipients=tuple(channel.recipients))
    secret = None
    if channel.hmac_secret_sealed is not None and keyring is not None:
        secret = keyring.open(channel.hmac_secret_sealed, context=hmac_context(channel.id))
    return Webhook(
        url=channel.url or "",
        body_format=channel.body_format,
        sign_with_node_key=channel.sign_with_node_key,
        hmac_secret=secret,
    )


def record(engine: Engine, settings: Settings, outcomes: list[Outcome]) -> None:
    """Write how each attempt ended, in one transaction (one statement for all)."""
    if not outcomes:
        return
    by_id = {outcome.id: outcome for outcome in outcomes}
    with session_scope(engine, write=True) as session:
        rows = session.execute(core_select(*OUTCOME_FIELDS).where(TABLE.c.id.in_(by_id))).all()
        found = (_after(settings, row, by_id[row.id]) for row in rows)
        changes = [change for change in found if change is not None]
        if changes:
            statement = (
                update(TABLE)
                .where(TABLE.c.id == bindparam("row_id"))
                .values(
                    state=bindparam("new_state"),
                    attempts=bindparam("new_attempts"),
                    attempt_log=bindparam("new_log"),
                    last_error=bindparam("new_error"),
                    next_attempt_at=bindparam("new_next"),
                    delivered_at=bindparam("new_delivered"),
                    claimed_until=None,
                    claimed_by=None,
                )
            )
            session.execute(statement, changes)
        session.commit()


def _after(settings: Settings, row: Row[Any], outcome: Outcome) -> dict[str, Any] | None:
    """The row's new values after an attempt (None: delivered meanwhile by another
    claimer, whose lease this one's had run out)."""
    if row.state is not DeliveryState.pending:
        return None
    attempts = row.attempts + 1
    entry = {"at": outcome.at.isoformat(), "error": outcome.error}
    change = {
        "row_id": row.id,
        "new_state": DeliveryState.pending,
        "new_attempts": attempts,
        "new_log": [*row.attempt_log, entry][-ATTEMPT_LOG:],
        "new_error": row.last_error,
        "new_next": row.next_attempt_at,
        "new_delivered": row.delivered_at,
    }
    if outcome.error is None:
        return {**change, "new_state": DeliveryState.delivered, "new_delivered": outcome.at}
    change["new_error"] = outcome.error[:MAX_ERROR]
    if attempts >= settings.notify_max_attempts:
        return {**change, "new_state": DeliveryState.failed}
    return {**change, "new_next": outcome.at + backoff(settings, attempts)}


class Deliverer:
    """Sends claimed notifications: webhooks from a thread pool, emails on one connection."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.settings, self.clock = settings, clock
        self.key = NodeKey(keys.load_identity(settings))
        self.client = httpx.Client(
            transport=transport,
            timeout=settings.notify_timeout_seconds,
            follow_redirects=False,
            trust_env=False,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def send_all(self, claimed: list[Outgoing], *, deadline: float) -> list[Outcome]:
        """Send each (none started after `deadline`, a monotonic time: left for later)."""
        hooks = [(item, item.target) for item in claimed if isinstance(item.target, Webhook)]
        mails = [(item, item.target) for item in claimed if isinstance(item.target, Email)]
        with ThreadPoolExecutor(max_workers=SENDERS) as pool:
            pending = [
                pool.submit(_guarded, partial(self._hook, item, hook), item, deadline, self.clock)
                for item, hook in hooks
            ]
            outcomes = self._mail(mails, deadline)
            outcomes += [outcome for f in pending if (outcome := f.result()) is not None]
        return outcomes

    def _hook(self, item: Outgoing, target: Webhook) -> None:
        send_webhook(self.client, self.settings, self.key, item, target)

    def _mail(self, mails: list[tuple[Outgoing, Email]], deadline: float) -> list[Outcome]:
        if not mails:
            return []
        mailer = Mailer(self.settings)
        try:
            found = [
                _guarded(partial(_send_mail, mailer, item, target), item, deadline, self.clock)
                for item, target in mails
            ]
        finally:
            mailer.close()
        return [outcome for outcome in found if outcome is not None]


def _guarded(
    send: Callable[[], None], item: Outgoing, deadline: float, clock: Callable[[], datetime]
) -> Outcome | None:
    """Send, unless `deadline` passed; the outcome, failures included."""
    if time.monotonic() > deadline:
        return None  # its lease could run out while it is sent: the next claim sends it
    try:
        send()
    except DeliveryFailed as exc:
        return Outcome(item.id, str(exc) or repr(exc), clock())
    return Outcome(item.id, None, clock())


def _send_mail(mailer: Mailer, item: Outgoing, target: Email) -> None:
    if not target.recipients:
        raise DeliveryFailed("the person has no email address any more")
    mailer.send(item, target)


def release(engine: Engine, ids: list[uuid.UUID], claimer: str) -> None:
    """Give back claimed rows that were not attempted."""
    if not ids:
        return
    with session_scope(engine, write=True) as session:
        session.execute(
            update(TABLE)
            .where(TABLE.c.id.in_(ids), TABLE.c.claimed_by == claimer)
            .values(claimed_until=None, claimed_by=None)
        )
        session.commit()


def deliver_due(
    settings: Settings,
    engine: Engine,
    *,
    now: Callable[[], datetime] = utcnow,
    budget_seconds: float = BUDGET_SECONDS,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Drain what is due, batch after batch, for at most `budget_seconds`; how many were
    attempted. The periodic job calls this every second."""
    claimer, started, attempted = claimer_name(), time.monotonic(), 0
    deliverer: Deliverer | None = None
    try:
        while time.monotonic() - started < budget_seconds:
            claimed = claim_due(engine, settings, claimer=claimer, now=now())
            if not claimed:
                break
            deliverer = deliverer or Deliverer(settings, transport=transport, clock=now)
            deadline = time.monotonic() + _send_window(settings)
            outcomes = deliverer.send_all(claimed, deadline=deadline)
            record(engine, settings, outcomes)
            done = {outcome.id for outcome in outcomes}
            release(engine, [item.id for item in claimed if item.id not in done], claimer)
            attempted += len(outcomes)
    finally:
        if deliverer is not None:
            deliverer.close()
    return attempted


def _send_window(settings: Settings) -> float:
    """How long after its claim a send may still start, so that it ends within the lease."""
    return max(1.0, LEASE.total_seconds() - 2 * settings.notify_timeout_seconds - 5)
