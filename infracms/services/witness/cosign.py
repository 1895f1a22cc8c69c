"""This node as a C2SP tlog-witness of its peers' logs (PROTOCOL.md section 7).

A peer submits its latest checkpoint with a consistency proof from the size this node
last cosigned for it. The request is signed by the peer (RFC 9421, checked by the
caller, who passes the verified signer); the checkpoint must be signed with a key
pinned for that peer, whose name is the log's origin. ``decision.judge`` says whether
to cosign; a cosignature is answered only once the new size is committed, so the
witness never signs a checkpoint it would not hold the peer to.

Cosigning appends no audit entry: it changes nothing but the witness's own record of
a signed statement, and an entry per cosignature would make two witnessing nodes grow
each other's logs forever. A refusal that is evidence against the log (a fork, a
rollback, a failing proof) is recorded: a ``witness_conflict`` row holding both signed
notes, and an audit entry ``witness.refuse`` carrying them too, in one transaction.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from federation.errors import MalformedMessage
from federation.limits import MAX_CONFLICTS_PER_LOG
from federation.witness import SIZE_MEDIA_TYPE
from federation.witness_api import AddCheckpointRequest, format_cosignatures, format_size_conflict
from infracms.audit.checkpoint import Checkpoint, parse_checkpoint
from infracms.audit.errors import AuditVerificationError
from infracms.audit.merkle import Hash, RootHash
from infracms.audit.note import open_note
from infracms.models.witness import WitnessConflict, WitnessedLog
from infracms.services import audit
from infracms.services.context import Actor
from infracms.services.federation.node import FederationContext
from infracms.services.witness.decision import Held, Refusal, Submission, judge
from infracms.services.witness.peers import WitnessedPeer, active_peer, cosigner

log = logging.getLogger(__name__)
TEXT_TYPE = "text/plain; charset=utf-8"
JSON_TYPE = "application/json"


@dataclass(frozen=True)
class WitnessAnswer:
    """What to answer an add-checkpoint request with: status, body and its media type."""

    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Submitter:
    """Who signed the add-checkpoint request: the peer's name and the signing key id."""

    peer: str
    key_id: str


def add_checkpoint(
    *,
    session: Session,
    ctx: FederationContext,
    submitter: Submitter,
    body: bytes,
) -> WitnessAnswer:
    """Answer a peer's add-checkpoint request: cosign it, or refuse (recording evidence)."""
    now = ctx.clock()
    try:
        request = AddCheckpointRequest.parse(body)
        origin = parse_checkpoint(request.checkpoint_text).origin
    except (MalformedMessage, AuditVerificationError) as exc:
        return _error(400, "MalformedMessage", f"add-checkpoint body: {exc}")
    peer = active_peer(session, name=origin)
    if peer is None:
        return _error(404, "UnknownLog", f"this node witnesses no log {origin!r}: not a peer")
    if submitter.peer != peer.name:
        return _error(
            403,
            "NotTheLog",
            f"checkpoints of {origin} are submitted by {peer.name}, "
            f"this request is signed by {submitter.peer}",
        )
    try:
        checkpoint = _open(request.checkpoint, peer, now)
    except AuditVerificationError as exc:
        return _error(403, "LogSignatureInvalid", f"checkpoint of {origin}: {exc}")
    proof = tuple(Hash(value) for value in request.proof)
    submission = Submission(request.old_size, proof, checkpoint, request.checkpoint)
    row = _held_row(session, origin)
    refusal = judge(_held(row), submission)
    if refusal is None:
        return _cosign(session, ctx, row, submission)
    if refusal.evidence is not None and row is not None and _room_for_evidence(session, origin):
        _record_conflict(session, submitter, row, submission, refusal)
        session.commit()
    return _refusal_answer(refusal)


def _room_for_evidence(session: Session, origin: str) -> bool:
    """Whether another conflict of `origin` is kept: a peer signing fork after fork (each
    up to 16 KiB, twice: the row and its audit entry) would otherwise grow this node's
    append-only log without bound; the first ones already prove the fork."""
    kept = session.exec(
        select(func.count()).select_from(WitnessConflict).where(WitnessConflict.origin == origin)
    ).one()
    if kept < MAX_CONFLICTS_PER_LOG:
        return True
    log.warning("witness: %s signed another refused checkpoint; %d kept, not stored", origin, kept)
    return False


