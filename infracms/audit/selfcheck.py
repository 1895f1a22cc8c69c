"""The node's self check: its stored rows against the checkpoints it signed.

Every entry row below the tree's size is made into its leaf data again
(``store.leaf_data``) and hashed (RFC 9162 section 2.1.1); each must equal the leaf
hash the tree stored for it. The recomputed leaves are folded into a
``merkle.CompactRange``, whose root at each stored checkpoint's size must be the root
that checkpoint signs (its note verified with the node key) and, at the tree's size,
the tree row's root. The first index or checkpoint where they differ is named.

The outcome is recorded in ``audit_check``; while the last one failed,
``store.refuse_if_self_check_failed`` keeps the node from signing a checkpoint.
One pass reads the log in chunks of ``CHUNK`` rows, in one read transaction.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from infracms.audit.checkpoint import open_checkpoint
from infracms.audit.errors import AuditVerificationError
from infracms.audit.merkle import CompactRange, LeafHash, RootHash, hash_leaf
from infracms.audit.note import Verifier
from infracms.audit.store import (
    CHECK,
    CHECKPOINTS,
    ENTRIES,
    HASHES,
    EntryRecord,
    SelfCheckFailed,
    StoreError,
    entry_records,
    leaf_data,
    select_entries,
    tree_state,
)
from infracms.models.base import utcnow

CHUNK = 5_000


@dataclass(frozen=True)
class CheckOutcome:
    """What a self check found: how many entries and checkpoints, and the first bad index."""

    size: int
    checkpoints: int
    ok: bool
    first_bad: int | None = None
    detail: str = ""


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def check_store(session: Session, verifier: Verifier) -> CheckOutcome:
    """Check the stored log in ``session``'s snapshot; the outcome, never an exception."""
    state = tree_state(session)
    signed = list(session.execute(select(CHECKPOINTS).order_by(CHECKPOINTS.c.size)))
    try:
        _check(session, verifier, state.size, state.root, signed)
    except SelfCheckFailed as exc:
        return CheckOutcome(state.size, len(signed), False, exc.index, str(exc))
    return CheckOutcome(state.size, len(signed), True)


def _check(
    session: Session, verifier: Verifier, size: int, root: RootHash, signed: Sequence[Any]
) -> None:
    """Raise ``SelfCheckFailed`` at the first row or checkpoint that does not match."""
    compact, due, agreed = CompactRange(), list(reversed(signed)), 0
    for leaf in _leaves(session, size):
        agreed = _check_due(due, compact, verifier, agreed)
        compact.append(leaf)
    agreed = _check_due(due, compact, verifier, agreed)
    if due:
        raise SelfCheckFailed(
            f"a checkpoint of size {due[-1].size} is stored, but the tree holds {size} "
            "entries: the tree was set back",
            index=size,
        )
    if compact.root() != root:
        raise SelfCheckFailed(
            f"the entries give root {_b64(compact.root())} at the tree's size {size}, but the "
            f"tree row holds {_b64(root)}",
            index=agreed,
        )


def _check_due(due: list[Any], compact: CompactRange, verifier: Verifier, agreed: int) -> int:
    """Check the checkpoints (``due``, last = smallest) of the compact range's size."""
    while due and due[-1].size == compact.size:
        agreed = _check_checkpoint(due.pop(), compact.root(), verifier, agreed)
    return agreed


def _check_checkpoint(row: Any, got: RootHash, verifier: Verifier, agreed: int) -> int:
    """One stored checkpoint against the recomputed root of its size; its size if it fits."""
    try:
        body = open_checkpoint(row.note, verifier)
    except AuditVerificationError as exc:
        raise SelfCheckFailed(
            f"the checkpoint of size {row.size} does not verify with the node key: {exc}",
            index=agreed,
        ) from exc
    if (body.size, body.root) != (row.size, bytes(row.root)):
        raise SelfCheckFailed(
            f"the checkpoint row of size {row.size} holds another size or root than its note "
            f"signs (size {body.size}, root {body.root_b64})",
            index=agreed,
        )
    if got != body.root:
        raise SelfCheckFailed(
            f"the stored entries give root {_b64(got)} at size {row.size}, but the checkpoint "
            f"signs {body.root_b64}: an entry in [{agreed}, {row.size}) was changed together "
            "with its stored leaf hash",
            index=agreed,
        )
    return int(row.size)


def _leaves(session: Session, size: int) -> Iterator[LeafHash]:
    """Each leaf hash below ``size``, recomputed from its row and checked against the stored one."""
    for start in range(0, size, CHUNK):
        end = min(start + CHUNK, size)
        rows = _rows(session, start, end)
        stored = _stored_leaves(session, start, end)
        for index in range(start, end):
            yield _leaf(index, rows.get(index), stored.get(index))


def _rows(session: Session, start: int, end: int) -> dict[int, EntryRecord]:
    query = select_entries(ENTRIES.c.index >= start, ENTRIES.c.index < end)
    return {row.index: row for row in entry_records(session.execute(query))}


def _stored_leaves(session: Session, start: int, end: int) -> dict[int, bytes]:
    """The stored level-0 hashes of ``[start, end)`` (their keys are the indexes)."""
    query = select(HASHES.c.id, HASHES.c.hash).where(HASHES.c.id >= start, HASHES.c.id < end)
    return {int(key): bytes(value) for key, value in session.execute(query)}


def _leaf(index: int, row: EntryRecord | None, stored: bytes | None) -> LeafHash:
    """Entry ``index``'s leaf hash, recomputed; raise where it is not the stored one."""
    if row is None:
        raise SelfCheckFailed(f"entry {index} is missing: its row was deleted", index=index)
    try:
        leaf = hash_leaf(leaf_data(row))
    except StoreError as exc:
        raise SelfCheckFailed(f"entry {index} is malformed: {exc}", index=index) from exc
    if stored is None:
        raise SelfCheckFailed(f"the stored leaf hash of entry {index} is missing", index=index)
    if leaf != stored:
        raise SelfCheckFailed(
            f"entry {index} does not match: its row hashes to {_b64(leaf)}, but the tree "
            f"stored and signed {_b64(stored)}",
            index=index,
        )
    return leaf


def record(session: Session, outcome: CheckOutcome) -> None:
    """Store ``outcome`` as the last self check (one row)."""
    values = {
        "checked_at": utcnow(),
        "size": outcome.size,
        "ok": outcome.ok,
        "first_bad": outcome.first_bad,
        "detail": outcome.detail,
    }
    if session.execute(select(CHECK.c.id).where(CHECK.c.id == 1)).first() is None:
        session.execute(CHECK.insert().values(id=1, **values))
    else:
        session.execute(CHECK.update().where(CHECK.c.id == 1).values(**values))


def last_outcome(session: Session) -> CheckOutcome | None:
    """The last self check recorded, if any."""
    row = session.execute(select(CHECK).where(CHECK.c.id == 1)).first()
    if row is None:
        return None
    return CheckOutcome(int(row.size), 0, bool(row.ok), row.first_bad, row.detail)
