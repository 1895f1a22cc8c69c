"""Runs: ask for a plan or an apply, follow it, cancel it, re-run what failed.

The lifecycle functions (claim, heartbeat, events, finish, fail, reap) are what the
executors call through ``orchestration/execute.py``; every transition is audited. An apply holds
a lock on each of its hosts (a row per host that its holder renews): a second apply on
a locked host is refused with the holder named; a holder that stops renewing loses it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    String,
    any_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from infracms.errors import Conflict, InvalidInput, NotFound
from infracms.models.base import utcnow
from infracms.models.definition import Definition, EnabledModule
from infracms.models.host import Host
from infracms.models.organisation import Organisation
from infracms.models.run import (
    HostLock,
    Run,
    RunCreate,
    RunEvent,
    RunEventPublic,
    RunFilter,
    RunKind,
    RunStatus,
)
from infracms.modules.render import HostRow, reached
from infracms.plugins import Plugins
from infracms.services import approvals, audit, host_state, notifications, rendering
from infracms.services.authz import Action, authorize
from infracms.services.common import Fields, Page, commit, found, organisation_by_name, page, parse
from infracms.services.context import Actor, system_actor

LOCK_SECONDS = 60
STALE_SECONDS = 60
FAILED_OUTCOMES = ("failed", "unreachable")


def create_run(
    *,
    session: Session,
    actor: Actor,
    plugins: Plugins,
    organisation: str,
    data: RunCreate | Fields,
    parent: Run | None = None,
) -> Run:
    """Queue a plan or an apply of definitions on hosts; the caller submits it to an executor.

    The run pins the published revision of every live definition of the chosen modules,
    so what it applies is fixed when it is asked for, and a host gets its most specific
    definition even when only a broader one was chosen.
    """
    org = organisation_by_name(session, name=organisation)
    run_in = parse(RunCreate, data)
    authorize(actor, Action.run_apply if run_in.kind is RunKind.apply else Action.run_plan, org.id)
    live = _live_definitions(session, org)
    chosen = _chosen(live, run_in.definitions)
    modules = {d.module for d in chosen}
    pinned = {d.name: d.published for d in live.values() if d.module in modules and d.published}
    hosts = _scope(session, org, plugins, run_in, {d.name for d in chosen}, pinned)
    if not hosts:
        raise InvalidInput(
            "nothing to run", errors={"hosts": "no definition applies to the chosen hosts"}
        )
    run = Run(
        organisation_id=org.id,
        kind=run_in.kind,
        requested_by=actor.name,
        timeout_seconds=run_in.timeout_seconds,
        hosts=hosts,
        definitions=[
            {"name": name, "module": live[name].module, "revision": revision}
            for name, revision in sorted(pinned.items())
        ],
        parent_id=parent.id if parent else None,
    )
    session.add(run)
    audit.record(
        session,
        actor=actor,
        action=f"run.{run.kind}",
        subject=f"run:{org.name}/{run.id}",
        organisation_id=org.id,
        payload={
            "hosts": hosts,
            "definitions": run.definitions,
            "parent": parent.id if parent else None,
        },
    )
    approvals.hold_if_covered(session, actor=actor, plugins=plugins, org=org, run=run)
    commit(session)
    return run


def _live_definitions(session: Session, org: Organisation) -> dict[str, Definition]:
    query = select(Definition).where(
        Definition.organisation_id == org.id,
        col(Definition.retired_at).is_(None),
        col(Definition.published).is_not(None),
    )
    return {d.name: d for d in session.exec(query)}


def _chosen(live: dict[str, Definition], names: list[str] | None) -> list[Definition]:
    if names is None:
        return list(live.values())
    unknown = sorted(set(names) - set(live))
    if unknown:
        raise InvalidInput(
            "unknown definitions",
            errors={"definitions": f"no such definitions: {', '.join(unknown)}"},
        )
    return [live[name] for name in names]


def _scope(
    session: Session,
    org: Organisation,
    plugins: Plugins,
    run_in: RunCreate,
    chosen: set[str],
    pinned: dict[str, int],
) -> list[str]:
    """The hosts the chosen definitions reach, narrowed to the hosts and groups asked for.

    Only names and groups are loaded: settings are worked out per shape, enough to refuse
    a run that two definitions would tie on, and per host only when the run executes."""
    hosts = [
        HostRow(name, groups)
        for (name,), groups in rendering.hosts_with_groups(session, organisation_id=org.id)
    ]
    parents = rendering.group_parents(session, organisation_id=org.id)
    definitions = rendering.definition_rows(session, organisation_id=org.id, pinned=pinned)
    rendering.resolve(plugins, hosts, parents, definitions)
    scope = reached(
        hosts, parents, [(d.target_kind, d.target) for d in definitions if d.name in chosen]
    )
    if run_in.hosts is not None:
        unknown = set(run_in.hosts) - {host.name for host in hosts}
        if unknown:
            raise InvalidInput(
                "unknown hosts", errors={"hosts": f"no such hosts: {', '.join(sorted(unknown))}"}
            )
        scope &= set(run_in.hosts)
    if run_in.groups is not None:
        unknown = set(run_in.groups) - set(parents)
        if unknown:
            raise InvalidInput(
                "unknown groups",
                errors={"groups": f"no such groups: {', '.join(sorted(unknown))}"},
            )
        scope &= reached(hosts, parents, [("group", name) for name in run_in.groups])
    return sorted(scope)


def cancel_run(*, session: Session, actor: Actor, organisation: str, run_id: uuid.UUID) -> Run:
    """Ask a queued or running run to stop."""
    org, run = _run_in(session, organisation, run_id)
    authorize(actor, Action.run_apply if run.kind is RunKind.apply else Action.run_plan, org.id)
    if run.status.finished:
        raise Conflict(f"run {run.id} has already ended ({run.status})")
    run.cancel_requested = True
    if run.status in (RunStatus.queued, RunStatus.pending_approval):
        run.status, run.finished_at = RunStatus.cancelled, utcnow()
    session.add(run)
    audit.record(
        session,
        actor=actor,
        action="run.cancel",
        subject=f"run:{org.name}/{run.id}",
        organisation_id=org.id,
    )
    commit(session)
    return run


def rerun_failed(
    *, session: Session, actor: Actor, plugins: Plugins, organisation: str, run_id: uuid.UUID
) -> Run:
    """A new run of the same kind and definitions on the hosts that failed or were unreachable."""
    org, parent = _run_in(session, organisation, run_id)
    authorize(actor, Action.run_apply if parent.kind is RunKind.apply else Action.run_plan, org.id)
    failed = sorted(
        h for h, counts in parent.recap.items() if any(counts.get(k) for k in FAILED_OUTCOMES)
    )
    if not parent.status.finished or not failed:
        raise Conflict(f"run {parent.id} has no failed hosts to run again")
    data = {
        "kind": parent.kind,
        "hosts": failed,
        "definitions": [d["name"] for d in parent.definitions],
    }
    return create_run(
        session=session,
        actor=actor,
        plugins=plugins,
        organisation=organisation,
        data=data,
        parent=parent,
    )


def get_run(*, session: Session, actor: Actor, organisation: str, run_id: uuid.UUID) -> Run:
    """One run."""
    org, run = _run_in(session, organisation, run_id)
    authorize(actor, Action.run_read, org.id)
    return run


def list_runs(
    *,
    session: Session,
    actor: Actor,
    organisation: str,
    filters: RunFilter | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page[Run]:
    """An organisation's runs, newest first, narrowed by `filters`."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.run_read, org.id)
    return page(
        session,
        table=Run,
        where=[col(Run.organisation_id) == org.id, *_filtered(session, filters or RunFilter())],
        order_by=col(Run.created_at).desc(),
        limit=limit,
        offset=offset,
    )


