"""Where each host stands after its last run: written when a run finishes.

One row per host (``HostRunState``): the last run, its outcome on the host, and what the
host's last successful apply applied ({definition: revision}). The dashboard reads these
rows instead of walking every run's recap.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from infracms.models.definition import Definition
from infracms.models.host import Host, HostGroup
from infracms.models.run import HostOutcome, HostRunState, Run, RunKind, RunStatus
from infracms.modules.render import HostRow, reached
from infracms.services import rendering

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
    states = _states(session, list(hosts.values()))
    applied = {str(d["name"]): int(d["revision"]) for d in run.definitions}
    for name, host_id in hosts.items():
        outcome = outcome_on(run.recap, name)
        if run.status is RunStatus.cancelled and outcome is HostOutcome.not_reached:
            continue  # a run cancelled before it reached the host says nothing about it
        state = states.get(host_id) or HostRunState(
            host_id=host_id,
            organisation_id=run.organisation_id,
            last_kind=run.kind,
            last_outcome=outcome,
            last_run_at=run.finished_at,
        )
        state.last_run_id, state.last_kind = run.id, run.kind
        state.last_outcome, state.last_run_at = outcome, run.finished_at
        if run.kind is RunKind.apply and outcome in GOOD:
            state.applied = {**state.applied, **applied}
            state.applied_at = run.finished_at
        session.add(state)


def _host_ids(
    session: Session, organisation_id: uuid.UUID, names: list[str]
) -> dict[str, uuid.UUID]:
    rows = session.exec(
        select(Host.name, Host.id).where(
            Host.organisation_id == organisation_id, col(Host.name).in_(names)
        )
    )
    return dict(rows.all())


def _states(session: Session, host_ids: list[uuid.UUID]) -> dict[uuid.UUID, HostRunState]:
    if not host_ids:
        return {}
    rows = session.exec(select(HostRunState).where(col(HostRunState.host_id).in_(host_ids)))
    return {state.host_id: state for state in rows}


STANDINGS = {
    "unreachable": "hosts the last run could not reach",
    "failed": "hosts whose last run failed",
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
    """Which hosts of the organisation stand where (see ``STANDINGS``), in a few queries.

    A host is out of date when a live definition that reaches it has a published revision
    other than the one its last good apply applied; never applied when a definition reaches
    it and no apply has succeeded on it."""
    no_key = col(Host.host_key).is_(None)
    rows = rendering.hosts_with_groups(session, organisation_id, Host.id, no_key)
    hosts = [HostRow(name, groups) for (name, _, _), groups in rows]
    expected = _expected(session, organisation_id, hosts)
    states = _org_states(session, organisation_id)
    found: dict[str, list[str]] = {key: [] for key in STANDINGS}
    for (name, host_id, keyless), _ in rows:
        state = states.get(host_id)
        for key in _standings(state, expected.get(name, {}), bool(keyless)):
            found[key].append(name)
    return Standing(total=len(rows), hosts=found)


def _standings(state: HostRunState | None, expected: dict[str, int], no_key: bool) -> list[str]:
    keys = ["no_key"] if no_key else []
    if state is not None and state.last_outcome in (HostOutcome.unreachable, HostOutcome.failed):
        keys.append(str(state.last_outcome.name))
    if expected and (state is None or state.applied_at is None):
        keys.append("never_applied")
    elif state is not None and any(state.applied.get(d) != r for d, r in expected.items()):
        keys.append("out_of_date")
    return keys


def _expected(
    session: Session, organisation_id: uuid.UUID, hosts: list[HostRow]
) -> dict[str, dict[str, int]]:
    """{host: {definition: published revision}} for the live definitions reaching each host."""
    parents = rendering.group_parents(session, organisation_id)
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
    expected: dict[str, dict[str, int]] = {}
    for name, published, host, group in session.exec(query).all():
        target = ("host", host) if host else ("group", group)
        for reached_host in reached(hosts, parents, [target]):
            expected.setdefault(reached_host, {})[name] = published
    return expected


def _org_states(session: Session, organisation_id: uuid.UUID) -> dict[uuid.UUID, HostRunState]:
    query = select(HostRunState).where(HostRunState.organisation_id == organisation_id)
    return {state.host_id: state for state in session.exec(query)}
