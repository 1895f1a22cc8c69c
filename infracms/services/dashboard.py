"""What needs attention first: per organisation and node-wide, for the dashboard.

Per organisation (what the actor may read of it): failed and active runs, hosts whose
last run failed or could not reach them, hosts never applied or out of date with the
published revisions of the definitions that reach them, hosts with no pinned key, and
provision requests waiting for a decision. Node-wide (node administrators): peers whose
catalog is stale and peer invitations not yet used.

Counts come from the same few queries whatever the number of organisations and hosts
(each query covers every organisation shown): one row per host (``HostRunState``,
written when a run finishes), the definitions' targets and the groups' parents; hosts
are matched to definitions in memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Subquery, func
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
        organisations=_org_attention(session, actor, orgs, moment),
    )


def _org_attention(
    session: Session, actor: Actor, orgs: list[Organisation], now: datetime
) -> list[OrgAttention]:
    """Each organisation's concerns, in the same few queries whatever their number."""

    def allowed(action: Action) -> list[uuid.UUID]:
        return [org.id for org in orgs if is_allowed(actor, action, org.id)]

    run_orgs = allowed(Action.run_read)
    failed = _runs_where(session, run_orgs, FAILED, since=now - RECENT)
    active = _runs_where(session, run_orgs, ACTIVE)
    recent = _recent_runs(session, run_orgs)
    standings = host_state.standings(session, organisation_ids=allowed(Action.host_read))
    pending = _pending_requests(session, allowed(Action.provision_read))
    found = []
    for org in orgs:
        concerns: list[Concern] = []
        if org.id in run_orgs:
            concerns += _run_concerns(org, failed.get(org.id, NONE), active.get(org.id, NONE))
        standing = standings.get(org.id)
        if standing is not None:
            concerns += _host_concerns(org, standing)
        if org.id in pending:
            concerns.append(_request_concern(org, pending[org.id]))
        found.append(
            OrgAttention(
                organisation=org,
                hosts=standing.total if standing else 0,
                concerns=[c for c in concerns if c.count],
                recent_runs=recent.get(org.id, []),
            )
        )
    return found


Sampled = tuple[int, list[str]]  # how many, and the latest few by id
NONE: Sampled = (0, [])


def _run_concerns(org: Organisation, failed: Sampled, active: Sampled) -> list[Concern]:
    base = f"/orgs/{org.name}/runs"
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
    organisation_ids: list[uuid.UUID],
    statuses: Iterable[RunStatus],
    since: datetime | None = None,
) -> dict[uuid.UUID, Sampled]:
    """Per organisation, how many of its runs have one of `statuses` (since `since`), and
    the latest few of them: one query."""
    if not organisation_ids:
        return {}
    where: list[ColumnElement[bool]] = [
        col(Run.organisation_id).in_(organisation_ids),
        col(Run.status).in_(list(statuses)),
    ]
    if since is not None:
        where.append(col(Run.created_at) >= since)
    ranked = _ranked(where)
    query = select(ranked.c.organisation_id, ranked.c.id, ranked.c.total).where(
        ranked.c.rank <= SAMPLE
    )
    found: dict[uuid.UUID, Sampled] = {}
    for org, run_id, total in session.execute(query.order_by(ranked.c.rank)):
        found.setdefault(org, (total, []))[1].append(str(run_id))
    return found


def _ranked(where: list[ColumnElement[bool]]) -> Subquery:
    """The runs `where` holds, each with its rank among its organisation's (latest first)
    and how many its organisation has."""
    org = col(Run.organisation_id)
    return (
        select(
            org,
            Run.id,
            func.row_number()
            .over(partition_by=org, order_by=col(Run.created_at).desc())
            .label("rank"),
            func.count().over(partition_by=org).label("total"),
        )
        .where(*where)
        .subquery()
    )


def _recent_runs(session: Session, organisation_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Run]]:
    """Per organisation, its latest few runs: one query."""
    if not organisation_ids:
        return {}
    ranked = _ranked([col(Run.organisation_id).in_(organisation_ids)])
    latest = select(ranked.c.id).where(ranked.c.rank <= SAMPLE)
    query = select(Run).where(col(Run.id).in_(latest)).order_by(col(Run.created_at).desc())
    found: dict[uuid.UUID, list[Run]] = {}
    for run in session.exec(query).all():
        found.setdefault(run.organisation_id, []).append(run)
    return found


def _host_concerns(org: Organisation, found: host_state.Standing) -> list[Concern]:
    return [
        Concern(
            key,
            label,
            len(found.hosts[key]),
            f"/orgs/{org.name}?standing={key}",
            found.hosts[key][:SAMPLE],
        )
        for key, label in host_state.STANDINGS.items()
    ]


def _pending_requests(session: Session, organisation_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Per organisation, how many provision requests wait for a decision: one query."""
    if not organisation_ids:
        return {}
    org = col(ServiceInstance.organisation_id)
    query = (
        select(org, func.count())
        .where(org.in_(organisation_ids), ServiceInstance.status == InstanceStatus.pending)
        .group_by(org)
    )
    counts = {org_id: 0 for org_id in organisation_ids}
    counts.update({org_id: count for org_id, count in session.exec(query).all()})
    return counts


def _request_concern(org: Organisation, count: int) -> Concern:
    href = f"/orgs/{org.name}/requests"
    return Concern("pending_requests", "provision requests waiting for a decision", count, href)


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
