"""The peers a node witnesses and asks for cosignatures, and the names of their keys.

Witnessing needs from the peers table only each active peer's name (which is also
its log's origin and log key name), its base URL, and the keys pinned for it.

Names (PROTOCOL.md section 7): a node's log key is its node key named by the node
name (C2SP signed-note, type 0x01); its witness key is the same key named
``<node name>/witness`` (C2SP tlog-cosignature v1, type 0x04).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from federation.keys import NodeKey, StaticKeyResolver, TrustedKey
from federation.witness import CosignatureVerifier, Cosigner
from infracms.audit.note import Verifier
from infracms.models.federation import Peer, PeerStatus
from infracms.services.federation.peers import keys_of

WITNESS_SUFFIX = "/witness"
EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class WitnessedPeer:
    """An active peer: its name (= its log's origin), base URL and pinned keys."""

    name: str
    base_url: str
    keys: tuple[TrustedKey, ...]

    def resolver(self) -> StaticKeyResolver:
        """The peer's pinned keys, for checking its signed answers."""
        return StaticKeyResolver(self.keys)

    def keys_valid_at(self, moment: datetime) -> list[TrustedKey]:
        """The pinned keys that may sign at ``moment`` (both, during a rotation's overlap)."""
        return [key for key in self.keys if _valid(key, moment)]

    def log_verifiers(self, moment: datetime) -> list[Verifier]:
        """The keys its checkpoints may be signed with: C2SP note keys named by the peer."""
        return [Verifier(self.name, key.public_key) for key in self.keys_valid_at(moment)]

    def witness_verifier(self, moment: datetime) -> CosignatureVerifier:
        """Its witness key: the newest pinned key valid now, named ``<name>/witness``."""
        valid = self.keys_valid_at(moment) or list(self.keys)
        newest = max(valid, key=lambda key: key.not_before or EARLIEST)
        return CosignatureVerifier(witness_name(self.name), newest.public_key)


def _valid(key: TrustedKey, moment: datetime) -> bool:
    return (key.not_before is None or key.not_before <= moment) and (
        key.not_after is None or moment <= key.not_after
    )


def active_peers(session: Session) -> list[WitnessedPeer]:
    """Every active peer (neither suspended nor revoked) with its URL and pinned keys."""
    query = select(Peer).where(Peer.status == PeerStatus.active).order_by(col(Peer.name))
    return [_witnessed(session, peer) for peer in session.exec(query).all()]


def active_peer(session: Session, *, name: str) -> WitnessedPeer | None:
    """The active peer called ``name``, if there is one."""
    query = select(Peer).where(Peer.name == name, Peer.status == PeerStatus.active)
    peer = session.exec(query).first()
    return None if peer is None else _witnessed(session, peer)


def _witnessed(session: Session, peer: Peer) -> WitnessedPeer:
    return WitnessedPeer(peer.name, peer.base_url, tuple(keys_of(session, peer=peer)))


def witness_name(node_name: str) -> str:
    """The key name a node cosigns with: ``<node name>/witness``."""
    return node_name + WITNESS_SUFFIX


def cosigner(node_name: str, key: NodeKey) -> Cosigner:
    """A node as a witness: its node key named ``<node name>/witness``."""
    return Cosigner(witness_name(node_name), key)
