"""Fetching peers' catalogs: incremental (If-None-Match), verified, last good copy kept.

A peer that is down, slow, refuses, or serves a catalog that does not verify (a bad
signature, another node's, an older version) leaves its last good copy in place; the
error, why it failed (``SyncFailure``) and its time are recorded on the peer's catalog
row. Every attempt records its outcome (updated, unchanged, failed) and a success its
time, so ``catalog_status`` can say for each peer what is held, since when it is known
to be current, and whether it is stale. A new version is audited, and so is a peer going
from healthy to failing (not every failed retry after it).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from federation import errors
from federation.catalogs import SignedCatalog
from federation.documents import open_envelope, read_signature
from federation.encoding import CONTEXT_CATALOG, signing_input
from federation.errors import FederationError
from federation.models.base import load
from federation.models.catalog import Catalog
from infracms.models.base import utcnow
from infracms.models.federation import Peer, PeerCatalog, PeerStatus, SyncFailure, SyncOutcome
from infracms.services import audit, notifications
from infracms.services.authz import Action, authorize
from infracms.services.context import Actor, system_actor
from infracms.services.federation.node import FederationContext
from infracms.services.federation.peers import keys_of, peer_by_name

log = logging.getLogger(__name__)
STALE_AFTER = timedelta(minutes=30)
"""A copy no sync has confirmed for this long is stale: six rounds of the 5-minute job."""


@dataclass(frozen=True)
class SyncResult:
    """How one peer's sync went."""

    peer: str
    changed: bool
    version: int | None
    error: str | None
    failure: SyncFailure | None = None

    @property
    def outcome(self) -> SyncOutcome:
        """Updated, unchanged or failed."""
        if self.error is not None:
            return SyncOutcome.failed
        return SyncOutcome.updated if self.changed else SyncOutcome.unchanged


# The most specific class first: the first one the error is an instance of names it.
FAILURES: tuple[tuple[type[FederationError], SyncFailure], ...] = (
    (errors.PeerTimeout, SyncFailure.timeout),
    (errors.PeerUnreachable, SyncFailure.unreachable),
    (errors.RedirectRefused, SyncFailure.redirected),
    (errors.URLRefused, SyncFailure.url_refused),
    (errors.PeerAnswerError, SyncFailure.refused),
    (errors.DigestMismatch, SyncFailure.tampered),
    (errors.SignatureInvalid, SyncFailure.bad_signature),
    (errors.MissingComponent, SyncFailure.bad_signature),
    (errors.UnknownKey, SyncFailure.unknown_key),
    (errors.KeyNotValid, SyncFailure.unknown_key),
    (errors.IdentityMismatch, SyncFailure.wrong_node),
    (errors.CatalogRollback, SyncFailure.rollback),
    (errors.TimeWindowError, SyncFailure.clock),
    (errors.NonceReused, SyncFailure.replayed),
    (errors.MalformedMessage, SyncFailure.malformed),
)


def failure_of(exc: Exception) -> SyncFailure:
    """Why a sync failed, from the error the peer client raised."""
    return next((kind for cls, kind in FAILURES if isinstance(exc, cls)), SyncFailure.error)


def sync_catalogs(
    *, session: Session, actor: Actor, ctx: FederationContext, peer: str | None = None
) -> list[SyncResult]:
    """Sync every active peer's catalog (or one peer's), keeping last good copies."""
    authorize(actor, Action.peer_manage, None)
    query = select(Peer).where(Peer.status == PeerStatus.active).order_by(col(Peer.name))
    if peer is not None:
        query = query.where(Peer.id == peer_by_name(session, name=peer).id)
    return [_sync_guarded(session, actor, ctx, row) for row in session.exec(query).all()]


def _sync_guarded(session: Session, actor: Actor, ctx: FederationContext, peer: Peer) -> SyncResult:
    """One peer's sync; whatever goes wrong is recorded as its failure, and the round goes on."""
    try:
        return _sync_one(session, actor, ctx, peer)
    except Exception as exc:  # a peer's catalog must never stop the other peers' syncs
        log.exception("catalog sync of %s failed unexpectedly", peer.name)
        session.rollback()
        return _failed(session, actor, ctx, peer, exc)


class CatalogStatus(BaseModel):
    """How a peer's catalog sync stands: the copy held, the last success, the last attempt."""

    peer: str
    peer_status: PeerStatus
    version: int | None = None
    offerings: int | None = None
    fetched_at: datetime | None = None
    synced_at: datetime | None = None
    checked_at: datetime | None = None
    outcome: SyncOutcome | None = None
    failure: SyncFailure | None = None
    error: str | None = None
    stale: bool = False
    stale_reason: str | None = None


