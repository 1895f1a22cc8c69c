"""Peers' cosignatures of this node's checkpoints, and the witness policy, as shown.

Each stored cosignature (``audit_cosignature``, kept by ``gather``) is checked again
here, as the audit pages check each checkpoint's own signature: against the witness
keys pinned for the peer that returned it (``<peer>/witness``, any of its pinned keys,
so cosignatures made before a key rotation still verify), over the checkpoint's note
text. A problem is reported, not raised: these are for people looking for one.

The policy is what this node asks of its witnesses: the active peers (their witness
keys, which auditors give ``infracms audit verify --witness``) and how many of them
must cosign a checkpoint (``INFRACMS_MIN_WITNESSES``; None when it is not set).
Cosignatures, like checkpoints, are public: they travel in the checkpoints' notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlmodel import Session, col, select

from federation.errors import FederationError
from federation.keys import decode_public_key
from federation.witness import Cosignature, CosignatureVerifier
from federation.witness_api import split_note
from infracms.config import Settings
from infracms.models.base import utcnow
from infracms.models.federation import Peer, PeerKey
from infracms.models.witness import AuditCosignature
from infracms.services.witness.peers import active_peers, witness_name


class CosignaturePublic(BaseModel):
    """A peer's cosignature of a checkpoint, checked against the peer's witness keys."""

    peer: str
    witness: str
    key_id: str
    cosigned_at: datetime
    verified: bool
    problem: str | None = None


class WitnessPublic(BaseModel):
    """A peer whose cosignatures count: its name and its C2SP witness (verifier) key."""

    peer: str
    vkey: str


class WitnessPolicyPublic(BaseModel):
    """The witnesses asked to cosign, and how many cosignatures a checkpoint needs."""

    witnesses: list[WitnessPublic]
    minimum: int | None

    def met_by(self, cosignatures: Sequence[CosignaturePublic]) -> bool | None:
        """Whether enough verified cosignatures by distinct peers are there (None: no policy)."""
        if self.minimum is None:
            return None
        return len({c.peer for c in cosignatures if c.verified}) >= self.minimum


def witness_policy(*, session: Session, settings: Settings) -> WitnessPolicyPublic:
    """The active peers as witnesses, and the minimum the settings ask for."""
    witnesses = []
    for peer in active_peers(session):
        verifier = peer.witness_verifier(utcnow())
        witnesses.append(WitnessPublic(peer=peer.name, vkey=verifier.vkey))
    return WitnessPolicyPublic(witnesses=witnesses, minimum=settings.min_witnesses)


def cosignatures_of(
    *, session: Session, checkpoints: Sequence[tuple[int, str]]
) -> dict[int, list[CosignaturePublic]]:
    """The cosignatures stored for each checkpoint (size, signed note), each checked."""
    texts = {size: _text(note) for size, note in checkpoints}
    rows = session.exec(
        select(AuditCosignature)
        .where(col(AuditCosignature.checkpoint_size).in_(list(texts)))
        .order_by(col(AuditCosignature.peer), col(AuditCosignature.witness))
    ).all()
    verifiers = _verifiers(session, {row.peer for row in rows})
    found: dict[int, list[CosignaturePublic]] = {size: [] for size in texts}
    for row in rows:
        text = texts[row.checkpoint_size]
        found[row.checkpoint_size].append(_checked(row, text, verifiers.get(row.peer, [])))
    return found


def _text(note: str) -> str | None:
    """A signed note's text, which cosignatures sign (None if the note does not parse)."""
    try:
        return split_note(note)[0]
    except FederationError:
        return None


def _verifiers(session: Session, peers: set[str]) -> dict[str, list[CosignatureVerifier]]:
    """Every witness key pinned for each of these peers, by peer name."""
    rows = session.exec(
        select(Peer.name, PeerKey.public_key)
        .join(PeerKey, col(PeerKey.peer_id) == col(Peer.id))
        .where(col(Peer.name).in_(sorted(peers)))
    ).all()
    found: dict[str, list[CosignatureVerifier]] = {}
    for name, public_key in rows:
        verifier = CosignatureVerifier(witness_name(name), decode_public_key(public_key))
        found.setdefault(name, []).append(verifier)
    return found


def _checked(
    row: AuditCosignature, text: str | None, verifiers: list[CosignatureVerifier]
) -> CosignaturePublic:
    """A stored cosignature as shown, verified over the checkpoint's ``text``."""
    problem = _problem(row, text, verifiers)
    return CosignaturePublic(
        peer=row.peer,
        witness=row.witness,
        key_id=f"{row.key_id:08x}",
        cosigned_at=datetime.fromtimestamp(row.timestamp, UTC),
        verified=problem is None,
        problem=problem,
    )


def _problem(
    row: AuditCosignature, text: str | None, verifiers: list[CosignatureVerifier]
) -> str | None:
    """Why a stored cosignature does not verify, or None when it does."""
    if text is None:
        return "the checkpoint's note does not parse"
    try:
        cosignature = Cosignature.parse_line(row.line.rstrip("\n"))
        verifier = next((v for v in verifiers if v.matches(cosignature)), None)
        if verifier is None:
            return f"no key pinned for {row.peer} has the key id {cosignature.key_id:08x}"
        verifier.verify(text, cosignature)
    except FederationError as exc:
        return str(exc)
    return None
