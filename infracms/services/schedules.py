"""Schedules: recurring drift checks of an organisation, a group or some definitions.

A schedule is a cron expression read on the wall clocks of its IANA time zone (a 02:30
check runs once on the day that skips 02:30 and once on the day that repeats it). When
a schedule is due, ``fire_due`` queues a plan of its scope through ``runs.create_run``,
and its next time is counted from *now*: a node that was down over many occurrences
fires each missed schedule once when it is back, never a burst.
A check never starts while the previous one for the same scope is queued or running.
A ``reconcile`` schedule then applies what its plan found drifted, again through
``runs.create_run`` (so whatever holds applies back, such as approvals, holds it too).

Creating a plan schedule needs ``run.plan``; a reconcile schedule, which applies
unattended, needs ``run.apply``. The runs a schedule queues are asked for by the node
(``schedule <name>``), in the name of whoever allowed the schedule.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter  # type: ignore[import-untyped]
from sqlmodel import Session, col, select

from infracms.errors import Conflict, InfracmsError, InvalidInput, NotFound
from infracms.models.base import utcnow
from infracms.models.host import Host, HostGroup
from infracms.models.organisation import Organisation
from infracms.models.run import Run, RunKind, RunStatus
from infracms.models.schedule import (
    DriftState,
    HostDrift,
    Schedule,
    ScheduleCreate,
    ScheduleMode,
)
from infracms.plugins import Plugins
from infracms.services import audit, runs
from infracms.services.authz import Action, authorize
from infracms.services.common import Fields, commit, organisation_by_name, parse
from infracms.services.context import Actor, system_actor

ACTIVE = (RunStatus.queued, RunStatus.running)


def next_due(cron: str, time_zone: str, after: datetime) -> datetime:
    """The first time after `after` that `cron` names on the wall clocks of `time_zone`, in UTC.

    croniter walks wall-clock times; each is then placed in the zone (PEP 495, ``fold=0``):
    a time that a change to summer time skips runs once, as its winter-time equivalent
    (02:30 → 03:30), and a time that the change back repeats runs once, the first time.
    (croniter on zone-aware times runs such a time twice.)"""
    zone = ZoneInfo(time_zone)
    walls = croniter(cron, after.astimezone(zone).replace(tzinfo=None))
    while True:
        found: datetime = walls.get_next(datetime).replace(tzinfo=zone).astimezone(UTC)
        if found > after:  # `after` in a repeated hour's second pass
            return found


def scope_key(group: str | None, definitions: list[str] | None) -> str:
    """What a schedule checks, as a digest: two schedules of one scope never overlap."""
    scope = {"group": group, "definitions": sorted(definitions) if definitions else None}
    return hashlib.sha256(json.dumps(scope, sort_keys=True).encode()).hexdigest()


def create_schedule(
    *,
    session: Session,
    actor: Actor,
    organisation: str,
    data: ScheduleCreate | Fields,
    now: datetime | None = None,
) -> Schedule:
    """Add a schedule (audited); refused with a field error if its scope names nothing."""
    org = organisation_by_name(session, name=organisation)
    schedule_in = parse(ScheduleCreate, data)
    _authorize_write(actor, schedule_in.mode, org.id)
    _check_scope(session, org.id, schedule_in)
    taken = select(Schedule.id).where(
        Schedule.organisation_id == org.id, Schedule.name == schedule_in.name
    )
    if session.exec(taken).first() is not None:
        raise Conflict(f"a schedule named {schedule_in.name} already exists")
    schedule = Schedule(
        organisation_id=org.id,
        **schedule_in.model_dump(),
        scope=scope_key(schedule_in.group, schedule_in.definitions),
        created_by=actor.name,
        next_due_at=next_due(schedule_in.cron, schedule_in.time_zone, now or utcnow()),
    )
    session.add(schedule)
    audit.record(
        session,
        actor=actor,
        action="schedule.create",
        subject=f"schedule:{org.name}/{schedule.name}",
        organisation_id=org.id,
        payload=schedule_in.model_dump(mode="json"),
    )
    commit(session, conflict=f"a schedule named {schedule.name} already exists")
    return schedule


def _authorize_write(actor: Actor, mode: ScheduleMode, organisation_id: uuid.UUID) -> None:
    action = Action.run_apply if mode is ScheduleMode.reconcile else Action.run_plan
    authorize(actor, action, organisation_id)


def _check_scope(session: Session, organisation_id: uuid.UUID, data: ScheduleCreate) -> None:
    if data.group is not None:
        group = session.exec(
            select(HostGroup.id).where(
                HostGroup.organisation_id == organisation_id, HostGroup.name == data.group
            )
        ).first()
        if group is None:
            raise InvalidInput("unknown group", errors={"group": f"no group {data.group}"})


def list_schedules(*, session: Session, actor: Actor, organisation: str) -> list[Schedule]:
    """An organisation's schedules by name."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.run_read, org.id)
    query = select(Schedule).where(Schedule.organisation_id == org.id)
    return list(session.exec(query.order_by(col(Schedule.name))))


