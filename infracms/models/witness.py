"""Witnessing rows: what this node cosigned for its peers' logs, and what its peers cosigned.

- ``witnessed_log``: this node as a C2SP tlog-witness, one row per peer log it follows:
  the latest checkpoint it cosigned (size, root, and the signed note as received);
- ``witness_conflict``: a checkpoint this node refused because it contradicts the one
  it had cosigned (a fork, a rollback, a failing consistency proof): both signed notes,
  the proof, and what was answered. Evidence: never updated, never deleted;
- ``audit_cosignature``: the C2SP tlog-cosignature lines peers returned for this node's
  own checkpoints, beside ``audit_checkpoint`` (whose note carries them too).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, Enum, ForeignKey, LargeBinary, Text
from sqlmodel import Field, SQLModel

from infracms.models.audit import BIG_KEY
from infracms.models.base import UTCDateTime, created_field, id_field


class WitnessedLog(SQLModel, table=True):
    """The latest checkpoint this node cosigned for one peer's log (its origin)."""

    __tablename__ = "witnessed_log"

    origin: str = Field(primary_key=True, max_length=255)
    size: int = Field(sa_type=BigInteger)
    root: bytes = Field(sa_type=LargeBinary)
    checkpoint: str = Field(sa_type=Text, description="the log-signed note, as received")
    cosigned_at: datetime = Field(sa_type=UTCDateTime)


class ConflictKind(enum.StrEnum):
    """How a refused checkpoint contradicts the one this witness cosigned."""

    fork = "fork"  # same size, another root: two signed trees of one size
    rollback = "rollback"  # smaller than the cosigned size, sent as the log's latest
    inconsistent = "inconsistent"  # the consistency proof from the cosigned size fails


class WitnessConflict(SQLModel, table=True):
    """A refused checkpoint and the cosigned one it contradicts, both as signed notes."""

    __tablename__ = "witness_conflict"

    id: uuid.UUID = id_field()
    origin: str = Field(max_length=255, index=True)
    kind: ConflictKind = Field(sa_type=Enum(ConflictKind, native_enum=False, length=16))
    status: int = Field(description="the HTTP status the witness answered")
    detail: str = Field(sa_type=Text)
    held_size: int = Field(sa_type=BigInteger)
    held_root: bytes = Field(sa_type=LargeBinary)
    held_checkpoint: str = Field(sa_type=Text)
    old_size: int = Field(sa_type=BigInteger, description="the request's `old` size")
    submitted_size: int = Field(sa_type=BigInteger)
    submitted_root: bytes = Field(sa_type=LargeBinary)
    submitted_checkpoint: str = Field(sa_type=Text)
    proof: str = Field(sa_type=Text, description="the consistency proof, base64 lines")
    submitted_by: str = Field(max_length=64, description="key id of the request signature")
    received_at: datetime = created_field()


class AuditCosignature(SQLModel, table=True):
    """A peer's cosignature of one of this node's checkpoints (a C2SP signature line)."""

    __tablename__ = "audit_cosignature"

    checkpoint_size: int = Field(
        sa_column=Column(
            BIG_KEY,
            ForeignKey("audit_checkpoint.size", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        )
    )
    witness: str = Field(primary_key=True, max_length=255, description="the witness key name")
    key_id: int = Field(primary_key=True, sa_type=BigInteger)
    timestamp: int = Field(sa_type=BigInteger)
    line: str = Field(sa_type=Text, description="the signature line, with its newline")
    peer: str = Field(max_length=255, index=True)
    received_at: datetime = created_field()


class WitnessedLogPublic(SQLModel):
    """A peer log this node witnesses: the checkpoint it last cosigned."""

    origin: str
    size: int
    root: str
    cosigned_at: datetime
    checkpoint: str


class WitnessConflictPublic(SQLModel):
    """A refused checkpoint, with the cosigned one it contradicts (hashes in base64)."""

    id: uuid.UUID
    origin: str
    kind: ConflictKind
    status: int
    detail: str
    held_size: int
    held_root: str
    held_checkpoint: str
    old_size: int
    submitted_size: int
    submitted_root: str
    submitted_checkpoint: str
    proof: list[str]
    submitted_by: str
    received_at: datetime
