"""Drift, written when a run finishes: what a plan found would change on each host.

A plan's changed events name, per host, the tasks that would change and their diffs;
each task belongs to a module's role, and so to the definition of that module that
reaches the host (the host's own, else the one on its nearest group). A host is then in
sync, drifted (those definitions and tasks, with a digest of the diffs), failed or
unreachable. A good apply of definitions makes the host match them: their drift ends.

Drift found (or changed) and drift cleared on a host that has been applied are audit
entries; they are also where a "drift found" / "drift cleared" notification belongs
(``_found`` and ``_cleared`` below). Everything happens in the finishing run's transaction.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, Text, bindparam, cast, func, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from infracms.models.definition import Definition
from infracms.models.host import Host, HostGroup, HostGroupLink
from infracms.models.notification import NotificationKind
from infracms.models.organisation import Organisation
from infracms.models.run import HostOutcome, Run, RunEvent, RunKind
from infracms.models.schedule import DriftState, HostDrift
from infracms.modules.render import HOST_DEPTH, group_distances
from infracms.services import audit, notifications, rendering
from infracms.services.context import system_actor

GOOD = (HostOutcome.ok, HostOutcome.changed)
Item = tuple[str, str, str | None]  # (definition, task, diff as JSON text)


def record(
    session: Session,
    run: Run,
    hosts: Mapping[str, uuid.UUID],
    outcomes: Mapping[str, HostOutcome],
    applied: set[uuid.UUID],
) -> None:
    """Update the drift of the hosts `run` reached (`outcomes`: {host: how it went});
    `applied`: the hosts an apply has ever succeeded on (only theirs is audited).

    Rows are read and written with Core statements (one select, one executemany each way):
    building a thousand ORM objects cost more than everything else together."""
    if run.finished_at is None or not outcomes:
        return
    rows = _load(session, [hosts[name] for name in outcomes])
    audited = _Audit(session, run)
    if run.kind is RunKind.apply:
        for name, outcome in outcomes.items():
            row = rows.get(hosts[name])
            if row is not None and outcome in GOOD:
                _applied(row, run, audited, name)
    else:
        items = _changed_items(session, run, list(outcomes))
        for name, outcome in outcomes.items():
            host_id = hosts[name]
            row = rows.get(host_id)
            if row is None:
                row = rows[host_id] = _Row(host_id, run.organisation_id, new=True)
            _checked(row, run, outcome, items.get(name, []), audited, name, host_id in applied)
    _store(session, list(rows.values()))


@dataclass
class _Row:
    """A host_drift row being worked on (the table's columns, and whether it is new)."""

    host_id: uuid.UUID
    organisation_id: uuid.UUID
    state: DriftState = DriftState.in_sync
    checked_at: datetime | None = None
    run_id: uuid.UUID | None = None
    definitions: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    digest: str | None = None
    since: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_reason: str | None = None
    new: bool = False
    changed: bool = False  # checked or changed by this run
    loaded: tuple[Any, ...] = ()  # the content as read


TABLE: Table = HostDrift.__table__  # type: ignore[attr-defined]
COLUMNS = [column.name for column in TABLE.columns]


CONTENT = [name for name in COLUMNS if name not in ("host_id", "checked_at", "run_id")]


def _load(session: Session, host_ids: list[uuid.UUID]) -> dict[uuid.UUID, _Row]:
    query = sa_select(TABLE).where(TABLE.c.host_id.in_(host_ids))
    rows = {row.host_id: _Row(**row._mapping) for row in session.execute(query)}
    for row in rows.values():
        row.loaded = _content(row)
    return rows


def _content(row: _Row) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in CONTENT)


def _store(session: Session, rows: list[_Row]) -> None:
    """New rows inserted, changed rows updated (one executemany each); rows only checked
    again, as most are, get their check time and run in one statement."""
    changed = [row for row in rows if row.changed and (row.new or _content(row) != row.loaded)]
    values = [{name: getattr(row, name) for name in COLUMNS} for row in changed]
    inserts = [v for row, v in zip(changed, values, strict=True) if row.new]
    updates = [
        {**v, "key": v["host_id"]} for row, v in zip(changed, values, strict=True) if not row.new
    ]
    written = {row.host_id for row in changed}
    again = [row for row in rows if row.changed and row.host_id not in written]
    if again:
        _checked_again(session, again)
    if inserts:
        session.execute(insert(TABLE), inserts)
    if updates:
        fields: dict[str, Any] = {n: bindparam(n) for n in COLUMNS if n != "host_id"}
        statement = update(TABLE).where(TABLE.c.host_id == bindparam("key")).values(fields)
        session.execute(statement, updates)


