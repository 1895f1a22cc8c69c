"""What an organisation offers peers: a module's offering, on a pool of its hosts.

An owner (``Action.offering_publish``) publishes one of the offerings a module declares
(its ``offerings``), for their organisation, with the host group the
instances go on, the plans enabled (each with an optional price, capacity and region),
base settings for the module, and a policy: manual approval, or automatic for listed
peers within a quota of instances each. The node's signed catalog is built from these.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from sqlmodel import Session, col, func, select

from federation.limits import MAX_OFFERINGS, MAX_PLANS
from federation.models.catalog import Offering as WireOffering
from infracms.errors import Conflict, InvalidInput, NotFound
from infracms.models.base import utcnow
from infracms.models.federation import ApprovalPolicy, PublishedOffering
from infracms.models.host import HostGroup
from infracms.models.organisation import Organisation
from infracms.modules.contract import Offering as ModuleOffering
from infracms.plugins import Plugins
from infracms.services import audit
from infracms.services.authz import Action, authorize
from infracms.services.common import Fields, commit, invalid_from, organisation_by_name, parse
from infracms.services.context import Actor
from infracms.services.modules import module_or_404, require_enabled

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


class PriceIn(BaseModel):
    """What a plan costs."""

    amount: str = Field(pattern=r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,4})?$")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    unit: Literal["hour", "day", "month", "year", "once"]


class PlanTerms(BaseModel):
    """A plan of the module's offering, enabled, with its terms."""

    name: str = Field(max_length=100)
    price: PriceIn | None = None
    capacity: int | None = Field(default=None, ge=0, le=1_000_000)
    region: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")


class PublicationCreate(BaseModel):
    """What an owner fills in to publish an offering."""

    module: str = Field(max_length=40)
    offering: str = Field(max_length=100, description="the module's offering name")
    group: str = Field(max_length=63, description="the host pool instances go on")
    plans: list[PlanTerms] = Field(min_length=1, max_length=MAX_PLANS)
    offering_id: str | None = Field(default=None, pattern=ID_PATTERN)
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    kind: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    settings: dict[str, Any] = Field(default_factory=dict)
    policy: ApprovalPolicy = ApprovalPolicy.manual
    auto_approve_peers: list[str] = Field(default_factory=list, max_length=500)
    quota: int = Field(default=0, ge=0, le=100_000, description="instances per peer (auto)")
    bindable: bool = True


class PublicationPublic(BaseModel):
    """A published offering as the API and pages show it."""

    id: uuid.UUID
    offering_id: str
    organisation: str
    module: str
    offering: str
    name: str
    description: str
    kind: str
    group: str
    plans: list[dict[str, Any]]
    settings: dict[str, Any]
    policy: ApprovalPolicy
    auto_approve_peers: list[str]
    quota: int
    bindable: bool
    created_at: datetime
    withdrawn: bool


def module_offerings(plugins: Plugins) -> dict[str, list[ModuleOffering]]:
    """{module: offerings} for every module that declares some."""
    found: dict[str, list[ModuleOffering]] = {}
    for name, module in sorted(plugins.registry.modules.items()):
        if module.offerings:
            found[name] = list(module.offerings)
    return found


def _check_room(session: Session) -> None:
    """A catalog carries at most ``MAX_OFFERINGS`` offerings (PROTOCOL.md 8.1)."""
    live = session.exec(
        select(func.count())
        .select_from(PublishedOffering)
        .where(col(PublishedOffering.withdrawn_at).is_(None))
    ).one()
    if live >= MAX_OFFERINGS:
        raise Conflict(f"this node publishes {live} offerings, the most a catalog carries")


def publish_offering(
    *,
    session: Session,
    actor: Actor,
    plugins: Plugins,
    organisation: str,
    data: PublicationCreate | Fields,
) -> PublicationPublic:
    """Publish a module's offering for an organisation, on one of its host groups."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.offering_publish, org.id)
    publication_in = parse(PublicationCreate, data)
    declared = _declared(session, plugins, org, publication_in)
    offering_id = publication_in.offering_id or f"{org.name}-{declared.name}".replace("_", "-")
    if session.exec(
        select(PublishedOffering.id).where(PublishedOffering.offering_id == offering_id)
    ).first():
        raise Conflict(f"offering id {offering_id!r} is taken", errors={"offering_id": "is taken"})
    _check_room(session)
    publication = PublishedOffering(
        offering_id=offering_id,
        organisation_id=org.id,
        module=publication_in.module,
        offering=declared.name,
        name=publication_in.name or declared.title,
        description=publication_in.description or declared.description,
        kind=publication_in.kind or declared.kind,
        group_id=_group_id(session, org, publication_in.group),
        plans=_plans(offering_id, declared, publication_in.plans),
        settings=publication_in.settings,
        policy=publication_in.policy,
        auto_approve_peers=sorted(set(publication_in.auto_approve_peers)),
        quota=publication_in.quota,
        bindable=publication_in.bindable,
        created_by=actor.name,
    )
    wire_offering(publication, {})  # refuses what the catalog could not carry
    session.add(publication)
    public = describe(session, publication=publication)
    audit.record(
        session,
        actor=actor,
        action="offering.publish",
        subject=f"offering:{org.name}/{offering_id}",
        organisation_id=org.id,
        payload={"after": public.model_dump(mode="json", exclude={"id", "created_at"})},
    )
    commit(session, conflict=f"offering id {offering_id!r} is taken")
    return public


def withdraw_offering(
    *, session: Session, actor: Actor, organisation: str, offering_id: str
) -> PublicationPublic:
    """Take an offering out of the catalog; its instances stay until deprovisioned."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.offering_publish, org.id)
    publication = publication_in_org(session, org=org, offering_id=offering_id)
    if publication.withdrawn_at is None:
        publication.withdrawn_at = utcnow()
        session.add(publication)
        audit.record(
            session,
            actor=actor,
            action="offering.withdraw",
            subject=f"offering:{org.name}/{offering_id}",
            organisation_id=org.id,
        )
        commit(session)
    return describe(session, publication=publication)


