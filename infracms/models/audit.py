"""Audit log rows: entries (the leaves of the Merkle log) and the head that numbers them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from infracms.models.base import UTCDateTime


class AuditHead(SQLModel, table=True):
    """One row: the next free entry index. Locking it serialises appends."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    size: int = 0


class AuditEntry(SQLModel, table=True):
    """One leaf of the log: who did what to what, when. Never updated, never deleted."""

    __tablename__ = "audit_entry"

    index: int = Field(primary_key=True)
    time: datetime = Field(sa_type=UTCDateTime)
    actor_kind: str = Field(max_length=16)
    actor_id: str | None = Field(default=None, max_length=64)
    actor_name: str = Field(max_length=200)
    organisation_id: uuid.UUID | None = Field(default=None, index=True)
    action: str = Field(max_length=100, index=True)
    subject: str = Field(max_length=300, index=True)
    payload: str
    request_id: str | None = Field(default=None, max_length=64)
