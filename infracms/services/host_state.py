"""Where each host stands after its last run: written when a run finishes.

One row per host (``HostRunState``): the last run, its outcome on the host, and what the
host's last successful apply applied ({definition: revision}). The dashboard reads these
rows instead of walking every run's recap.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Text, cast, func
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from infracms.models.definition import Definition
from infracms.models.host import Host, HostGroup, HostGroupLink
from infracms.models.run import HostOutcome, HostRunState, Run, RunKind, RunStatus
from infracms.models.schedule import DriftState, HostDrift
from infracms.modules.render import HostRow, group_distances
from infracms.services import drift_record, rendering

GOOD = (HostOutcome.ok, HostOutcome.changed)


def outcome_on(recap: Mapping[str, Mapping[str, int]], host: str) -> HostOutcome:
    """How a run went on `host`, from its recap (ansible's per-host counters)."""
    counts = recap.get(host)
    if counts is None:
        return HostOutcome.not_reached
    if counts.get("unreachable"):
        return HostOutcome.unreachable
    if counts.get("failed"):
        return HostOutcome.failed
    if counts.get("changed"):
        return HostOutcome.changed
    return HostOutcome.ok


def record_run(session: Session, run: Run) -> None:
    """Update the state of every host `run` was for (in the caller's transaction)."""
    if not run.hosts or run.finished_at is None:
        return
    hosts = _host_ids(session, run.organisation_id, run.hosts)
    _create_missing(session, run, list(hosts.values()))
    states = _states(session, list(hosts.values()))
    applied = {str(d["name"]): int(d["revision"]) for d in run.definitions}
    outcomes: dict[str, HostOutcome] = {}
    ever_applied = {h for h, state in states.items() if state.applied_at is not None}
    for name, host_id in hosts.items():
        outcome = outcome_on(run.recap, name)
        if run.status is RunStatus.cancelled and outcome is HostOutcome.not_reached:
            continue  # a run cancelled before it reached the host says nothing about it
        outcomes[name] = outcome
        state = states[host_id]
        state.last_run_id, state.last_kind = run.id, run.kind
        state.last_outcome, state.last_run_at = outcome, run.finished_at
        if run.kind is RunKind.apply and outcome in GOOD:
            state.applied = {**state.applied, **applied}
            state.applied_at = run.finished_at
        session.add(state)
    drift_record.record(session, run, hosts, outcomes, ever_applied)


def _host_ids(
    session: Session, organisation_id: uuid.UUID, names: list[str]
) -> dict[str, uuid.UUID]:
    rows = session.exec(
        select(Host.name, Host.id).where(
            Host.organisation_id == organisation_id, col(Host.name).in_(names)
        )
    )
    return dict(rows.all())


def _create_missing(session: Session, run: Run, host_ids: list[uuid.UUID]) -> None:
    """A row for each host that has none, made so that two runs ending at once for the
    same new host do not both insert it (the second one's insert does nothing)."""
    if not host_ids:
        return
    postgres = session.get_bind().dialect.name == "postgresql"
    insert = postgresql_insert if postgres else sqlite_insert
    rows: list[dict[str, object]] = [
        {
            "host_id": host_id,
            "organisation_id": run.organisation_id,
            "last_kind": run.kind,
            "last_outcome": HostOutcome.not_reached,
            "last_run_at": run.finished_at,
            "applied": {},
        }
        for host_id in host_ids
    ]
    # one statement executed for many rows: a VALUES list of a thousand rows took longer
    # to compile than to run
    session.execute(insert(HostRunState).on_conflict_do_nothing(), rows)


def _states(session: Session, host_ids: list[uuid.UUID]) -> dict[uuid.UUID, HostRunState]:
    """The hosts' rows, locked until the transaction ends (PostgreSQL; SQLite's writers
    are one at a time already)."""
    if not host_ids:
        return {}
    query = select(HostRunState).where(col(HostRunState.host_id).in_(host_ids))
    rows = session.exec(query.with_for_update())
    return {state.host_id: state for state in rows}


STANDINGS = {
    "unreachable": "hosts the last run could not reach",
    "failed": "hosts whose last run failed",
    "drifted": "hosts whose last drift check found changes (not acknowledged)",
    "out_of_date": "hosts out of date with their definitions",
    "never_applied": "hosts never applied",
    "no_key": "hosts with no pinned key",
}


@dataclass
class Standing:
    """An organisation's hosts sorted by what needs doing: {standing: host names}."""

    total: int
    hosts: dict[str, list[str]]


def standing(session: Session, organisation_id: uuid.UUID) -> Standing:
    """Which hosts of the organisation stand where (see ``STANDINGS``), in three queries.

    A host is out of date when a live definition that reaches it has a published revision
    other than the one its last good apply applied; never applied when a definition reaches
    it and no apply has succeeded on it. What reaches a host through its groups is worked
    out once per distinct set of groups."""
    hosts, states, keyless = _hosts_and_states(session, organisation_id)
    on_host, on_groups = _expected(session, organisation_id)
    found: dict[str, list[str]] = {key: [] for key in STANDINGS}
    found["drifted"] = drifted_hosts(session, organisation_id)
    for host in hosts:
        expected = on_groups(host.groups)
        if host.name in on_host:
            expected = {**expected, **on_host[host.name]}
        for key in _standings(states.get(host.name), expected, host.name in keyless):
            found[key].append(host.name)
    return Standing(total=len(hosts), hosts=found)


def drifted_hosts(session: Session, organisation_id: uuid.UUID) -> list[str]:
    """The hosts whose last check found drift that nobody has acknowledged, by name."""
    query = (
        select(Host.name)
        .join(HostDrift, HostDrift.host_id == Host.id)  # type: ignore[arg-type]
        .where(
            HostDrift.organisation_id == organisation_id,
            HostDrift.state == DriftState.drifted,
            col(HostDrift.acknowledged_at).is_(None),
        )
        .order_by(Host.name)
    )
    return list(session.exec(query))


class _State(NamedTuple):
    outcome: HostOutcome
    applied: dict[str, int] | None  # None: no apply has succeeded on the host


def _standings(state: _State | None, expected: dict[str, int], no_key: bool) -> list[str]:
    keys = ["no_key"] if no_key else []
    if state is not None and state.outcome in (HostOutcome.unreachable, HostOutcome.failed):
        keys.append(state.outcome.name)
    if expected and (state is None or state.applied is None):
        keys.append("never_applied")
    elif state and state.applied and any(state.applied.get(d) != r for d, r in expected.items()):
        keys.append("out_of_date")
    return keys


def _expected(
    session: Session, organisation_id: uuid.UUID
) -> tuple[dict[str, dict[str, int]], Callable[[tuple[str, ...]], dict[str, int]]]:
    """The published revisions expected on hosts: {host: {definition: revision}} for the
    definitions on single hosts, and for a host's groups a function (cached per set of
    groups) giving those of the definitions on the groups or the groups above them."""
    distances = group_distances(rendering.group_parents(session, organisation_id))
    query = (
        select(Definition.name, func.coalesce(Definition.published, 0), Host.name, HostGroup.name)
        .outerjoin(Host, Host.id == Definition.host_id)  # type: ignore[arg-type]
        .outerjoin(HostGroup, HostGroup.id == Definition.group_id)  # type: ignore[arg-type]
        .where(
            Definition.organisation_id == organisation_id,
            col(Definition.retired_at).is_(None),
            col(Definition.published).is_not(None),
        )
    )
    on_host: dict[str, dict[str, int]] = {}
    on_group: dict[str, dict[str, int]] = {}
    for name, published, host, group in session.exec(query).all():
        if host:
            on_host.setdefault(host, {})[name] = published
        else:
            on_group.setdefault(group, {})[name] = published

    @functools.cache
    def on_groups(groups: tuple[str, ...]) -> dict[str, int]:
        found: dict[str, int] = {}
        for direct in groups:
            for group in distances.get(direct, {direct: 0}):
                found.update(on_group.get(group, {}))
        return found

    return on_host, on_groups


def _hosts_and_states(
    session: Session, organisation_id: uuid.UUID
) -> tuple[list[HostRow], dict[str, _State], set[str]]:
    """The hosts (with their groups) by name, their states, and those with no pinned key.

    Hosts share few distinct applied maps: each is read as text and decoded once."""
    query = (
        select(  # type: ignore[call-overload]
            Host.name,
            col(Host.host_key).is_(None),
            HostRunState.last_outcome,
            HostRunState.applied_at,
            cast(HostRunState.applied, Text),
            HostGroup.name,
        )
        .outerjoin(HostRunState, HostRunState.host_id == Host.id)
        .outerjoin(HostGroupLink, HostGroupLink.host_id == Host.id)
        .outerjoin(HostGroup, HostGroup.id == HostGroupLink.group_id)
        .where(Host.organisation_id == organisation_id)
        .order_by(Host.name)
    )
    groups: dict[str, list[str]] = {}
    states: dict[str, _State] = {}
    keyless: set[str] = set()
    decoded: dict[str, dict[str, int]] = {}
    for name, no_key, outcome, applied_at, applied, group in session.execute(query):
        if name not in groups:
            groups[name] = []
            if no_key:
                keyless.add(name)
            if outcome is not None:
                if applied_at is not None and applied not in decoded:
                    decoded[applied] = json.loads(applied)
                states[name] = _State(outcome, decoded[applied] if applied_at else None)
        if group is not None:
            groups[name].append(group)
    hosts = [HostRow(name, tuple(names)) for name, names in groups.items()]
    return hosts, states, keyless
