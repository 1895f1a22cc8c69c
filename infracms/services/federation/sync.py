"""Fetching peers' catalogs: incremental (If-None-Match), verified, last good copy kept.

A peer that is down, slow, refuses, or serves a catalog that does not verify (a bad
signature, another node's, an older version) leaves its last good copy in place; the
error and its time are recorded on the peer's catalog row. A new version is audited,
and so is a peer going from healthy to failing (not every failed retry after it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from federation.catalogs import SignedCatalog
from federation.documents import open_envelope, read_signature
from federation.encoding import CONTEXT_CATALOG, signing_input
from federation.errors import FederationError
from federation.models.base import load
from federation.models.catalog import Catalog
from infracms.models.federation import Peer, PeerCatalog, PeerStatus
from infracms.services import audit
from infracms.services.authz import Action, authorize
from infracms.services.context import Actor, system_actor
from infracms.services.federation.node import FederationContext
from infracms.services.federation.peers import keys_of, peer_by_name


@dataclass(frozen=True)
class SyncResult:
    """How one peer's sync went."""

    peer: str
    changed: bool
    version: int | None
    error: str | None


def sync_catalogs(
    *, session: Session, actor: Actor, ctx: FederationContext, peer: str | None = None
) -> list[SyncResult]:
    """Sync every active peer's catalog (or one peer's), keeping last good copies."""
    authorize(actor, Action.peer_manage, None)
    query = select(Peer).where(Peer.status == PeerStatus.active).order_by(col(Peer.name))
    if peer is not None:
        query = query.where(Peer.id == peer_by_name(session, peer).id)
    return [_sync_one(session, actor, ctx, row) for row in session.exec(query).all()]


def held_catalog(row: PeerCatalog | None) -> SignedCatalog | None:
    """The last good copy as the peer client compares against (verified when stored)."""
    if row is None or row.body is None:
        return None
    envelope = open_envelope(row.body, ("catalog", "signature"), "stored catalog")
    payload: dict[str, Any] = envelope["catalog"]
    signature = read_signature(envelope["signature"], "stored catalog")
    catalog = load(Catalog, payload, "stored catalog")
    return SignedCatalog(catalog, payload, signature, signing_input(CONTEXT_CATALOG, payload))


def _sync_one(session: Session, actor: Actor, ctx: FederationContext, peer: Peer) -> SyncResult:
    row = session.get(PeerCatalog, peer.id) or PeerCatalog(peer_id=peer.id)
    held = held_catalog(row)
    name, base_url, peer_keys = peer.name, peer.base_url, keys_of(session, peer)
    session.rollback()  # hold no lock while the peer answers
    try:
        with ctx.client(name, base_url, peer_keys) as client:
            fetched = client.fetch_catalog(held=held)
    except FederationError as exc:
        return _failed(session, actor, ctx, peer, f"{type(exc).__name__}: {exc}")
    row = session.get(PeerCatalog, peer.id) or PeerCatalog(peer_id=peer.id)
    now = ctx.clock()
    row.checked_at, row.error, row.error_at = now, None, None
    new = fetched.catalog
    if fetched.changed and new is not None:
        row.body, row.etag, row.version, row.fetched_at = (
            new.body.decode(),
            new.etag,
            new.catalog.version,
            now,
        )
        audit.record(
            session,
            actor=actor,
            action="catalog.sync",
            subject=f"peer:{peer.name}",
            payload={
                "peer": peer.name,
                "version": new.catalog.version,
                "etag": new.etag,
                "offerings": len(new.catalog.offerings),
            },
        )
    session.add(row)
    session.commit()
    return SyncResult(peer.name, fetched.changed, row.version, None)


def _failed(
    session: Session, actor: Actor, ctx: FederationContext, peer: Peer, error: str
) -> SyncResult:
    row = session.get(PeerCatalog, peer.id) or PeerCatalog(peer_id=peer.id)
    if row.error is None:
        audit.record(
            session,
            actor=actor,
            action="catalog.sync_failed",
            subject=f"peer:{peer.name}",
            payload={"peer": peer.name, "error": error[:500], "kept_version": row.version},
        )
    now = ctx.clock()
    row.checked_at, row.error, row.error_at = now, error[:2000], now
    session.add(row)
    session.commit()
    return SyncResult(peer.name, False, row.version, error)


def sync_all(session: Session, ctx: FederationContext) -> list[SyncResult]:
    """The periodic job: sync every active peer as the node itself."""
    return sync_catalogs(session=session, actor=system_actor("catalog-sync"), ctx=ctx)
