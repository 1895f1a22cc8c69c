"""The log's store in the database: integration into the Merkle tree, checkpoints, proofs.

Entries are appended by ``services.audit.record`` in each change's transaction. Here
they are *integrated* after commit: read in index order, each row's columns made into
its leaf data (:func:`leaf_data`, RFC 8785 through ``entry.entry_bytes``), hashed
(RFC 9162), and every complete subtree the new leaves finish is stored once in
``audit_hash`` (``merkle.integrate``); then a C2SP checkpoint of the new size is
signed and stored. A proof reads at most ``2 * log2(size)`` stored hashes in one
query: nothing is rehashed.

Several processes may integrate at once. Leaves are hashed outside any lock; the
writing transaction then locks the ``audit_tree`` row (``SELECT … FOR UPDATE`` on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) and gives up if another integrator moved
the tree on meanwhile, so every hash is written once and sizes only grow.

Committed entries always form a prefix of the indexes (an index is taken under the
``audit_head`` lock, held until commit), so integration stops at the first missing
index and calls it what it is: a row deleted from under the log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import Engine, Select, Table, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from infracms.audit import checkpoint as checkpoints
from infracms.audit import merkle
from infracms.audit.entry import Actor, EntryFields, entry_bytes
from infracms.audit.errors import AuditVerificationError
from infracms.audit.merkle import Hash, HashReader, LeafHash, NodeId, RootHash
from infracms.audit.note import Signer
from infracms.db import session_scope
from infracms.models.audit import AuditCheck, AuditCheckpoint, AuditEntry, AuditHash, AuditTree
from infracms.models.base import utcnow

NODE_SHIFT = 56
"""A stored hash's key is ``level << 56 | number``: one level is one range of keys."""
BATCH = 5_000
"""Entries integrated per writing transaction (about 0.4 s of hashing)."""

ENTRIES: Table = AuditEntry.__table__  # type: ignore[attr-defined]
HASHES: Table = AuditHash.__table__  # type: ignore[attr-defined]
TREE: Table = AuditTree.__table__  # type: ignore[attr-defined]
CHECKPOINTS: Table = AuditCheckpoint.__table__  # type: ignore[attr-defined]
CHECK: Table = AuditCheck.__table__  # type: ignore[attr-defined]


class StoreError(AuditVerificationError):
    """The database does not hold what the log needs: a missing entry, hash or bad row."""


class SelfCheckFailed(StoreError):
    """The stored rows do not match the signed checkpoints from entry ``index`` on."""

    def __init__(self, message: str, *, index: int | None) -> None:
        super().__init__(message)
        self.index = index


