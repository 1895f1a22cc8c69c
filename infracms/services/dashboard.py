"""What needs attention first: per organisation and node-wide, for the dashboard.

Per organisation (what the actor may read of it): failed and active runs, hosts whose
last run failed or could not reach them, hosts never applied or out of date with the
published revisions of the definitions that reach them, hosts with no pinned key, and
provision requests waiting for a decision. Node-wide (node administrators): peers whose
catalog is stale and peer invitations not yet used.

Counts come from a few queries per organisation, whatever the number of hosts: one row
per host (``HostRunState``, written when a run finishes), the definitions' targets and
the groups' parents; hosts are matched to definitions in memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from infracms.models.base import utcnow
from infracms.models.federation import InstanceStatus, PeerInvitation, ServiceInstance
from infracms.models.organisation import Organisation
from infracms.models.run import Run, RunStatus
from infracms.services import host_state, organisations
from infracms.services.authz import Action, is_allowed
from infracms.services.context import Actor
from infracms.services.federation import sync

RECENT = timedelta(days=7)
SAMPLE = 5
FAILED = (RunStatus.failed, RunStatus.timed_out)
ACTIVE = (RunStatus.queued, RunStatus.running)


@dataclass
class Concern:
    """One kind of thing to look at: how many, a few of them by name, where to fix it."""

    key: str
    label: str
    count: int
    href: str
    sample: list[str] = field(default_factory=list)


@dataclass
class OrgAttention:
    """An organisation's concerns, most urgent first (only those with a count)."""

    organisation: Organisation
    hosts: int
    concerns: list[Concern]
    recent_runs: list[Run]


@dataclass
class Attention:
    """The dashboard: the node's concerns (node administrators) and each organisation's."""

    node: list[Concern]
    organisations: list[OrgAttention]

    @property
    def total(self) -> int:
        """How many things need attention in all."""
        counts = [c.count for c in self.node]
        counts += [c.count for org in self.organisations for c in org.concerns]
        return sum(counts)


def attention(*, session: Session, actor: Actor, now: datetime | None = None) -> Attention:
    """What needs attention first, in every organisation `actor` can see."""
    moment = now or utcnow()
    orgs = organisations.list_organisations(session=session, actor=actor)
    return Attention(
        node=_node_concerns(session, actor, moment),
        organisations=[_org_attention(session, actor, org, moment) for org in orgs],
    )


def _org_attention(
    session: Session, actor: Actor, org: Organisation, now: datetime
) -> OrgAttention:
    concerns: list[Concern] = []
    recent: list[Run] = []
    if is_allowed(actor, Action.run_read, org.id):
        concerns += _run_concerns(session, org, now)
        recent = _recent_runs(session, org.id)
    total = 0
    if is_allowed(actor, Action.host_read, org.id):
        total, host_concerns = _host_concerns(session, org)
        concerns += host_concerns
    if is_allowed(actor, Action.provision_read, org.id):
        concerns += _request_concerns(session, org)
    return OrgAttention(
        organisation=org,
        hosts=total,
        concerns=[c for c in concerns if c.count],
        recent_runs=recent,
    )


def _run_concerns(session: Session, org: Organisation, now: datetime) -> list[Concern]:
    base = f"/orgs/{org.name}/runs"
    failed = _runs_where(session, org.id, FAILED, since=now - RECENT)
    active = _runs_where(session, org.id, ACTIVE)
    return [
        Concern(
            "failed_runs",
            "failed runs in the last 7 days",
            failed[0],
            f"{base}?status=failed",
            failed[1],
        ),
        Concern(
            "active_runs", "runs queued or running", active[0], f"{base}?status=active", active[1]
        ),
    ]


def _runs_where(
    session: Session,
    organisation_id: uuid.UUID,
    statuses: Iterable[RunStatus],
    since: datetime | None = None,
) -> tuple[int, list[str]]:
    where: list[ColumnElement[bool]] = [
        col(Run.organisation_id) == organisation_id,
        col(Run.status).in_(list(statuses)),
    ]
    if since is not None:
        where.append(col(Run.created_at) >= since)
    count = session.exec(select(func.count()).select_from(Run).where(*where)).one()
    latest = session.exec(
        select(Run.id).where(*where).order_by(col(Run.created_at).desc()).limit(SAMPLE)
    ).all()
    return count, [str(run_id) for run_id in latest]


def _recent_runs(session: Session, organisation_id: uuid.UUID) -> list[Run]:
    query = (
        select(Run)
        .where(Run.organisation_id == organisation_id)
        .order_by(col(Run.created_at).desc())
        .limit(SAMPLE)
    )
    return list(session.exec(query).all())


def _host_concerns(session: Session, org: Organisation) -> tuple[int, list[Concern]]:
    found = host_state.standing(session, org.id)
    concerns = [
        Concern(
            key,
            label,
            len(found.hosts[key]),
            f"/orgs/{org.name}?standing={key}",
            found.hosts[key][:SAMPLE],
        )
        for key, label in host_state.STANDINGS.items()
    ]
    return found.total, concerns


def _request_concerns(session: Session, org: Organisation) -> list[Concern]:
    where = (
        ServiceInstance.organisation_id == org.id,
        ServiceInstance.status == InstanceStatus.pending,
    )
    count = session.exec(select(func.count()).select_from(ServiceInstance).where(*where)).one()
    href = f"/orgs/{org.name}/requests"
    return [Concern("pending_requests", "provision requests waiting for a decision", count, href)]


def _node_concerns(session: Session, actor: Actor, now: datetime) -> list[Concern]:
    if not is_allowed(actor, Action.peer_manage, None):
        return []
    stale = [s.peer for s in sync.catalog_status(session=session, actor=actor, now=now) if s.stale]
    invitations = session.exec(
        select(func.count())
        .select_from(PeerInvitation)
        .where(col(PeerInvitation.used_at).is_(None), col(PeerInvitation.expires_at) > now)
    ).one()
    concerns = [
        Concern(
            "stale_catalogs", "peers whose catalog is stale", len(stale), "/peers", stale[:SAMPLE]
        ),
        Concern("open_invitations", "peer invitations not yet used", invitations, "/peers"),
    ]
    return [c for c in concerns if c.count]