def get_schedule(*, session: Session, actor: Actor, organisation: str, name: str) -> Schedule:
    """One schedule."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.run_read, org.id)
    schedule = session.exec(
        select(Schedule).where(Schedule.organisation_id == org.id, Schedule.name == name)
    ).first()
    if schedule is None:
        raise NotFound(f"no schedule {name} in {org.name}")
    return schedule


def remove_schedule(*, session: Session, actor: Actor, organisation: str, name: str) -> None:
    """Remove a schedule (audited); its runs stay."""
    schedule = get_schedule(session=session, actor=actor, organisation=organisation, name=name)
    _authorize_write(actor, schedule.mode, schedule.organisation_id)
    session.delete(schedule)
    audit.record(
        session,
        actor=actor,
        action="schedule.remove",
        subject=f"schedule:{organisation}/{name}",
        organisation_id=schedule.organisation_id,
    )
    commit(session)


# --- firing, for the periodic job ------------------------------------------------------


def fire_due(session: Session, plugins: Plugins, now: datetime) -> list[uuid.UUID]:
    """Queue a plan for every enabled schedule due at `now`, and an apply of what drifted
    for every reconcile schedule whose plan has ended; the runs to submit."""
    return [*_reconcile(session, plugins), *_plans(session, plugins, now)]


def _plans(session: Session, plugins: Plugins, now: datetime) -> list[uuid.UUID]:
    due = session.exec(
        select(Schedule)
        .where(col(Schedule.enabled).is_(True), col(Schedule.next_due_at) <= now)
        .order_by(col(Schedule.next_due_at))
    ).all()
    queued = []
    for schedule in due:
        run_id = _fire(session, plugins, schedule, now)
        if run_id is not None:
            queued.append(run_id)
    return queued


def _fire(
    session: Session, plugins: Plugins, schedule: Schedule, now: datetime
) -> uuid.UUID | None:
    """One due schedule: its plan, or why not. Its next time counts from now, and is
    written in the transaction that creates the plan: a second beat (PostgreSQL), blocked
    on the row, then finds it no longer due."""
    schedule_id = schedule.id
    fresh = _due_row(session, schedule_id, now)
    if fresh is None:
        return None
    fresh.next_due_at = next_due(fresh.cron, fresh.time_zone, now)
    fresh.last_fired_at, fresh.last_skipped = now, None
    session.add(fresh)
    busy = _running_for_scope(session, fresh.organisation_id, fresh.scope)
    if busy is not None:
        fresh.last_skipped = f"the check of run {busy} for the same scope was still going"
        session.commit()
        return None
    data = {
        "kind": RunKind.plan,
        "groups": [fresh.group] if fresh.group else None,
        "definitions": fresh.definitions,
    }
    actor, org = system_actor(f"schedule {fresh.name}"), _org_name(session, fresh.organisation_id)
    try:
        run = runs.create_run(
            session=session, actor=actor, plugins=plugins, organisation=org, data=data
        )
    except InfracmsError as exc:  # nothing to check, a definition gone: said, not fatal
        session.rollback()
        _skipped(session, schedule_id, now, _why(exc))
        return None
    fresh.last_run_id = run.id
    session.add(fresh)
    session.commit()
    return run.id


def _due_row(session: Session, schedule_id: uuid.UUID, now: datetime) -> Schedule | None:
    """The schedule, locked, if it is still enabled and due."""
    query = select(Schedule).where(Schedule.id == schedule_id).with_for_update()
    fresh = session.exec(query.execution_options(populate_existing=True)).first()
    if fresh is None or not fresh.enabled or fresh.next_due_at is None or fresh.next_due_at > now:
        return None
    return fresh


def _skipped(session: Session, schedule_id: uuid.UUID, now: datetime, why: str) -> None:
    fresh = _due_row(session, schedule_id, now)
    if fresh is not None:
        fresh.next_due_at = next_due(fresh.cron, fresh.time_zone, now)
        fresh.last_fired_at, fresh.last_skipped = now, why
        session.add(fresh)
    session.commit()


def _why(exc: InfracmsError) -> str:
    errors = getattr(exc, "errors", None) or {}
    details = "; ".join(f"{field}: {text}" for field, text in errors.items())
    return (f"{exc}: {details}" if details else str(exc))[:500]


def _org_name(session: Session, organisation_id: uuid.UUID) -> str:
    org = session.get(Organisation, organisation_id)
    if org is None:
        raise NotFound(f"no organisation {organisation_id}")
    return org.name


def _running_for_scope(
    session: Session, organisation_id: uuid.UUID, scope: str
) -> uuid.UUID | None:
    """A plan or reconcile of a schedule of this scope that is still queued or running."""
    for column in (Schedule.last_run_id, Schedule.reconcile_run_id):
        found = session.exec(
            select(Run.id)
            .join(Schedule, column == Run.id)  # type: ignore[arg-type]
            .where(
                Schedule.organisation_id == organisation_id,
                Schedule.scope == scope,
                col(Run.status).in_(ACTIVE),
            )
        ).first()
        if found is not None:
            return found
    return None


def _reconcile(session: Session, plugins: Plugins) -> list[uuid.UUID]:
    """Apply what the ended plans of reconcile schedules found drifted (once per plan)."""
    waiting = session.exec(
        select(Schedule, Run)
        .join(Run, Run.id == Schedule.last_run_id)  # type: ignore[arg-type]
        .where(
            Schedule.mode == ScheduleMode.reconcile,
            col(Schedule.enabled).is_(True),
            col(Run.status).not_in(ACTIVE),
        )
    ).all()
    queued = []
    for schedule, plan in waiting:
        if schedule.reconcile_run_id == plan.id:
            continue  # this plan found nothing to apply, or its apply was refused
        if schedule.reconcile_run_id is not None:
            done = session.get(Run, schedule.reconcile_run_id)
            if done is not None and done.parent_id == plan.id:
                continue
        run_id = _reconcile_one(session, plugins, schedule, plan)
        if run_id is not None:
            queued.append(run_id)
    return queued


def _reconcile_one(
    session: Session, plugins: Plugins, schedule: Schedule, plan: Run
) -> uuid.UUID | None:
    drifted = session.exec(
        select(Host.name, HostDrift.definitions)
        .join(Host, Host.id == HostDrift.host_id)  # type: ignore[arg-type]
        .where(HostDrift.run_id == plan.id, HostDrift.state == DriftState.drifted)
    ).all()
    hosts = sorted(name for name, _ in drifted)
    definitions = sorted({d for _, names in drifted for d in names})
    schedule_id = schedule.id
    apply: Run | None = None
    skipped = None
    if hosts:
        try:
            apply = runs.create_run(
                session=session,
                actor=system_actor(f"schedule {schedule.name}"),
                plugins=plugins,
                organisation=_org_name(session, schedule.organisation_id),
                data={"kind": RunKind.apply, "hosts": hosts, "definitions": definitions},
                parent=plan,
            )
        except InfracmsError as exc:
            session.rollback()
            skipped = "reconcile: " + _why(exc)
    fresh = session.get(Schedule, schedule_id)
    if fresh is None:
        return None
    # with nothing applied, the plan itself marks that it has been dealt with
    fresh.reconcile_run_id = apply.id if apply else plan.id
    if skipped is not None:
        fresh.last_skipped = skipped
    session.add(fresh)
    session.commit()
    return apply.id if apply else None