class EntryRow(Protocol):
    """The columns of an ``audit_entry`` row: an ``AuditEntry`` or an :class:`EntryRecord`."""

    @property
    def index(self) -> int: ...
    @property
    def time(self) -> datetime: ...
    @property
    def actor_kind(self) -> str: ...
    @property
    def actor_id(self) -> str | None: ...
    @property
    def actor_name(self) -> str: ...
    @property
    def organisation_id(self) -> UUID | None: ...
    @property
    def action(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def payload(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """An ``audit_entry`` row read with Core (a ``Row`` cannot name a column ``index``)."""

    index: int
    time: datetime
    actor_kind: str
    actor_id: str | None
    actor_name: str
    organisation_id: UUID | None
    action: str
    subject: str
    payload: str
    request_id: str | None


ENTRY_COLUMNS = tuple(ENTRIES.c[field.name] for field in fields(EntryRecord))
"""The columns of :class:`EntryRecord`, in its order."""


def select_entries(*where: ColumnElement[bool]) -> Select[Any]:
    """A select of entry rows in index order, to read with :func:`entry_records`."""
    return select(*ENTRY_COLUMNS).where(*where).order_by(ENTRIES.c.index)


def entry_records(rows: Iterable[Sequence[Any]]) -> Iterator[EntryRecord]:
    """Rows of :func:`select_entries` as records."""
    return (EntryRecord(*row) for row in rows)


@dataclass(frozen=True)
class TreeState:
    """How many entries the tree holds, and its root."""

    size: int
    root: RootHash


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint as stored: its size, root, signed note and signing time."""

    size: int
    root: RootHash
    note: str
    signed_at: datetime


@dataclass(frozen=True)
class Integrated:
    """What one call of :func:`integrate` did."""

    entries: int
    size: int
    root: RootHash
    checkpoints: int


def node_key(node: NodeId) -> int:
    """The ``audit_hash`` key of a complete subtree."""
    if not 0 <= node.level < 64 or not 0 <= node.number < 1 << NODE_SHIFT:
        raise ValueError(f"node {node} is outside the store's key space")
    return node.level << NODE_SHIFT | node.number


def leaf_data(row: EntryRow) -> bytes:
    """The leaf data of an entry row: ``entry.entry_bytes`` of its columns."""
    try:
        payload = json.loads(row.payload)
        if not isinstance(payload, dict):
            raise ValueError(f"payload is a JSON {type(payload).__name__}, expected an object")
        return entry_bytes(
            EntryFields(
                index=row.index,
                time=row.time,
                actor=Actor(kind=row.actor_kind, id=row.actor_id, name=row.actor_name),  # type: ignore[arg-type]
                organisation=row.organisation_id,
                action=row.action,
                subject=row.subject,
                payload=payload,
                request_id=row.request_id,
            )
        )
    except (ValueError, TypeError) as exc:
        raise StoreError(f"entry {row.index} cannot be made into leaf data: {exc}") from exc


def tree_state(session: Session, *, lock: bool = False) -> TreeState:
    """The integrated size and root; ``lock`` holds the row until the transaction ends."""
    query = select(TREE.c.size, TREE.c.root).where(TREE.c.id == 1)
    size, root = session.execute(query.with_for_update() if lock else query).one()
    return TreeState(int(size), RootHash(Hash(bytes(root))))


def hash_reader(session: Session) -> HashReader:
    """A :class:`merkle.HashReader` over ``audit_hash``: one query a call."""

    def read(nodes: Sequence[NodeId], /) -> Sequence[Hash]:
        keys = [node_key(node) for node in nodes]
        query = select(HASHES.c.id, HASHES.c.hash).where(HASHES.c.id.in_(set(keys)))
        found: dict[int, bytes] = {key: value for key, value in session.execute(query)}
        missing = [node for node, key in zip(nodes, keys, strict=True) if key not in found]
        if missing:
            raise StoreError(f"the stored hash of subtree {missing[0]} is missing")
        return [Hash(bytes(found[key])) for key in keys]

    return read


def pending_rows(session: Session, start: int, limit: int) -> list[EntryRecord]:
    """Up to ``limit`` entry rows from index ``start``, contiguous, in index order."""
    query = select_entries(ENTRIES.c.index >= start).limit(limit)
    rows = list(entry_records(session.execute(query)))
    for offset, row in enumerate(rows):
        if row.index != start + offset:
            if offset == 0:
                raise StoreError(
                    f"entry {start} is missing, but entry {row.index} exists: "
                    "a committed entry was deleted before it was integrated"
                )
            return rows[:offset]
    return rows


def integrate(engine: Engine, signer: Signer, *, batch: int = BATCH) -> Integrated:
    """Integrate every committed entry not yet in the tree, signing a checkpoint per batch."""
    entries = signed = 0
    while True:
        with session_scope(engine) as session:
            start = tree_state(session)
            rows = pending_rows(session, start.size, batch)
        if not rows:
            return Integrated(entries, start.size, start.root, signed)
        leaves = [merkle.hash_leaf(leaf_data(row)) for row in rows]
        if _append_leaves(engine, signer, start.size, leaves):
            entries += len(leaves)
            signed += 1


def refuse_if_self_check_failed(session: Session) -> None:
    """Sign nothing over rows the node's last self check found not to match."""
    row = session.execute(select(CHECK).where(CHECK.c.id == 1)).first()
    if row is not None and not row.ok:
        raise SelfCheckFailed(
            f"no checkpoint is signed: the self check of {row.checked_at:%Y-%m-%d %H:%M:%S} "
            f"found the stored log does not match its checkpoints: {row.detail} (repair or "
            "restore the database, then run `infracms audit check`)",
            index=row.first_bad,
        )


def _append_leaves(engine: Engine, signer: Signer, start: int, leaves: list[LeafHash]) -> bool:
    """Store the subtrees ``leaves`` complete and sign the new size; False if raced."""
    with session_scope(engine, write=True) as session:
        if tree_state(session, lock=True).size != start:
            return False  # another integrator went first; read again from its size
        refuse_if_self_check_failed(session)
        result = merkle.integrate(start, hash_reader(session), leaves)
        session.execute(
            insert(HASHES), [{"id": node_key(node), "hash": value} for node, value in result.stored]
        )
        session.execute(
            update(TREE).where(TREE.c.id == 1).values(size=result.size, root=result.root)
        )
        _store_checkpoint(session, signer, result.size, result.root)
        session.commit()
    return True


def _store_checkpoint(session: Session, signer: Signer, size: int, root: RootHash) -> str:
    """Sign a C2SP checkpoint of the tree at ``size`` and store it."""
    note = checkpoints.sign_checkpoint(checkpoints.Checkpoint(signer.name, size, root), signer)
    session.execute(insert(CHECKPOINTS).values(size=size, root=root, note=note, signed_at=utcnow()))
    return note


def sign_current(engine: Engine, signer: Signer) -> StoredCheckpoint:
    """Integrate, then make sure a checkpoint of the whole tree exists (even of size 0)."""
    integrate(engine, signer)
    with session_scope(engine, write=True) as session:
        state = tree_state(session, lock=True)
        refuse_if_self_check_failed(session)
        if checkpoint_at(session, state.size) is None:
            _store_checkpoint(session, signer, state.size, state.root)
            session.commit()
        stored = checkpoint_at(session, state.size)
    if stored is None:  # stored just above, in this transaction or a concurrent one
        raise RuntimeError(f"no checkpoint of size {state.size} after storing it")
    return stored


def _stored(row: Any) -> StoredCheckpoint:
    return StoredCheckpoint(int(row.size), RootHash(Hash(bytes(row.root))), row.note, row.signed_at)


def checkpoint_at(session: Session, size: int) -> StoredCheckpoint | None:
    """The checkpoint signed at ``size``, if there is one."""
    row = session.execute(select(CHECKPOINTS).where(CHECKPOINTS.c.size == size)).first()
    return None if row is None else _stored(row)


def latest_checkpoint(session: Session) -> StoredCheckpoint | None:
    """The checkpoint of the largest size, if any was signed."""
    query = select(CHECKPOINTS).order_by(CHECKPOINTS.c.size.desc()).limit(1)
    row = session.execute(query).first()
    return None if row is None else _stored(row)


def list_checkpoints(session: Session, *, limit: int, offset: int) -> list[StoredCheckpoint]:
    """Checkpoints, newest (largest) first."""
    query = select(CHECKPOINTS).order_by(CHECKPOINTS.c.size.desc()).limit(limit).offset(offset)
    return [_stored(row) for row in session.execute(query)]


def count_checkpoints(session: Session) -> int:
    """How many checkpoints are stored."""
    return int(session.execute(select(func.count()).select_from(CHECKPOINTS)).scalar_one())


def stored_leaf_hash(session: Session, index: int) -> LeafHash | None:
    """The leaf hash the tree holds for entry ``index``, if it is integrated."""
    query = select(HASHES.c.hash).where(HASHES.c.id == node_key(NodeId(0, index)))
    value = session.execute(query).scalar_one_or_none()
    return None if value is None else LeafHash(Hash(bytes(value)))


def _check_size(session: Session, size: int) -> None:
    """Refuse a tree size the store cannot answer for."""
    have = tree_state(session).size
    if not 0 <= size <= have:
        raise ValueError(f"tree size must be in [0, {have}] (the integrated size), got {size}")


def root_at(session: Session, size: int) -> RootHash:
    """RFC 9162: the root of the tree of ``size`` (at most the integrated size)."""
    _check_size(session, size)
    return merkle.tree_root(size, hash_reader(session))


def inclusion_proof(session: Session, index: int, size: int) -> list[Hash]:
    """RFC 9162 section 2.1.3.1: entry ``index``'s inclusion proof in the tree of ``size``."""
    _check_size(session, size)
    return merkle.inclusion_proof(index, size, hash_reader(session))


def consistency_proof(session: Session, old_size: int, new_size: int) -> list[Hash]:
    """RFC 9162 section 2.1.4.1: the proof that tree ``old_size`` is a prefix of ``new_size``."""
    _check_size(session, new_size)
    return merkle.consistency_proof(old_size, new_size, hash_reader(session))
