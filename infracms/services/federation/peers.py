"""Pinned peers: the ``KeyResolver`` over the peer table, look-ups, and their public shape."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session, col, select

from federation.keys import TrustedKey, decode_public_key
from infracms.errors import NotFound
from infracms.models.federation import Peer, PeerKey, PeerStatus


class PeerKeyPublic(BaseModel):
    """A pinned key and its validity window."""

    key_id: str
    public_key: str
    not_before: datetime | None
    not_after: datetime | None


class PeerPublic(BaseModel):
    """A peer as the API, the pages and the CLI show it."""

    id: uuid.UUID
    name: str
    base_url: str
    status: PeerStatus
    invited_by_us: bool
    created_at: datetime
    changed_at: datetime | None
    keys: list[PeerKeyPublic]


class PeerKeys:
    """Resolves key ids to the keys pinned for active peers (``federation.keys.KeyResolver``).

    Suspended and revoked peers resolve to None, so their requests fail with UnknownKey.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def resolve(self, key_id: str) -> TrustedKey | None:
        """The pinned key with this id, if its peer is active."""
        row = self._session.exec(
            select(PeerKey, Peer.name)
            .join(Peer, col(Peer.id) == col(PeerKey.peer_id))
            .where(PeerKey.key_id == key_id, Peer.status == PeerStatus.active)
        ).first()
        return None if row is None else trusted(row[0], row[1])


def trusted(key: PeerKey, owner: str) -> TrustedKey:
    """A pinned key row as the federation library checks signatures with it."""
    return TrustedKey(
        owner=owner,
        public_key=decode_public_key(key.public_key),
        not_before=key.not_before,
        not_after=key.not_after,
    )


def keys_of(session: Session, *, peer: Peer) -> list[TrustedKey]:
    """Every key pinned for a peer."""
    rows = session.exec(select(PeerKey).where(PeerKey.peer_id == peer.id)).all()
    return [trusted(row, peer.name) for row in rows]


def peer_by_name(session: Session, *, name: str) -> Peer:
    """The peer called `name`, or NotFound."""
    peer = session.exec(select(Peer).where(Peer.name == name)).first()
    if peer is None:
        raise NotFound(f"no peer called {name!r}")
    return peer


def active_peer(session: Session, *, name: str) -> Peer:
    """The active peer called `name`, or NotFound."""
    peer = peer_by_name(session, name=name)
    if peer.status is not PeerStatus.active:
        raise NotFound(f"peer {name!r} is {peer.status}")
    return peer


def describe(session: Session, *, peer: Peer) -> PeerPublic:
    """A peer with its keys."""
    rows = session.exec(
        select(PeerKey).where(PeerKey.peer_id == peer.id).order_by(col(PeerKey.created_at))
    ).all()
    keys = [PeerKeyPublic.model_validate(row, from_attributes=True) for row in rows]
    return PeerPublic(**peer.model_dump(), keys=keys)
