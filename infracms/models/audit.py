"""Audit log rows: the entries (the log's leaves), their numbering, and the Merkle tree store.

- ``audit_entry``: one row per entry, appended in the change's transaction; its leaf
  data is made from these columns (``infracms.audit.store.leaf_data``), so changing a
  column changes the leaf;
- ``audit_head``: one row, the next free entry index; locking it serialises appends;
- ``audit_tree``: one row, how many entries are hashed into the tree and its root;
  locking it serialises integration;
- ``audit_hash``: the hash of every complete subtree, keyed by ``level << 56 | number``
  (``infracms.audit.store.node_key``), so one level is one range of keys;
- ``audit_checkpoint``: every signed checkpoint (C2SP signed-note), by tree size;
- ``audit_check``: one row, the outcome of the node's last self check of its stored
  rows against its checkpoints (``infracms.audit.selfcheck``); while it failed, no
  checkpoint is signed and the health endpoint reports degraded.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, Text
from sqlmodel import Field, SQLModel

from infracms.models.base import UTCDateTime

BIG_KEY = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit key; on SQLite ``INTEGER PRIMARY KEY`` (the rowid, 64-bit there too)."""


class AuditHead(SQLModel, table=True):
    """One row: the next free entry index. Locking it serialises appends."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    size: int = Field(default=0, sa_type=BigInteger)


class AuditEntry(SQLModel, table=True):
    """One leaf of the log: who did what to what, when. Never updated, never deleted."""

    __tablename__ = "audit_entry"

    index: int = Field(primary_key=True, sa_type=BIG_KEY)
    time: datetime = Field(sa_type=UTCDateTime)
    actor_kind: str = Field(max_length=16)
    actor_id: str | None = Field(default=None, max_length=64)
    actor_name: str = Field(max_length=200, index=True)
    organisation_id: uuid.UUID | None = Field(default=None, index=True)
    action: str = Field(max_length=100, index=True)
    subject: str = Field(max_length=300, index=True)
    payload: str
    request_id: str | None = Field(default=None, max_length=64)


class AuditTree(SQLModel, table=True):
    """One row: how many entries are hashed into the Merkle tree, and the tree's root."""

    __tablename__ = "audit_tree"

    id: int = Field(default=1, primary_key=True)
    size: int = Field(default=0, sa_type=BigInteger)
    root: bytes = Field(sa_type=LargeBinary)


class AuditHash(SQLModel, table=True):
    """The hash of one complete subtree of the log (level 0: a leaf hash). Never rewritten."""

    __tablename__ = "audit_hash"

    id: int = Field(sa_column=Column(BIG_KEY, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_type=LargeBinary)


class AuditCheckpoint(SQLModel, table=True):
    """A signed checkpoint of the tree at ``size``: the C2SP signed note, as served."""

    __tablename__ = "audit_checkpoint"

    size: int = Field(sa_column=Column(BIG_KEY, primary_key=True, autoincrement=False))
    root: bytes = Field(sa_type=LargeBinary)
    note: str = Field(sa_type=Text)
    signed_at: datetime = Field(sa_type=UTCDateTime)


class AuditCheck(SQLModel, table=True):
    """One row: the last self check of the stored log; ``first_bad`` names where it failed."""

    __tablename__ = "audit_check"

    id: int = Field(default=1, primary_key=True)
    checked_at: datetime = Field(sa_type=UTCDateTime)
    size: int = Field(sa_type=BigInteger)
    ok: bool
    first_bad: int | None = Field(default=None, sa_type=BigInteger)
    detail: str = Field(sa_type=Text)


class AuditEntryPublic(SQLModel):
    """An entry as the API and the pages show it; ``payload`` parsed from its JSON."""

    index: int
    time: datetime
    actor_kind: str
    actor_id: str | None
    actor_name: str
    organisation_id: uuid.UUID | None
    organisation: str | None = Field(default=None, description="organisation name, if it exists")
    action: str
    subject: str
    payload: dict[str, Any]
    request_id: str | None


class InclusionProofPublic(SQLModel):
    """RFC 9162 inclusion proof of one entry in the tree of ``size`` (base64 hashes)."""

    index: int
    size: int
    leaf_hash: str
    root: str
    proof: list[str]


class ConsistencyProofPublic(SQLModel):
    """RFC 9162 consistency proof from the tree of ``old_size`` to ``new_size``."""

    old_size: int
    new_size: int
    old_root: str
    new_root: str
    proof: list[str]


class CheckpointPublic(SQLModel):
    """A stored checkpoint with what the node found checking it against its key and tree."""

    size: int
    root: str
    signed_at: datetime
    note: str
    signature_ok: bool
    root_matches_log: bool
    problem: str | None = None


class AuditEntryDetail(SQLModel):
    """One entry with its leaf hash and, once integrated, its proof against a checkpoint.

    ``leaf_hash`` is computed from the row now; ``stored_leaf_hash`` is what the tree
    holds. They differ only if the row was changed after it was integrated.
    """

    entry: AuditEntryPublic
    leaf_hash: str
    integrated: bool
    stored_leaf_hash: str | None = None
    intact: bool | None = None
    checkpoint: CheckpointPublic | None = None
    inclusion: InclusionProofPublic | None = None
    proof_verifies: bool | None = None
