"""The federated catalog: every active peer's offerings, searchable and filterable.

Read from the last good copies that catalog sync keeps (verified when they were
stored); each offering says how fresh its copy is, and whether it is stale (the last
sync failed, or none confirmed it lately: ``sync.stale_reason``). Filters: free text,
kind of service, region, capacity left, price (with a currency), and which peer offers
it. A plan matches every filter given; an offering is listed with its matching plans.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from federation.models.catalog import Offering, Plan
from infracms.errors import NotFound, PermissionDenied
from infracms.models.base import utcnow
from infracms.models.federation import Peer, PeerCatalog, PeerStatus
from infracms.services.authz import Action, is_allowed
from infracms.services.context import Actor
from infracms.services.federation.sync import held_catalog, stale_reason


class CatalogFilter(BaseModel):
    """What to look for; every field is optional."""

    text: str | None = None
    kind: str | None = None
    region: str | None = None
    min_capacity: int | None = None
    max_price: Decimal | None = None
    currency: str | None = None
    peer: str | None = None


class FederatedPlan(BaseModel):
    """A plan as the federated catalog lists it."""

    id: str
    name: str
    description: str
    free: bool
    price: dict[str, Any] | None
    capacity: int | None
    region: str | None
    parameters: dict[str, Any]


class FederatedOffering(BaseModel):
    """An offering of a peer, with who offers it and how fresh the copy is."""

    peer: str
    offering_id: str
    name: str
    description: str
    kind: str
    module: str | None
    tags: list[str]
    bindable: bool
    plans: list[FederatedPlan]
    catalog_version: int
    fetched_at: datetime | None
    sync_error: str | None
    synced_at: datetime | None = None
    stale: bool = False
    stale_reason: str | None = None


def search_catalog(
    *, session: Session, actor: Actor, filters: CatalogFilter | None = None
) -> list[FederatedOffering]:
    """Every active peer's offerings that match `filters`, by peer then offering id."""
    _authorize(actor)
    filters = filters or CatalogFilter()
    found: list[FederatedOffering] = []
    now = utcnow()
    for peer, row in _catalogs(session, filters.peer):
        held = held_catalog(row)
        if held is None:
            continue
        stale = stale_reason(peer, row, now)
        for offering in held.catalog.offerings:
            plans = [p for p in offering.plans if _plan_matches(p, filters)]
            if plans and _offering_matches(offering, filters):
                found.append(_listed(peer, row, offering, plans, held.catalog.version, stale))
    return found


def find_plan(
    session: Session, *, peer: Peer, offering_id: str, plan_id: str
) -> tuple[Offering, Plan]:
    """An offering and plan in a peer's last good catalog, or NotFound."""
    held = held_catalog(session.get(PeerCatalog, peer.id))
    if held is None:
        raise NotFound(f"no catalog of {peer.name} yet: sync it first")
    for offering in held.catalog.offerings:
        if offering.id == offering_id:
            plan = next((p for p in offering.plans if p.id == plan_id), None)
            if plan is not None:
                return offering, plan
            raise NotFound(f"offering {offering_id} of {peer.name} has no plan {plan_id!r}")
    raise NotFound(f"{peer.name} offers no {offering_id!r}")


def _authorize(actor: Actor) -> None:
    if actor.is_admin or any(is_allowed(actor, Action.catalog_read, org) for org in actor.roles):
        return
    raise PermissionDenied("the federated catalog is for members of an organisation")


def _catalogs(session: Session, peer: str | None) -> list[tuple[Peer, PeerCatalog]]:
    query = (
        select(Peer, PeerCatalog)
        .join(PeerCatalog, col(PeerCatalog.peer_id) == col(Peer.id))
        .where(Peer.status == PeerStatus.active)
        .order_by(col(Peer.name))
    )
    if peer is not None:
        query = query.where(Peer.name == peer)
    return [(p, c) for p, c in session.exec(query).all()]


def _offering_matches(offering: Offering, filters: CatalogFilter) -> bool:
    if filters.kind and offering.kind != filters.kind:
        return False
    if filters.text:
        words = " ".join((offering.id, offering.name, offering.description, *offering.tags))
        return filters.text.lower() in words.lower()
    return True


def _plan_matches(plan: Plan, filters: CatalogFilter) -> bool:
    if filters.region and plan.region != filters.region:
        return False
    if (
        filters.min_capacity is not None
        and (plan.capacity or 0) < filters.min_capacity
        and plan.capacity is not None
    ):
        return False
    if plan.price is None or plan.is_free:
        return True
    if filters.currency and plan.price.currency != filters.currency.upper():
        return False
    return filters.max_price is None or Decimal(plan.price.amount) <= filters.max_price


def _listed(
    peer: Peer,
    row: PeerCatalog,
    offering: Offering,
    plans: list[Plan],
    version: int,
    stale: str | None,
) -> FederatedOffering:
    return FederatedOffering(
        peer=peer.name,
        offering_id=offering.id,
        name=offering.name,
        description=offering.description,
        kind=offering.kind,
        module=offering.module,
        tags=list(offering.tags),
        bindable=offering.bindable,
        plans=[
            FederatedPlan(
                id=p.id,
                name=p.name,
                description=p.description,
                free=p.is_free,
                price=p.price.to_json_value() if p.price else None,
                capacity=p.capacity,
                region=p.region,
                parameters=dict(p.parameters),
            )
            for p in plans
        ],
        catalog_version=version,
        fetched_at=row.fetched_at,
        sync_error=row.error,
        synced_at=row.synced_at,
        stale=stale is not None,
        stale_reason=stale,
    )