def _checked_again(session: Session, rows: list[_Row]) -> None:
    by_check: dict[tuple[Any, Any], list[uuid.UUID]] = defaultdict(list)
    for row in rows:
        by_check[(row.checked_at, row.run_id)].append(row.host_id)
    for (checked_at, run_id), host_ids in by_check.items():
        session.execute(
            update(TABLE)
            .where(TABLE.c.host_id.in_(host_ids))
            .values(checked_at=checked_at, run_id=run_id)
        )


def _checked(
    row: _Row,
    run: Run,
    outcome: HostOutcome,
    items: list[Item],
    audited: _Audit,
    host: str,
    was_applied: bool,
) -> None:
    """What a plan found on one host."""
    when = run.finished_at
    row.checked_at, row.run_id, row.changed = when, run.id, True
    if outcome in (HostOutcome.failed, HostOutcome.unreachable, HostOutcome.not_reached):
        unreachable = outcome is HostOutcome.unreachable
        row.state = DriftState.unreachable if unreachable else DriftState.failed
        return  # what drifted before is still what we know
    checked = {str(d["name"]) for d in run.definitions}
    kept = [t for t in _tasks_of(row) if t[0] not in checked]  # not looked at this time
    tasks = sorted({(d, t) for d, t, _ in items} | set(kept))
    before = row.digest if row.state is DriftState.drifted else None
    if not tasks:
        drifted = row.definitions
        _in_sync(row)
        if before is not None and was_applied:
            audited.cleared(host, drifted, before, "a plan found nothing to change")
        return
    digest = _digest(items, row.digest if kept else None)
    row.state, row.tasks = DriftState.drifted, [f"{d}: {t}" for d, t in tasks]
    row.definitions = sorted({d for d, _ in tasks})
    if digest != before:
        row.digest, row.since = digest, when
        _unacknowledge(row)
        if was_applied:
            audited.found(host, row)


def _applied(row: _Row, run: Run, audited: _Audit, host: str) -> None:
    """A good apply made the host match the definitions it applied."""
    if row.state is not DriftState.drifted:
        return
    row.changed = True
    done = {str(d["name"]) for d in run.definitions}
    kept = [t for t in _tasks_of(row) if t[0] not in done]
    if kept:
        row.tasks = [f"{d}: {t}" for d, t in kept]
        row.definitions = sorted({d for d, _ in kept})
        return
    drifted, before = row.definitions, row.digest
    _in_sync(row)
    audited.cleared(host, drifted, before, f"applied by run {run.id}")


def _in_sync(row: _Row) -> None:
    row.state, row.definitions, row.tasks, row.digest, row.since = (
        DriftState.in_sync,
        [],
        [],
        None,
        None,
    )
    _unacknowledge(row)


def _tasks_of(row: _Row) -> list[tuple[str, str]]:
    return [tuple(t.split(": ", 1)) for t in row.tasks if ": " in t]  # type: ignore[misc]


def _unacknowledge(row: _Row) -> None:
    row.acknowledged_by = row.acknowledged_at = row.acknowledged_reason = None


