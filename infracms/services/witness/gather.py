"""Gathering cosignatures for this node's checkpoints from its peers (PROTOCOL.md section 7).

For each active peer: the latest checkpoint is submitted with the consistency proof
from the size that peer last cosigned (as this node recorded it; 0 at first). A 409
answer names the size the witness really holds: the request is made once more from
that size, unless it is beyond this log's size, which means this log lost entries it
had already shown its peers. Returned cosignatures are checked against the peer's
witness key, stored in ``audit_cosignature`` and appended to the checkpoint's note,
so ``/api/v1/audit/checkpoint`` and exports serve the cosigned checkpoint.

Storing a cosignature appends no audit entry (see ``cosign``): an entry would make a
new checkpoint, which would need cosigning again, forever.

Peers are asked in parallel, each in a thread of its own with its own sessions; the
HTTP exchanges happen outside any database transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Protocol

from sqlalchemy import Engine, Table, func, select, update
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Session

from federation.errors import FederationError, WitnessRefused
from federation.witness import Cosignature
from federation.witness_api import AddCheckpointRequest
from infracms.audit import store
from infracms.audit.errors import AuditVerificationError
from infracms.audit.note import MAX_SIGNATURES, Note, Signature, format_note, parse_note
from infracms.config import Settings
from infracms.db import session_scope
from infracms.models.base import utcnow
from infracms.models.witness import AuditCosignature
from infracms.services import audit
from infracms.services.federation.node import FederationContext
from infracms.services.witness.peers import WitnessedPeer, active_peers

log = logging.getLogger(__name__)

COSIGNATURES: Table = AuditCosignature.__table__  # type: ignore[attr-defined]

PARALLEL = 8
Status = Literal["cosigned", "current", "refused", "failed"]


@dataclass(frozen=True)
class WitnessOutcome:
    """What one peer did with the latest checkpoint."""

    peer: str
    size: int
    status: Status
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Whether the peer's cosignature of the checkpoint is stored."""
        return self.status in ("cosigned", "current")


def gather_cosignatures(*, engine: Engine, ctx: FederationContext) -> list[WitnessOutcome]:
    """Sign a checkpoint of the whole log if needed, and ask every active peer to cosign it."""
    with session_scope(engine) as session:
        peers = active_peers(session)
    if not peers:
        return []
    latest = audit.sign_checkpoint(engine=engine, settings=ctx.settings)
    with ThreadPoolExecutor(min(PARALLEL, len(peers)), "witness") as pool:
        jobs = [pool.submit(_witness_one, engine, ctx, peer, latest) for peer in peers]
        return [job.result() for job in jobs]


def _witness_one(
    engine: Engine, ctx: FederationContext, peer: WitnessedPeer, latest: store.StoredCheckpoint
) -> WitnessOutcome:
    """Submit ``latest`` to one peer (once more on a 409), store what it cosigned."""
    with session_scope(engine) as session:
        if already_cosigned(session, peer=peer.name, size=latest.size):
            return WitnessOutcome(peer.name, latest.size, "current", "already cosigned")
        old = last_cosigned_size(session, peer=peer.name, at_most=latest.size)
    try:
        cosignatures = _submit(engine, ctx, peer, latest, old)
    except WitnessRefused as exc:
        log.warning("witness %s refused checkpoint %d: %s", peer.name, latest.size, exc)
        return WitnessOutcome(peer.name, latest.size, "refused", str(exc))
    except FederationError as exc:
        log.warning("witness %s could not cosign checkpoint %d: %s", peer.name, latest.size, exc)
        return WitnessOutcome(peer.name, latest.size, "failed", f"{type(exc).__name__}: {exc}")
    try:
        store_cosignatures(engine, peer.name, latest.size, cosignatures)
    except (NoResultFound, AuditVerificationError) as exc:  # the stored checkpoint is gone or bad
        log.error("checkpoint %d: cosignature of %s not kept: %s", latest.size, peer.name, exc)
        return WitnessOutcome(peer.name, latest.size, "failed", f"not kept: {exc}")
    return WitnessOutcome(peer.name, latest.size, "cosigned")


def _submit(
    engine: Engine,
    ctx: FederationContext,
    peer: WitnessedPeer,
    latest: store.StoredCheckpoint,
    old: int,
) -> tuple[Cosignature, ...]:
    """The peer's cosignatures of ``latest``; a 409 is retried once from the size it names."""
    try:
        return _send(engine, ctx, peer, latest, old)
    except WitnessRefused as exc:
        held = exc.latest_size
        if exc.status_code != 409 or held is None or held == old:
            raise
        if held > latest.size:
            raise WitnessRefused(
                f"{peer.name} has cosigned size {held} of this log, which holds only "
                f"{latest.size} entries: this log lost entries its peers have seen "
                "(was it restored from a backup?)",
                status_code=409,
                latest_size=held,
            ) from exc
        return _send(engine, ctx, peer, latest, held)


