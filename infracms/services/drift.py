"""Drift, read: where each host stands against its definitions; acknowledging, remediating.

A host's state combines its last run (``HostRunState``) and its last check
(``HostDrift``, written by ``drift_record``): failed or unreachable when its last run
was; never applied when a definition reaches it and no apply has succeeded; drifted when
its last check found changes; out of date when a definition that reaches it has been
published since its last apply; else in sync. Acknowledging drift (with a reason) and
remediating it (an apply of the drifted definitions on the host, through
``runs.create_run``) are audited and need ``run.apply``.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from infracms.errors import Conflict, NotFound
from infracms.models.audit import AuditEntry
from infracms.models.base import utcnow
from infracms.models.host import Host
from infracms.models.run import Run, RunKind, RunStatus
from infracms.models.schedule import DriftAcknowledge, DriftState, HostDrift, HostDriftPublic
from infracms.plugins import Plugins
from infracms.services import audit, host_state, runs
from infracms.services.authz import Action, authorize
from infracms.services.common import Fields, commit, organisation_by_name, parse
from infracms.services.context import Actor


def host_drift(*, session: Session, actor: Actor, organisation: str, host: str) -> HostDriftPublic:
    """Where one host stands, with what its last check found."""
    return _one(organisation_drift(session=session, actor=actor, organisation=organisation), host)


def _one(found: list[HostDriftPublic], host: str) -> HostDriftPublic:
    for state in found:
        if state.host == host:
            return state
    raise NotFound(f"no host {host}")


def organisation_drift(
    *, session: Session, actor: Actor, organisation: str
) -> list[HostDriftPublic]:
    """Where each of an organisation's hosts stands, by host name."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.host_read, org.id)
    standing = host_state.standing(session, organisation_id=org.id).hosts
    rows = session.exec(
        select(Host.name, HostDrift)
        .outerjoin(HostDrift, HostDrift.host_id == Host.id)  # type: ignore[arg-type]
        .where(Host.organisation_id == org.id)
        .order_by(Host.name)
    ).all()
    marks = {key: set(names) for key, names in standing.items()}
    return [_public(name, row, _state(name, row, marks)) for name, row in rows]


def _state(name: str, row: HostDrift | None, marks: dict[str, set[str]]) -> DriftState:
    for key in ("unreachable", "failed", "never_applied"):
        if name in marks[key]:
            return DriftState[key]
    if row is not None and row.state is DriftState.drifted:
        return DriftState.drifted
    if name in marks["out_of_date"]:
        return DriftState.out_of_date
    return DriftState.in_sync


def _public(name: str, row: HostDrift | None, state: DriftState) -> HostDriftPublic:
    if row is None:
        return HostDriftPublic(
            host=name,
            state=state,
            checked_at=None,
            run_id=None,
            definitions=[],
            tasks=[],
            digest=None,
            since=None,
            acknowledged_by=None,
            acknowledged_at=None,
            acknowledged_reason=None,
        )
    return HostDriftPublic(host=name, **{**row.model_dump(exclude={"host_id"}), "state": state})


def counts(found: list[HostDriftPublic]) -> dict[DriftState, int]:
    """How many hosts stand in each state (every state named, in order)."""
    counted = Counter(state.state for state in found)
    return {state: counted.get(state, 0) for state in DriftState}


def acknowledge(
    *, session: Session, actor: Actor, organisation: str, host: str, data: DriftAcknowledge | Fields
) -> HostDrift:
    """Accept a host's drift for now, with a reason (audited); a new drift clears it."""
    ack = parse(DriftAcknowledge, data)
    org, row = _drifted(session, organisation, host)
    authorize(actor, Action.run_apply, org)
    row.acknowledged_by, row.acknowledged_at = actor.name, utcnow()
    row.acknowledged_reason = ack.reason
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="drift.acknowledge",
        subject=f"host:{organisation}/{host}",
        organisation_id=org,
        payload={
            "host": host,
            "definitions": row.definitions,
            "digest": row.digest,
            "reason": ack.reason,
        },
    )
    commit(session)
    return row


def remediate(
    *, session: Session, actor: Actor, plugins: Plugins, organisation: str, host: str
) -> Run:
    """Apply the drifted definitions to the host (a run like any other: the caller submits
    it); the plan that found the drift is the run's parent."""
    org, row = _drifted(session, organisation, host)
    authorize(actor, Action.run_apply, org)
    plan = session.get(Run, row.run_id) if row.run_id else None
    return runs.create_run(
        session=session,
        actor=actor,
        plugins=plugins,
        organisation=organisation,
        data={"kind": RunKind.apply, "hosts": [host], "definitions": row.definitions},
        parent=plan,
    )


def _drifted(session: Session, organisation: str, host: str) -> tuple[uuid.UUID, HostDrift]:
    org = organisation_by_name(session, name=organisation)
    row = session.exec(
        select(HostDrift)
        .join(Host, Host.id == HostDrift.host_id)  # type: ignore[arg-type]
        .where(Host.organisation_id == org.id, Host.name == host)
    ).first()
    if row is None or row.state is not DriftState.drifted:
        raise Conflict(f"host {host} has no drift to act on")
    return org.id, row


@dataclass(frozen=True)
class Day:
    """One day of the chart: drift found, runs that succeeded and runs that failed."""

    day: datetime
    drift: int
    succeeded: int
    failed: int


def history(
    *,
    session: Session,
    actor: Actor,
    organisation: str,
    days: int = 28,
    now: datetime | None = None,
) -> list[Day]:
    """Drift found and run outcomes per day over the last `days` days (UTC), oldest first."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.run_read, org.id)
    end = (now or utcnow()).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    start = end - timedelta(days=days)
    drift = _per_day(
        session,
        start,
        select(AuditEntry.time).where(
            AuditEntry.organisation_id == org.id,
            AuditEntry.action == "drift.found",
            col(AuditEntry.time) >= start,
        ),
    )
    finished = session.exec(
        select(Run.finished_at, Run.status).where(
            Run.organisation_id == org.id, col(Run.finished_at) >= start
        )
    ).all()
    good = Counter(_day(start, t) for t, s in finished if s is RunStatus.succeeded and t)
    bad = Counter(
        _day(start, t) for t, s in finished if s in (RunStatus.failed, RunStatus.timed_out) and t
    )
    return [
        Day(start + timedelta(days=i), drift.get(i, 0), good.get(i, 0), bad.get(i, 0))
        for i in range(days)
    ]


def _per_day(session: Session, start: datetime, query: object) -> Counter[int]:
    return Counter(_day(start, t) for t in session.exec(query))  # type: ignore[call-overload]


def _day(start: datetime, moment: datetime) -> int:
    return (moment - start).days