def _digest(items: Iterable[Item], carried: str | None) -> str:
    """SHA-256 over the (definition, task, diff) triples as compact JSON, sorted by
    definition and task (events in their order within one task)."""
    ordered = sorted(items, key=lambda item: (item[0], item[1]))
    text = json.dumps(ordered, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(((carried or "") + text).encode()).hexdigest()


class _Audit:
    """The audit entries of drift found and cleared (and where their notifications go)."""

    def __init__(self, session: Session, run: Run) -> None:
        self.session, self.run = session, run
        self.actor = system_actor("drift")
        self._org: str | None = None

    def org(self) -> str:
        if self._org is None:
            org = self.session.get(Organisation, self.run.organisation_id)
            self._org = org.name if org else str(self.run.organisation_id)
        return self._org

    def found(self, host: str, row: _Row) -> None:
        """Drift found (or changed) on `host`: audited and notified."""
        extra = {"tasks": len(row.tasks)}
        self._record("drift.found", host, row.definitions, row.digest, extra)
        self._notify(NotificationKind.drift_found, host, row.definitions, row.digest)

    def cleared(self, host: str, definitions: list[str], digest: str | None, why: str) -> None:
        """Drift cleared on `host`: audited and notified."""
        self._record("drift.cleared", host, definitions, digest, {"why": why})
        self._notify(NotificationKind.drift_cleared, host, definitions, digest)

    def _notify(
        self, kind: NotificationKind, host: str, definitions: list[str], digest: str | None
    ) -> None:
        notifications.emit(
            self.session,
            organisation_id=self.run.organisation_id,
            kind=kind,
            subject=f"{kind.value.replace('.', ' ')} on {self.org()}/{host}",
            data={"host": host, "definitions": definitions, "digest": digest, "run": self.run.id},
        )

    def _record(
        self,
        action: str,
        host: str,
        definitions: list[str],
        digest: str | None,
        extra: dict[str, Any],
    ) -> None:
        audit.record(
            self.session,
            actor=self.actor,
            action=action,
            subject=f"host:{self.org()}/{host}",
            organisation_id=self.run.organisation_id,
            payload={
                "host": host,
                "definitions": definitions,
                "digest": digest,
                "run": str(self.run.id),
                **extra,
            },
        )


def _changed_items(session: Session, run: Run, hosts: list[str]) -> dict[str, list[Item]]:
    """{host: [(definition, task, diff)]} from the run's changed events."""
    events = session.execute(_changed_events(session, run.id)).all()
    if not events:
        return {}
    owner = _Owners(session, run, hosts)
    found: dict[str, list[Item]] = defaultdict(list)
    for host, task, role, diff in events:
        if host is None:
            continue
        for definition in owner.of(host, role):
            found[host].append((definition, str(task or ""), diff))
    return found


def _changed_events(session: Session, run_id: uuid.UUID) -> Any:
    """(host, task, role, diff as JSON text) of the run's changed events, in order: the
    role and diff picked out by the database, so no event's whole data is decoded here."""
    events: Table = RunEvent.__table__  # type: ignore[attr-defined]
    c = events.c
    role: Any
    diff: Any
    if session.get_bind().dialect.name == "postgresql":
        role = c.data.op("->>", return_type=Text)("role")
        diff = cast(c.data.op("->")("diff"), Text)
    else:
        role = func.json_extract(c.data, "$.role")
        diff = c.data.op("->", return_type=Text)("$.diff")
    query = sa_select(c.host, c.task, role, diff)
    return query.where(c.run_id == run_id, c.changed.is_(True)).order_by(c.seq)


class _Owners:
    """Which of the run's definitions a task of a module's role on a host belongs to: the
    module's definition nearest the host (ties: each of them)."""

    def __init__(self, session: Session, run: Run, hosts: list[str]) -> None:
        names = [str(d["name"]) for d in run.definitions]
        self.module_of = {str(d["name"]): str(d.get("module", "")) for d in run.definitions}
        self.targets = _targets(session, run.organisation_id, names)
        self.on_hosts = {target for kind, target, _ in self.targets if kind == "host"}
        self.groups = _groups_of(session, run.organisation_id, hosts)
        self.distances = group_distances(
            rendering.group_parents(session, organisation_id=run.organisation_id)
        )
        self.memo: dict[tuple[str | None, tuple[str, ...], str | None], list[str]] = {}

    def of(self, host: str, role: str | None) -> list[str]:
        groups = self.groups.get(host, ())
        own = host if host in self.on_hosts else None
        key = (own, groups, role)
        if key not in self.memo:
            self.memo[key] = self._nearest(host, groups, role)
        return self.memo[key]

    def _nearest(self, host: str, groups: tuple[str, ...], role: str | None) -> list[str]:
        near: dict[str, int] = {}
        for direct in groups:
            for group, steps in self.distances.get(direct, {direct: 0}).items():
                near[group] = min(steps, near.get(group, 1 << 30))
        by_module: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for kind, target, name in self.targets:
            if kind == "host":
                if target != host:
                    continue
                steps = HOST_DEPTH
            elif target in near:
                steps = near[target]
            else:
                continue
            module = self.module_of[name]
            if role is None or module == role:
                by_module[module].append((steps, name))
        return sorted(
            name
            for found in by_module.values()
            for steps, name in found
            if steps == min(s for s, _ in found)
        )


def _targets(
    session: Session, organisation_id: uuid.UUID, names: list[str]
) -> list[tuple[str, str, str]]:
    """(kind, target, definition) of the definitions named."""
    rows = session.exec(
        select(Definition.name, Host.name, HostGroup.name)
        .outerjoin(Host, Host.id == Definition.host_id)  # type: ignore[arg-type]
        .outerjoin(HostGroup, HostGroup.id == Definition.group_id)  # type: ignore[arg-type]
        .where(Definition.organisation_id == organisation_id, col(Definition.name).in_(names))
    )
    return [("host" if host else "group", host or group, name) for name, host, group in rows]


def _groups_of(
    session: Session, organisation_id: uuid.UUID, hosts: list[str]
) -> dict[str, tuple[str, ...]]:
    rows = session.execute(
        select(Host.name, HostGroup.name)
        .join(HostGroupLink, HostGroupLink.host_id == Host.id)  # type: ignore[arg-type]
        .join(HostGroup, HostGroup.id == HostGroupLink.group_id)  # type: ignore[arg-type]
        .where(Host.organisation_id == organisation_id)
    )
    found: dict[str, list[str]] = defaultdict(list)
    wanted = set(hosts)
    for host, group in rows:
        if host in wanted:
            found[host].append(group)
    return {host: tuple(sorted(groups)) for host, groups in found.items()}
