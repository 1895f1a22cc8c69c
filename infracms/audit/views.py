"""What the API and the pages show of the log: entries, checkpoints and proofs, checked.

Each checkpoint is opened with the node's verifier key and its root compared with the
tree the store holds; each entry's leaf hash is computed from its row now and compared
with the one the tree holds, and its inclusion proof checked against the checkpoint.
A problem is reported in the shape (``signature_ok``, ``intact``, ``proof_verifies``),
not raised: these are for people looking for exactly such problems.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy.orm import Session

from infracms.audit import merkle, store
from infracms.audit.checkpoint import open_checkpoint
from infracms.audit.errors import AuditVerificationError
from infracms.audit.note import Verifier
from infracms.models.audit import (
    AuditEntryDetail,
    AuditEntryPublic,
    CheckpointPublic,
    InclusionProofPublic,
)


def b64(value: bytes) -> str:
    """Standard base64, as hashes appear in checkpoints."""
    return base64.b64encode(value).decode()


def entry_public(row: store.EntryRow, organisation: str | None) -> AuditEntryPublic:
    """An entry row as shown; a payload that is not a JSON object is shown under ``raw``."""
    try:
        payload: Any = json.loads(row.payload)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        payload = {"raw": row.payload}
    return AuditEntryPublic(
        index=row.index,
        time=row.time,
        actor_kind=row.actor_kind,
        actor_id=row.actor_id,
        actor_name=row.actor_name,
        organisation_id=row.organisation_id,
        organisation=organisation,
        action=row.action,
        subject=row.subject,
        payload=payload,
        request_id=row.request_id,
    )


def checkpoint_public(
    session: Session, stored: store.StoredCheckpoint, verifier: Verifier, tree_size: int
) -> CheckpointPublic:
    """A stored checkpoint, its signature checked and its root compared with the tree."""
    problem, signature_ok = None, False
    try:
        body = open_checkpoint(stored.note, verifier)
        signature_ok = True
        if (body.size, body.root) != (stored.size, stored.root):
            problem = f"the signed note is of size {body.size}, stored as size {stored.size}"
            signature_ok = False
    except AuditVerificationError as exc:
        problem = f"signature: {exc}"
    root_ok = False
    if stored.size <= tree_size:
        try:
            root_ok = store.root_at(session, stored.size) == stored.root
        except store.StoreError as exc:
            problem = problem or str(exc)
    if not root_ok and problem is None:
        problem = f"the tree of size {stored.size} has another root than the signed one"
    return CheckpointPublic(
        size=stored.size,
        root=b64(stored.root),
        signed_at=stored.signed_at,
        note=stored.note,
        signature_ok=signature_ok,
        root_matches_log=root_ok,
        problem=problem,
    )


def entry_detail(
    session: Session, row: store.EntryRow, organisation: str | None, verifier: Verifier
) -> AuditEntryDetail:
    """An entry with its leaf hash, integration state, and proof against the latest checkpoint."""
    try:
        leaf = merkle.hash_leaf(store.leaf_data(row))
    except store.StoreError:
        leaf = None
    tree = store.tree_state(session)
    stored = store.stored_leaf_hash(session, row.index)
    latest = store.latest_checkpoint(session)
    detail = AuditEntryDetail(
        entry=entry_public(row, organisation),
        leaf_hash="" if leaf is None else b64(leaf),
        integrated=row.index < tree.size,
        stored_leaf_hash=None if stored is None else b64(stored),
        intact=None if stored is None else leaf == stored,
    )
    if latest is None or row.index >= latest.size:
        return detail
    detail.checkpoint = checkpoint_public(session, latest, verifier, tree.size)
    proof = store.inclusion_proof(session, row.index, latest.size)
    detail.inclusion = InclusionProofPublic(
        index=row.index,
        size=latest.size,
        leaf_hash=b64(stored or b""),
        root=b64(latest.root),
        proof=[b64(value) for value in proof],
    )
    detail.proof_verifies = leaf is not None and _verifies(leaf, row.index, latest, proof)
    return detail


def _verifies(
    leaf: merkle.LeafHash, index: int, checkpoint: store.StoredCheckpoint, proof: list[merkle.Hash]
) -> bool:
    """Whether the entry's current leaf hash is proven in the signed root."""
    try:
        merkle.verify_inclusion(leaf, index, checkpoint.size, proof, checkpoint.root)
    except AuditVerificationError:
        return False
    return True
