"""Replay protection shared by every process: one unique row per (key id, nonce).

The insert and the uniqueness check are one statement (``ON CONFLICT DO NOTHING``), in
its own short transaction, so two workers can never both accept a replayed request.
Expired rows are pruned now and then by whoever inserts, and by the periodic job; each
row is kept at least ``RATE_WINDOW`` after it arrived, so that ``recent_requests`` can
count a peer's requests of the last minute (its rate limit) from the same rows.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from sqlalchemy import Delete, Engine, delete, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, func, select

from infracms.db import write_engine
from infracms.models.base import utcnow
from infracms.models.federation import PeerKey, PeerNonce

PRUNE_EVERY_SECONDS = 60.0
RATE_WINDOW = timedelta(minutes=1)


class DatabaseNonceStore:
    """A ``federation.nonces.NonceStore`` in the node's database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = write_engine(engine)
        self._pruned_at = 0.0

    def check_and_remember(self, *, key_id: str, nonce: str, expires_at: datetime) -> bool:
        """Atomically record (key id, nonce) until ``expires_at``; False if already recorded."""
        dialect = sqlite if self._engine.dialect.name == "sqlite" else postgresql
        statement = (
            dialect.insert(PeerNonce)
            .values(key_id=key_id, nonce=nonce, expires_at=expires_at, seen_at=utcnow())
            .on_conflict_do_nothing(index_elements=["key_id", "nonce"])
            .returning(col(PeerNonce.nonce))  # rowcount is -1 here on psycopg: ask for the row
        )
        with self._engine.begin() as connection:
            inserted = connection.execute(statement).first() is not None
            if time.monotonic() - self._pruned_at > PRUNE_EVERY_SECONDS:
                self._pruned_at = time.monotonic()
                connection.execute(_expired())
        return inserted

    def prune(self) -> int:
        """Forget the nonces whose signatures can no longer be accepted anyway."""
        with self._engine.begin() as connection:
            return connection.execute(_expired()).rowcount


def recent_requests(session: Session, *, peer_id: object, now: datetime) -> int:
    """How many signed requests the peer (any of its keys) made in the last minute."""
    keys = select(PeerKey.key_id).where(PeerKey.peer_id == peer_id)
    return int(
        session.exec(
            select(func.count())
            .select_from(PeerNonce)
            .where(col(PeerNonce.key_id).in_(keys), col(PeerNonce.seen_at) >= now - RATE_WINDOW)
        ).one()
    )


def _expired() -> Delete:
    now = utcnow()
    return delete(PeerNonce).where(
        col(PeerNonce.expires_at) < now,
        or_(col(PeerNonce.seen_at).is_(None), col(PeerNonce.seen_at) < now - RATE_WINDOW),
    )
