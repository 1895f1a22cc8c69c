"""Replay protection shared by every process: one unique row per (key id, nonce).

The insert and the uniqueness check are one statement (``ON CONFLICT DO NOTHING``), in
its own short transaction, so two workers can never both accept a replayed request.
Expired rows are pruned now and then by whoever inserts, and by the periodic job.
"""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import Delete, Engine, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from infracms.db import write_engine
from infracms.models.base import utcnow
from infracms.models.federation import PeerNonce

PRUNE_EVERY_SECONDS = 60.0


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
            .values(key_id=key_id, nonce=nonce, expires_at=expires_at)
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


def _expired() -> Delete:
    return delete(PeerNonce).where(col(PeerNonce.expires_at) < utcnow())
