"""Where each host stands after its last run: written when a run finishes.

One row per host (``HostRunState``): the last run, its outcome on the host, and what the
host's last successful apply applied ({definition: revision}). The dashboard reads these
rows instead of walking every run's recap.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
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
from infracms.services import drift_record

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


def record_run(session: Session, *, run: Run) -> None:
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


def standing(session: Session, *, organisation_id: uuid.UUID) -> Standing:
    """Which hosts of the organisation stand where (see ``STANDINGS``), in three queries."""
    return standings(session, organisation_ids=[organisation_id])[organisation_id]


def standings(
    session: Session, *, organisation_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Standing]:
    """Where each organisation's hosts stand, in three queries whatever the number of
    organisations and hosts.

    A host is out of date when a live definition that reaches it has a published revision
    other than the one its last good apply applied; never applied when a definition reaches
    it and no apply has succeeded on it. What reaches a host through its groups is worked
    out once per organisation and distinct set of groups."""
    if not organisation_ids:
        return {}
    hosts = _hosts_and_states(session, organisation_ids)
    expected = _expected(session, organisation_ids)
    drifted = _drifted(session, organisation_ids)
    return {
        org: _standing(hosts.get(org, _NO_HOSTS), drifted.get(org, []), *expected[org])
        for org in organisation_ids
    }


def _standing(
    hosts: _Hosts,
    drifted: list[str],
    on_host: dict[str, dict[str, int]],
    on_groups: Callable[[tuple[str, ...]], dict[str, int]],
) -> Standing:
    found: dict[str, list[str]] = {key: [] for key in STANDINGS}
    found["drifted"] = drifted
    for host in hosts.rows:
        expected = on_groups(host.groups)
        if host.name in on_host:
            expected = {**expected, **on_host[host.name]}
        for key in _standings(hosts.states.get(host.name), expected, host.name in hosts.keyless):
            found[key].append(host.name)
    return Standing(total=len(hosts.rows), hosts=found)


def drifted_hosts(session: Session, organisation_id: uuid.UUID) -> list[str]:
    """The hosts whose last check found drift that nobody has acknowledged, by name."""
    return _drifted(session, [organisation_id]).get(organisation_id, [])


def _drifted(session: Session, organisation_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """{organisation: its drifted hosts not acknowledged, by name}, in one query."""
    query = (
        select(HostDrift.organisation_id, Host.name)
        .join(Host, HostDrift.host_id == Host.id)  # type: ignore[arg-type]
        .where(
            col(HostDrift.organisation_id).in_(organisation_ids),
            HostDrift.state == DriftState.drifted,
            col(HostDrift.acknowledged_at).is_(None),
        )
        .order_by(Host.name)
    )
    found: dict[uuid.UUID, list[str]] = {}
    for organisation_id, name in session.exec(query):
        found.setdefault(organisation_id, []).append(name)
    return found


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
    session: Session, organisation_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[dict[str, dict[str, int]], Callable[[tuple[str, ...]], dict[str, int]]]]:
    """Per organisation, the published revisions expected on its hosts: {host: {definition:
    revision}} for the definitions on single hosts, and for a host's groups a function
    (cached per set of groups) giving those of the definitions on the groups or the groups
    above them."""
    parents = _group_parents(session, organisation_ids)
    query = (
        select(  # type: ignore[call-overload]
            Definition.organisation_id,
            Definition.name,
            func.coalesce(Definition.published, 0),
            Host.name,
            HostGroup.name,
        )
        .outerjoin(Host, Host.id == Definition.host_id)
        .outerjoin(HostGroup, HostGroup.id == Definition.group_id)
        .where(
            col(Definition.organisation_id).in_(organisation_ids),
            col(Definition.retired_at).is_(None),
            col(Definition.published).is_not(None),
        )
    )
    on_host: dict[uuid.UUID, dict[str, dict[str, int]]] = {org: {} for org in organisation_ids}
    on_group: dict[uuid.UUID, dict[str, dict[str, int]]] = {org: {} for org in organisation_ids}
    for org, name, published, host, group in session.exec(query).all():
        if host:
            on_host[org].setdefault(host, {})[name] = published
        else:
            on_group[org].setdefault(group, {})[name] = published
    return {
        org: (on_host[org], _on_groups(group_distances(parents.get(org, {})), on_group[org]))
        for org in organisation_ids
    }


def _on_groups(
    distances: Mapping[str, Mapping[str, int]], on_group: dict[str, dict[str, int]]
) -> Callable[[tuple[str, ...]], dict[str, int]]:
    @functools.cache
    def on_groups(groups: tuple[str, ...]) -> dict[str, int]:
        found: dict[str, int] = {}
        for direct in groups:
            for group in distances.get(direct, {direct: 0}):
                found.update(on_group.get(group, {}))
        return found

    return on_groups


def _group_parents(
    session: Session, organisation_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, str | None]]:
    """{organisation: {group: its parent group, or None}} (``rendering.group_parents`` for
    several organisations at once)."""
    groups = session.exec(
        select(HostGroup.organisation_id, HostGroup.id, HostGroup.name, HostGroup.parent_id).where(
            col(HostGroup.organisation_id).in_(organisation_ids)
        )
    ).all()
    names = {group_id: name for _, group_id, name, _ in groups}
    found: dict[uuid.UUID, dict[str, str | None]] = {}
    for org, _, name, parent in groups:
        found.setdefault(org, {})[name] = names[parent] if parent else None
    return found


class _Hosts(NamedTuple):
    rows: list[HostRow]  # by name, with their groups
    states: dict[str, _State]
    keyless: set[str]  # no pinned key


_NO_HOSTS = _Hosts([], {}, set())


def _hosts_and_states(
    session: Session, organisation_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, _Hosts]:
    """Per organisation, the hosts (with their groups) by name, their states, and those with
    no pinned key.

    Hosts share few distinct applied maps: each is read as text and decoded once."""
    query = (
        select(  # type: ignore[call-overload]
            Host.organisation_id,
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
        .where(col(Host.organisation_id).in_(organisation_ids))
        .order_by(Host.organisation_id, Host.name)
    )
    groups: dict[uuid.UUID, dict[str, list[str]]] = {}
    found: dict[uuid.UUID, _Hosts] = {}
    decoded: dict[str, dict[str, int]] = {}
    for org, name, no_key, outcome, applied_at, applied, group in session.execute(query):
        if org not in found:
            groups[org], found[org] = {}, _Hosts([], {}, set())
        hosts = found[org]
        if name not in groups[org]:
            groups[org][name] = []
            if no_key:
                hosts.keyless.add(name)
            if outcome is not None:
                if applied_at is not None and applied not in decoded:
                    decoded[applied] = json.loads(applied)
                hosts.states[name] = _State(outcome, decoded[applied] if applied_at else None)
        if group is not None:
            groups[org][name].append(group)
    for org, hosts in found.items():
        hosts.rows.extend(HostRow(name, tuple(names)) for name, names in groups[org].items())
    return found