def _open(signed: str, peer: WitnessedPeer, now: datetime) -> Checkpoint:
    """The checkpoint, once a signature by a key pinned for the peer verifies."""
    verifiers = peer.log_verifiers(now)
    if not verifiers:
        raise AuditVerificationError(f"no key of {peer.name} is valid now")
    checkpoint = parse_checkpoint(open_note(signed, verifiers).text)
    if checkpoint.origin != peer.name:
        raise AuditVerificationError(f"origin is {checkpoint.origin!r}, expected {peer.name!r}")
    return checkpoint


def _held_row(session: Session, origin: str) -> WitnessedLog | None:
    """The log's row, locked until the transaction ends (SQLite: the write lock is held)."""
    query = select(WitnessedLog).where(WitnessedLog.origin == origin).with_for_update()
    return session.exec(query.execution_options(populate_existing=True)).first()


def _held(row: WitnessedLog | None) -> Held | None:
    if row is None:
        return None
    return Held(row.size, RootHash(Hash(bytes(row.root))), row.checkpoint)


def _cosign(
    session: Session, ctx: FederationContext, row: WitnessedLog | None, submission: Submission
) -> WitnessAnswer:
    """Record the new size, commit, then answer with this node's cosignature."""
    checkpoint = submission.checkpoint
    if row is None or row.size != checkpoint.size:  # else: the same checkpoint again
        values: dict[str, Any] = {
            "size": checkpoint.size,
            "root": checkpoint.root,
            "checkpoint": submission.signed,
            "cosigned_at": ctx.clock(),
        }
        if row is None:
            row = WitnessedLog(origin=checkpoint.origin, **values)
        else:
            row.sqlmodel_update(values)
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # another request cosigned this log's first checkpoint
            session.rollback()
            current = _held_row(session, checkpoint.origin)
            size = current.size if current is not None else 0
            return _refusal_answer(Refusal(409, "raced", size))
    text = submission.signed[: submission.signed.rfind("\n\n") + 1]
    cosignature = cosigner(ctx.name, ctx.key).cosign(text, int(ctx.clock().timestamp()))
    return WitnessAnswer(200, format_cosignatures([cosignature]), TEXT_TYPE)


def _record_conflict(
    session: Session,
    submitter: Submitter,
    row: WitnessedLog,
    submission: Submission,
    refusal: Refusal,
) -> None:
    """The evidence row and its audit entry, in the caller's transaction."""
    if refusal.evidence is None:
        raise RuntimeError("a refusal recorded without its evidence")
    new = submission.checkpoint
    conflict = WitnessConflict(
        origin=new.origin,
        kind=refusal.evidence,
        status=refusal.status,
        detail=refusal.detail,
        held_size=row.size,
        held_root=bytes(row.root),
        held_checkpoint=row.checkpoint,
        old_size=submission.old_size,
        submitted_size=new.size,
        submitted_root=new.root,
        submitted_checkpoint=submission.signed,
        proof="".join(base64.b64encode(h).decode() + "\n" for h in submission.proof),
        submitted_by=submitter.key_id,
    )
    session.add(conflict)
    audit.record(
        session,
        actor=Actor(kind="peer", id=submitter.key_id, name=submitter.peer),
        action="witness.refuse",
        subject=f"log:{new.origin}",
        payload={
            "conflict": str(conflict.id),
            "kind": refusal.evidence.value,
            "status": refusal.status,
            "detail": refusal.detail,
            "held_checkpoint": row.checkpoint,
            "submitted_checkpoint": submission.signed,
            "old_size": submission.old_size,
        },
    )


def _refusal_answer(refusal: Refusal) -> WitnessAnswer:
    """409 with the latest size (``text/x.tlog.size``), or an error body."""
    if refusal.status == 409 and refusal.latest_size is not None:
        return WitnessAnswer(409, format_size_conflict(refusal.latest_size), SIZE_MEDIA_TYPE)
    names = {400: "MalformedMessage", 409: "Conflict", 422: "InconsistentCheckpoint"}
    return _error(refusal.status, names.get(refusal.status, "Refused"), refusal.detail)


def _error(status: int, name: str, description: str) -> WitnessAnswer:
    """An error answer in the protocol's shape (PROTOCOL.md section 8)."""
    body = json.dumps({"error": name, "description": description}, sort_keys=True)
    return WitnessAnswer(status, body.encode(), JSON_TYPE)
