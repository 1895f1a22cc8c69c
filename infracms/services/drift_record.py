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
from typing import Any

from sqlmodel import Session, col, select

from infracms.models.definition import Definition
from infracms.models.host import Host, HostGroup, HostGroupLink
from infracms.models.organisation import Organisation
from infracms.models.run import HostOutcome, Run, RunEvent, RunKind
from infracms.models.schedule import DriftState, HostDrift
from infracms.modules.render import HOST_DEPTH, group_distances
from infracms.services import audit, rendering
from infracms.services.context import system_actor

GOOD = (HostOutcome.ok, HostOutcome.changed)
Item = tuple[str, str, Any]  # (definition, task, diff)


def record(
    session: Session,
    run: Run,
    hosts: Mapping[str, uuid.UUID],
    outcomes: Mapping[str, HostOutcome],
    applied: set[uuid.UUID],
) -> None:
    """Update the drift of the hosts `run` reached (`outcomes`: {host: how it went});
    `applied`: the hosts an apply has ever succeeded on (only theirs is audited)."""
    if run.finished_at is None or not outcomes:
        return
    rows = _drift_rows(session, [hosts[name] for name in outcomes])
    audited = _Audit(session, run)
    if run.kind is RunKind.apply:
        for name, outcome in outcomes.items():
            row = rows.get(hosts[name])
            if row is not None and outcome in GOOD:
                _applied(row, run, audited, name)
        return
    items = _changed_items(session, run, list(outcomes))
    for name, outcome in outcomes.items():
        host_id = hosts[name]
        row = rows.get(host_id) or HostDrift(
            host_id=host_id,
            organisation_id=run.organisation_id,
            state=DriftState.in_sync,
            checked_at=run.finished_at,
        )
        _checked(row, run, outcome, items.get(name, []), audited, name, host_id in applied)
        session.add(row)


def _drift_rows(session: Session, host_ids: list[uuid.UUID]) -> dict[uuid.UUID, HostDrift]:
    query = select(HostDrift).where(col(HostDrift.host_id).in_(host_ids))
    return {row.host_id: row for row in session.exec(query)}


def _checked(
    row: HostDrift,
    run: Run,
    outcome: HostOutcome,
    items: list[Item],
    audited: _Audit,
    host: str,
    was_applied: bool,
) -> None:
    """What a plan found on one host."""
    when = run.finished_at or row.checked_at
    row.checked_at, row.run_id = when, run.id
    if outcome in (HostOutcome.failed, HostOutcome.unreachable, HostOutcome.not_reached):
        row.state = (
            DriftState.unreachable if outcome is HostOutcome.unreachable else (DriftState.failed)
        )
        return  # what drifted before is still what we know
    checked = {str(d["name"]) for d in run.definitions}
    kept = [t for t in _tasks_of(row) if t[0] not in checked]  # not looked at this time
    tasks = sorted({(d, t) for d, t, _ in items} | set(kept))
    before = row.digest if row.state is DriftState.drifted else None
    if not tasks:
        row.state, row.definitions, row.tasks, row.digest, row.since = (
            DriftState.in_sync,
            [],
            [],
            None,
            None,
        )
        _unacknowledge(row)
        if before is not None and was_applied:
            audited.cleared(host, row, "a plan found nothing to change")
        return
    digest = _digest(items, row.digest if kept else None)
    row.state, row.tasks = DriftState.drifted, [f"{d}: {t}" for d, t in tasks]
    row.definitions = sorted({d for d, _ in tasks})
    if digest != before:
        row.digest, row.since = digest, when
        _unacknowledge(row)
        if was_applied:
            audited.found(host, row)


def _applied(row: HostDrift, run: Run, audited: _Audit, host: str) -> None:
    """A good apply made the host match the definitions it applied."""
    if row.state is not DriftState.drifted:
        return
    done = {str(d["name"]) for d in run.definitions}
    kept = [t for t in _tasks_of(row) if t[0] not in done]
    if kept:
        row.tasks = [f"{d}: {t}" for d, t in kept]
        row.definitions = sorted({d for d, _ in kept})
    else:
        row.state, row.definitions, row.tasks, row.digest, row.since = (
            DriftState.in_sync,
            [],
            [],
            None,
            None,
        )
        _unacknowledge(row)
        audited.cleared(host, row, f"applied by run {run.id}")
    audited.session.add(row)


def _tasks_of(row: HostDrift) -> list[tuple[str, str]]:
    return [tuple(t.split(": ", 1)) for t in row.tasks if ": " in t]  # type: ignore[misc]


def _unacknowledge(row: HostDrift) -> None:
    row.acknowledged_by = row.acknowledged_at = row.acknowledged_reason = None


def _digest(items: Iterable[Item], carried: str | None) -> str:
    """SHA-256 over the sorted (definition, task, diff) triples as compact JSON."""
    text = json.dumps(
        sorted(items, key=lambda i: (i[0], i[1], json.dumps(i[2], sort_keys=True))),
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
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

    def found(self, host: str, row: HostDrift) -> None:
        """Drift found (or changed) on `host`: audited; a "drift found" notification goes here."""
        self._record("drift.found", host, row, {"tasks": len(row.tasks)})

    def cleared(self, host: str, row: HostDrift, why: str) -> None:
        """Drift cleared on `host`: audited; a "drift cleared" notification goes here."""
        self._record("drift.cleared", host, row, {"why": why})

    def _record(self, action: str, host: str, row: HostDrift, extra: dict[str, Any]) -> None:
        audit.record(
            self.session,
            actor=self.actor,
            action=action,
            subject=f"host:{self.org()}/{host}",
            organisation_id=self.run.organisation_id,
            payload={
                "host": host,
                "definitions": row.definitions,
                "digest": row.digest,
                "run": str(self.run.id),
                **extra,
            },
        )


def _changed_items(session: Session, run: Run, hosts: list[str]) -> dict[str, list[Item]]:
    """{host: [(definition, task, diff)]} from the run's changed events."""
    query = select(RunEvent.host, RunEvent.task, RunEvent.data).where(
        RunEvent.run_id == run.id, col(RunEvent.changed).is_(True)
    )
    events = session.exec(query).all()
    if not events:
        return {}
    owner = _Owners(session, run, hosts)
    found: dict[str, list[Item]] = defaultdict(list)
    for host, task, data in events:
        if host is None:
            continue
        role = data.get("role") if isinstance(data, dict) else None
        for definition in owner.of(host, role):
            found[host].append((definition, str(task or ""), data.get("diff")))
    return found


class _Owners:
    """Which of the run's definitions a task of a module's role on a host belongs to: the
    module's definition nearest the host (ties: each of them)."""

    def __init__(self, session: Session, run: Run, hosts: list[str]) -> None:
        names = [str(d["name"]) for d in run.definitions]
        self.module_of = {str(d["name"]): str(d.get("module", "")) for d in run.definitions}
        self.targets = _targets(session, run.organisation_id, names)
        self.groups = _groups_of(session, run.organisation_id, hosts)
        self.distances = group_distances(rendering.group_parents(session, run.organisation_id))
        self.memo: dict[tuple[str | None, tuple[str, ...], str | None], list[str]] = {}

    def of(self, host: str, role: str | None) -> list[str]:
        groups = self.groups.get(host, ())
        own = host if any(kind == "host" and t == host for kind, t, _ in self.targets) else None
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