def list_publications(
    *, session: Session, actor: Actor, organisation: str, include_withdrawn: bool = False
) -> list[PublicationPublic]:
    """An organisation's published offerings."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.offering_read, org.id)
    query = select(PublishedOffering).where(PublishedOffering.organisation_id == org.id)
    if not include_withdrawn:
        query = query.where(col(PublishedOffering.withdrawn_at).is_(None))
    rows = session.exec(query.order_by(col(PublishedOffering.offering_id))).all()
    return [describe(session, publication=row) for row in rows]


def publication_in_org(
    session: Session, *, org: Organisation, offering_id: str
) -> PublishedOffering:
    """An organisation's publication by offering id, or NotFound."""
    row = session.exec(
        select(PublishedOffering).where(
            PublishedOffering.offering_id == offering_id,
            PublishedOffering.organisation_id == org.id,
        )
    ).first()
    if row is None:
        raise NotFound(f"no offering {offering_id!r} in {org.name}")
    return row


def describe(session: Session, *, publication: PublishedOffering) -> PublicationPublic:
    """A publication with its organisation's and group's names."""
    org = session.get(Organisation, publication.organisation_id)
    group = session.get(HostGroup, publication.group_id)
    return PublicationPublic(
        **publication.model_dump(exclude={"organisation_id", "group_id", "withdrawn_at"}),
        organisation=org.name if org else "?",
        group=group.name if group else "?",
        withdrawn=publication.withdrawn_at is not None,
    )


def plan_of(publication: PublishedOffering, plan_id: str) -> dict[str, Any] | None:
    """The stored plan with this catalog plan id."""
    return next((p for p in publication.plans if p["id"] == plan_id), None)


def wire_offering(publication: PublishedOffering, used: dict[str, int]) -> WireOffering:
    """The offering as the catalog carries it; `used` counts live instances per plan id."""
    plans = []
    for plan in publication.plans:
        wire = {k: v for k, v in plan.items() if v is not None and k != "title"}
        wire["name"] = plan["title"]
        if plan.get("capacity") is not None:
            wire["capacity"] = max(0, plan["capacity"] - used.get(plan["id"], 0))
        plans.append(wire)
    try:
        return WireOffering.model_validate(
            {
                "id": publication.offering_id,
                "name": publication.name,
                "description": publication.description,
                "kind": publication.kind,
                "module": publication.module,
                "bindable": publication.bindable,
                "plans": plans,
            }
        )
    except ValidationError as exc:
        raise invalid_from(exc) from exc


def _declared(
    session: Session, plugins: Plugins, org: Organisation, publication_in: PublicationCreate
) -> ModuleOffering:
    module_or_404(plugins, publication_in.module)
    require_enabled(session, organisation_id=org.id, name=publication_in.module)
    offered = module_offerings(plugins).get(publication_in.module, [])
    declared = next((o for o in offered if o.name == publication_in.offering), None)
    if declared is None:
        names = ", ".join(o.name for o in offered) or "none"
        raise InvalidInput(
            f"module {publication_in.module} offers no {publication_in.offering!r}",
            errors={"offering": f"expected one of: {names}"},
        )
    known = {plan.name for plan in declared.plans}
    unknown = sorted({terms.name for terms in publication_in.plans} - known)
    if unknown:
        raise InvalidInput(
            "unknown plans", errors={"plans": f"{', '.join(unknown)} not in {sorted(known)}"}
        )
    return declared


def _group_id(session: Session, org: Organisation, name: str) -> uuid.UUID:
    group = session.exec(
        select(HostGroup.id).where(HostGroup.organisation_id == org.id, HostGroup.name == name)
    ).first()
    if group is None:
        raise InvalidInput(f"no group called {name!r}", errors={"group": "no such group"})
    return group


def _plans(
    offering_id: str, declared: ModuleOffering, terms: list[PlanTerms]
) -> list[dict[str, Any]]:
    by_name = {plan.name: plan for plan in declared.plans}
    return [
        {
            "id": f"{offering_id}.{term.name}",
            "plan": term.name,
            "title": by_name[term.name].title,
            "parameters": by_name[term.name].parameters or {"type": "object"},
            "price": term.price.model_dump() if term.price else None,
            "capacity": term.capacity,
            "region": term.region,
            "plan_updateable": declared.plan_updateable or None,
        }
        for term in terms
    ]