def catalog_status(
    *, session: Session, actor: Actor, peer: str | None = None, now: datetime | None = None
) -> list[CatalogStatus]:
    """Each peer's catalog sync status (or one peer's), by peer name (node admins)."""
    authorize(actor, Action.peer_manage, None)
    query = (
        select(Peer, PeerCatalog)
        .join(PeerCatalog, col(PeerCatalog.peer_id) == col(Peer.id), isouter=True)
        .order_by(col(Peer.name))
    )
    if peer is not None:
        query = query.where(Peer.id == peer_by_name(session, name=peer).id)
    moment = now or utcnow()
    return [status_of(p, row, moment) for p, row in session.exec(query).all()]


def status_of(peer: Peer, row: PeerCatalog | None, now: datetime) -> CatalogStatus:
    """One peer's catalog sync status at ``now``."""
    if row is None:
        return CatalogStatus(peer=peer.name, peer_status=peer.status)
    reason = stale_reason(peer, row, now)
    return CatalogStatus(
        peer=peer.name,
        peer_status=peer.status,
        version=row.version if row.body is not None else None,
        offerings=_offering_count(row.body),
        fetched_at=row.fetched_at,
        synced_at=row.synced_at,
        checked_at=row.checked_at,
        outcome=row.outcome,
        failure=row.failure,
        error=row.error,
        stale=reason is not None,
        stale_reason=reason,
    )


def stale_reason(peer: Peer, row: PeerCatalog, now: datetime) -> str | None:
    """Why the copy held of an active peer's catalog may no longer be its catalog, if so.

    Stale: the last sync failed, or no sync confirmed the copy for ``STALE_AFTER``. A
    suspended or revoked peer's copy is shown nowhere, so it is never called stale.
    """
    if row.body is None or peer.status is not PeerStatus.active:
        return None
    if row.outcome is SyncOutcome.failed:
        why = f": {row.failure.label}" if row.failure is not None else ""
        return f"the last sync failed{why}"
    confirmed = row.synced_at or row.fetched_at
    if confirmed is None or now - confirmed <= STALE_AFTER:
        return None
    return f"no sync has confirmed it for {_duration(now - confirmed)}"


def _duration(delta: timedelta) -> str:
    """A time span in words, to the largest whole unit: ``45 minutes``, ``3 hours``."""
    minutes = int(delta.total_seconds() // 60)
    for size, unit in ((24 * 60, "day"), (60, "hour"), (1, "minute")):
        if minutes >= size:
            count = minutes // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return "less than a minute"


def _offering_count(body: str | None) -> int | None:
    """How many offerings a stored copy lists (it was verified when stored)."""
    if body is None:
        return None
    offerings: list[Any] = json.loads(body)["catalog"]["offerings"]
    return len(offerings)


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
    name, base_url, peer_keys = peer.name, peer.base_url, keys_of(session, peer=peer)
    session.rollback()  # hold no lock while the peer answers
    try:
        with ctx.client(name, base_url, peer_keys) as client:
            fetched = client.fetch_catalog(held=held)
    except FederationError as exc:
        return _failed(session, actor, ctx, peer, exc)
    row = session.get(PeerCatalog, peer.id) or PeerCatalog(peer_id=peer.id)
    now = ctx.clock()
    row.checked_at, row.synced_at, row.outcome = now, now, SyncOutcome.unchanged
    row.error, row.error_at, row.failure = None, None, None
    new = fetched.catalog
    if fetched.changed and new is not None:
        row.outcome = SyncOutcome.updated
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
    return SyncResult(peer.name, row.outcome is SyncOutcome.updated, row.version, None)


def _failed(
    session: Session, actor: Actor, ctx: FederationContext, peer: Peer, exc: Exception
) -> SyncResult:
    error, failure = f"{type(exc).__name__}: {exc}", failure_of(exc)
    row = session.get(PeerCatalog, peer.id) or PeerCatalog(peer_id=peer.id)
    if row.error is None:
        audit.record(
            session,
            actor=actor,
            action="catalog.sync_failed",
            subject=f"peer:{peer.name}",
            payload={
                "peer": peer.name,
                "failure": failure.name,
                "error": error[:500],
                "kept_version": row.version,
            },
        )
        notifications.catalog_stale(session, peer.name, failure.label, error, row.version)
    now = ctx.clock()
    row.checked_at, row.outcome, row.failure = now, SyncOutcome.failed, failure
    row.error, row.error_at = error[:2000], now
    session.add(row)
    session.commit()
    return SyncResult(peer.name, False, row.version, error, failure)


def sync_all(session: Session, *, ctx: FederationContext) -> list[SyncResult]:
    """The periodic job: sync every active peer as the node itself."""
    return sync_catalogs(session=session, actor=system_actor("catalog-sync"), ctx=ctx)