def _filtered(session: Session, filters: RunFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    statuses = filters.statuses()
    if statuses is not None:
        where.append(col(Run.status).in_(statuses))
    if filters.kind is not None:
        where.append(col(Run.kind) == filters.kind)
    if filters.requested_by is not None:
        where.append(col(Run.requested_by) == filters.requested_by)
    postgres = session.get_bind().dialect.name == "postgresql"
    if filters.host is not None:
        where.append(_lists(col(Run.hosts), filters.host, postgres))
    if filters.definition is not None:
        where.append(_lists(col(Run.definitions), {"name": filters.definition}, postgres))
    return where


def _lists(column: Any, item: str | dict[str, str], postgres: bool) -> ColumnElement[bool]:
    """`column` (a JSON list) holds `item` (a string, or an object with these fields)."""
    if postgres:
        return cast(column, JSONB).contains([item])
    listed = func.json_each(column).table_valued("value").alias("listed")
    if isinstance(item, str):
        match = listed.c.value == item
    else:
        (key, value), *_ = item.items()
        match = func.json_extract(listed.c.value, f"$.{key}") == value
    return exists(select(listed.c.value).where(match))


def run_events(
    *,
    session: Session,
    actor: Actor,
    organisation: str,
    run_id: uuid.UUID,
    after: int = 0,
    limit: int = 500,
    host: str | None = None,
    before: int | None = None,
    changed_only: bool = False,
) -> list[RunEventPublic]:
    """A run's events in order (pages of at most 5,000): after sequence number `after`,
    or, with `before`, the last `limit` events before it (to page backwards)."""
    get_run(session=session, actor=actor, organisation=organisation, run_id=run_id)
    if not 1 <= limit <= 5000:
        raise InvalidInput("bad page", errors={"limit": "must be between 1 and 5000"})
    query = select(RunEvent).where(RunEvent.run_id == run_id, col(RunEvent.seq) > after)
    if before is not None:
        query = query.where(col(RunEvent.seq) < before)
    if host is not None:
        query = query.where(RunEvent.host == host)
    if changed_only:
        query = query.where(col(RunEvent.changed).is_(True))
    order = col(RunEvent.seq).desc() if before is not None else col(RunEvent.seq)
    rows = list(session.exec(query.order_by(order).limit(limit)).all())
    if before is not None:
        rows.reverse()
    return [RunEventPublic.model_validate(row) for row in rows]


def _run_in(session: Session, organisation: str, run_id: uuid.UUID) -> tuple[Organisation, Run]:
    org = organisation_by_name(session, name=organisation)
    run = session.get(Run, run_id)
    if run is None or run.organisation_id != org.id:
        raise NotFound(f"no run {run_id} in {org.name}")
    return org, run


# --- lifecycle, for the executors ------------------------------------------------------


def claim_run(
    session: Session, *, run_id: uuid.UUID, worker: str, plugins: Plugins | None = None
) -> Run | None:
    """Mark a queued run running and lock its hosts; None if it is not queued any more
    (a redelivered task must not run twice). A locked host fails the run, named. An
    approved apply whose plan changed since (made again with `plugins`) ends refused."""
    run = session.exec(select(Run).where(Run.id == run_id).with_for_update()).first()
    if run is None or run.status is not RunStatus.queued:
        return None
    if run.kind is RunKind.apply and not approvals.check_before_claim(session, run, plugins):
        session.commit()
        return None
    org = found(session.get(Organisation, run.organisation_id), "the run's organisation")
    now = utcnow()
    run.status, run.started_at, run.heartbeat_at, run.worker = RunStatus.running, now, now, worker
    session.add(run)
    try:
        if run.kind is RunKind.apply:
            holder = _lock_hosts(session, run, now)
            if holder is not None:
                _refuse(session, run, org, holder)
                return None
        audit.record(
            session,
            actor=system_actor(worker),
            action="run.start",
            subject=f"run:{org.name}/{run.id}",
            organisation_id=org.id,
            payload={"worker": worker, **approvals.approved_plan(session, run)},
        )
        session.commit()
    except IntegrityError:  # another worker locked a host between our check and insert
        session.rollback()
        _fail_locked_race(session, run_id)
        return None
    return run


def _lock_hosts(session: Session, run: Run, now: datetime) -> str | None:
    """Take every host's lock, or the message naming who holds one.

    The organisation's locks are few (the hosts of the applies running now), so they are
    read whole and matched here; the run's own are written by one INSERT ... SELECT.
    (10,000 ORM objects and IN lists of 10,000 names took a second at 10,000 hosts.)"""
    wanted = set(run.hosts)
    held = session.execute(
        select(HostLock.host_id, HostLock.run_id, HostLock.expires_at, Host.name)
        .join(Host, Host.id == HostLock.host_id)  # type: ignore[arg-type]
        .where(Host.organisation_id == run.organisation_id)
        .order_by(Host.name)
    ).all()
    expired = []
    for host_id, holder, expires_at, name in held:
        if name not in wanted:
            continue
        if expires_at > now and holder != run.id:
            return f"host {name} is being applied by run {holder}"
        expired.append(host_id)  # its holder is gone
    if expired:
        session.execute(delete(HostLock).where(col(HostLock.host_id).in_(expired)))
    locks = HostLock.__table__.c  # type: ignore[attr-defined]
    session.execute(
        insert(HostLock.__table__).from_select(  # type: ignore[attr-defined]
            ["host_id", "run_id", "expires_at"],
            select(
                col(Host.id),
                bindparam("run_id", run.id, type_=locks.run_id.type),
                bindparam(
                    "expires_at", now + timedelta(seconds=LOCK_SECONDS), type_=locks.expires_at.type
                ),
            ).where(
                Host.organisation_id == run.organisation_id,
                _among(session, col(Host.name), run.hosts),
            ),
        )
    )
    return None


def _among(session: Session, column: Any, names: list[str]) -> Any:
    """`column` IN `names`, the names passed as one array or JSON parameter: 10,000
    bound parameters cost more to compile and bind than the statement takes to run."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("names", names, type_=ARRAY(String)))
    listed = func.json_each(bindparam("names", json.dumps(names))).table_valued("value")
    return column.in_(select(listed.c.value))


def _refuse(session: Session, run: Run, org: Organisation, reason: str) -> None:
    session.rollback()
    fresh = found(session.get(Run, run.id), f"run {run.id}")
    fresh.status, fresh.finished_at, fresh.error = RunStatus.failed, utcnow(), reason
    session.add(fresh)
    audit.record(
        session,
        actor=system_actor("executor"),
        action="run.refused",
        subject=f"run:{org.name}/{run.id}",
        organisation_id=org.id,
        payload={"reason": reason},
    )
    session.commit()


def _fail_locked_race(session: Session, run_id: uuid.UUID) -> None:
    run = session.get(Run, run_id)
    org = session.get(Organisation, run.organisation_id) if run else None
    if run is not None and org is not None and run.status is RunStatus.queued:
        _refuse(
            session, run, org, "a host of this run was locked by another apply at the same moment"
        )
    return None


def heartbeat(session: Session, *, run_id: uuid.UUID) -> bool:
    """Renew a running run's heartbeat and host locks; whether cancellation was asked."""
    now = utcnow()
    session.execute(update(Run).where(col(Run.id) == run_id).values(heartbeat_at=now))
    session.execute(
        update(HostLock)
        .where(col(HostLock.run_id) == run_id)
        .values(expires_at=now + timedelta(seconds=LOCK_SECONDS))
    )
    cancel = session.exec(select(Run.cancel_requested).where(Run.id == run_id)).first()
    session.commit()
    return bool(cancel)


EVENT_COLUMNS = tuple(c.name for c in RunEvent.__table__.columns)  # type: ignore[attr-defined]


def write_events(session: Session, *, run_id: uuid.UUID, rows: list[dict[str, Any]]) -> None:
    """Store a batch of events in one transaction.

    A Core executemany on the table, and COPY on PostgreSQL: the ORM's bulk insert of
    these rows ran one statement per row (bench/event_ingest.py: 1,300 events/s on
    PostgreSQL and 5,000/s on SQLite that way, under the 10,000/s target).
    """
    if session.get_bind().dialect.name == "postgresql":
        _copy_events(session, rows)
    else:
        session.execute(insert(RunEvent.__table__), rows)  # type: ignore[attr-defined]
    session.execute(update(Run).where(col(Run.id) == run_id).values(event_count=rows[-1]["seq"]))
    session.commit()


def _copy_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """COPY `rows` into run_event, in the session's transaction (psycopg 3)."""
    from psycopg.types.json import Json

    names = [name for name in EVENT_COLUMNS if name in rows[0]]
    for row in rows:
        created = row.get("created_at")
        if created is not None and created.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
    cursor = session.connection().connection.cursor()
    with cursor.copy(f"COPY run_event ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([Json(row[n]) if n == "data" else row[n] for n in names])


def finish_run(
    session: Session,
    *,
    run_id: uuid.UUID,
    status: RunStatus,
    rc: int | None,
    recap: dict[str, dict[str, int]],
    stdout_sha256: str | None,
    error: str | None = None,
) -> Run:
    """Record how a run ended, release its locks, and audit the outcome per host."""
    run = found(session.get(Run, run_id), f"run {run_id}")
    org = found(session.get(Organisation, run.organisation_id), "the run's organisation")
    run.status, run.rc, run.recap, run.finished_at = status, rc, recap, utcnow()
    run.stdout_sha256, run.error = stdout_sha256, error
    session.add(run)
    host_state.record_run(session, run=run)
    session.execute(delete(HostLock).where(col(HostLock.run_id) == run_id))
    audit.record(
        session,
        actor=system_actor(run.worker or "executor"),
        action="run.finish",
        subject=f"run:{org.name}/{run.id}",
        organisation_id=org.id,
        payload={
            "status": status,
            "rc": rc,
            "recap": recap,
            "definitions": run.definitions,
            "stdout": {"sha256": stdout_sha256},
            "error": error,
        },
    )
    notifications.run_finished(session, run, org.name)
    session.commit()
    return run


def reap_stale_runs(
    session: Session, *, worker_prefix: str | None = None, stale_seconds: int = STALE_SECONDS
) -> list[uuid.UUID]:
    """Fail runs whose worker stopped renewing their heartbeat (or, with `worker_prefix`,
    every running run of that worker: a restarted embedded executor), releasing locks."""
    cutoff = utcnow() - timedelta(seconds=stale_seconds)
    query = select(Run).where(Run.status == RunStatus.running)
    if worker_prefix is not None:
        query = query.where(col(Run.worker).startswith(worker_prefix))
    else:
        query = query.where(col(Run.heartbeat_at) < cutoff)
    reaped = []
    for run in session.exec(query).all():
        seen = run.heartbeat_at.isoformat() if run.heartbeat_at else "never"
        finish_run(
            session,
            run_id=run.id,
            status=RunStatus.failed,
            rc=None,
            recap=run.recap,
            stdout_sha256=None,
            error=f"the worker {run.worker} was lost (last heartbeat {seen}); the run was stopped",
        )
        reaped.append(run.id)
    return reaped


def queued_runs(session: Session) -> list[uuid.UUID]:
    """Runs waiting for an executor, oldest first."""
    return list(
        session.exec(
            select(Run.id).where(Run.status == RunStatus.queued).order_by(col(Run.created_at))
        )
    )


def enabled_modules_of(session: Session, *, organisation_id: uuid.UUID) -> Iterable[str]:
    """The modules an organisation has enabled."""
    return session.exec(
        select(EnabledModule.name).where(EnabledModule.organisation_id == organisation_id)
    )