def _send(
    engine: Engine,
    ctx: FederationContext,
    peer: WitnessedPeer,
    latest: store.StoredCheckpoint,
    old: int,
) -> tuple[Cosignature, ...]:
    """One add-checkpoint request: ``latest`` with the proof from ``old``."""
    with session_scope(engine) as session:
        proof = store.consistency_proof(session, old, latest.size)
    request = AddCheckpointRequest(old, tuple(proof), log_signed_note(latest.note))
    with ctx.client(peer.name, peer.base_url, list(peer.keys)) as client:
        witness = peer.witness_verifier(ctx.clock())
        return client.submit_checkpoint(request, witness=witness)


def log_signed_note(note: str) -> str:
    """A stored checkpoint as the log signed it: without the cosignature lines added since."""
    parsed = parse_note(note)
    origin = parsed.text.split("\n", 1)[0]
    own = tuple(sig for sig in parsed.signatures if sig.name == origin)
    return format_note(Note(parsed.text, own or parsed.signatures))


def last_cosigned_size(session: Session, *, peer: str, at_most: int) -> int:
    """The largest checkpoint size ``peer`` cosigned, as recorded here (0 if none)."""
    query = select(func.max(COSIGNATURES.c.checkpoint_size)).where(
        COSIGNATURES.c.peer == peer, COSIGNATURES.c.checkpoint_size <= at_most
    )
    return int(session.execute(query).scalar_one() or 0)


def store_cosignatures(
    engine: Engine, peer: str, size: int, cosignatures: Sequence[Cosignature]
) -> None:
    """Keep a peer's cosignatures of checkpoint ``size``, and add their lines to its note.

    The checkpoint row is locked first, so two stores for one checkpoint take turns.
    """
    with session_scope(engine, write=True) as session:
        query = select(store.CHECKPOINTS.c.note).where(store.CHECKPOINTS.c.size == size)
        note = parse_note(session.execute(query.with_for_update()).scalar_one())
        for cosignature in cosignatures:
            _keep(session, peer, size, cosignature)
        lines = [note_signature(cosignature) for cosignature in cosignatures]
        replaced = {(line.name, line.key_id) for line in lines}
        kept = [sig for sig in note.signatures if (sig.name, sig.key_id) not in replaced]
        if len(kept) + len(lines) <= MAX_SIGNATURES:
            signed = format_note(Note(note.text, (*kept, *lines)))
            where = store.CHECKPOINTS.c.size == size
            session.execute(update(store.CHECKPOINTS).where(where).values(note=signed))
        else:
            log.warning("checkpoint %d has %d signatures: no room for more", size, len(kept))
        session.commit()


def note_signature(cosignature: Cosignature) -> Signature:
    """A cosignature as a signed-note signature line: key id, then timestamp and signature."""
    raw = cosignature.timestamp.to_bytes(8, "big") + cosignature.signature
    return Signature(name=cosignature.name, key_id=cosignature.key_id, signature=raw)


def _keep(session: Session, peer: str, size: int, cosignature: Cosignature) -> None:
    """One ``audit_cosignature`` row, replacing an older one by the same witness key."""
    key = (size, cosignature.name, cosignature.key_id)
    old = session.get(AuditCosignature, key)
    if old is not None:
        session.delete(old)
        session.flush()
    row = AuditCosignature(
        checkpoint_size=size,
        witness=cosignature.name,
        key_id=cosignature.key_id,
        timestamp=cosignature.timestamp,
        line=cosignature.line,
        peer=peer,
        received_at=utcnow(),
    )
    session.add(row)


def already_cosigned(session: Session, *, peer: str, size: int) -> bool:
    """Whether a cosignature by ``peer`` of checkpoint ``size`` is stored."""
    query = select(func.count()).where(
        COSIGNATURES.c.checkpoint_size == size, COSIGNATURES.c.peer == peer
    )
    return bool(session.execute(query).scalar_one())


class HasEngineAndSettings(Protocol):
    """What a periodic job gets (``orchestration.jobs.JobContext``)."""

    @property
    def engine(self) -> Engine: ...
    @property
    def settings(self) -> Settings: ...


def beat_job(context: HasEngineAndSettings) -> None:
    """The periodic job of ``infracms beat``: gather cosignatures, log what failed."""
    ctx = FederationContext.load(context.settings)
    for outcome in gather_cosignatures(engine=context.engine, ctx=ctx):
        if not outcome.ok:
            log.warning("witness %s: %s %s", outcome.peer, outcome.status, outcome.detail)
