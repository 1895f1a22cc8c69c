"""The plan an approval is bound to: exactly what a held apply would run, and its digest.

The plan names the run, each definition with the revision it applies, and for each host
its connection (address, port, user, pinned key, credential's name), its variables and
the settings every module would get: rendered as a run renders them (services/rendering),
with secret references left as references (no secret is read to make a plan, and none
is stored in it). The digest is SHA-256 over the plan's canonical JSON.

Before a released apply runs, the plan is made again from the definitions' *current*
published revisions: anything that differs (a revision published or retired since, a
host gone or moved, a group membership or a variable that changes a setting) gives
another digest, and ``changes`` says what.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, col, select

from infracms.models.definition import Definition, Revision
from infracms.models.host import Host
from infracms.models.run import HostRunState, Run
from infracms.modules.render import HostRow
from infracms.plugins import Plugins
from infracms.services import rendering
from infracms.services.definitions import text_diff
from infracms.services.run_input import HOST_COLUMNS

MAX_CHANGES = 12
CONNECTION = ("address", "port", "user", "host_key", "credential")


def pinned_of(run: Run) -> dict[str, int]:
    """{definition: revision} as the run pinned them when it was asked for."""
    return {d["name"]: int(d["revision"]) for d in run.definitions}


def current_pins(session: Session, run: Run) -> dict[str, int]:
    """{definition: revision} for the run's definitions as published now (retired ones left out)."""
    names = [d["name"] for d in run.definitions]
    rows = session.exec(
        select(Definition.name, Definition.published).where(
            Definition.organisation_id == run.organisation_id,
            col(Definition.name).in_(names),
            col(Definition.retired_at).is_(None),
            col(Definition.published).is_not(None),
        )
    ).all()
    return {name: int(published) for name, published in rows if published is not None}


def plan_of(
    session: Session, plugins: Plugins, run: Run, pinned: Mapping[str, int]
) -> dict[str, Any]:
    """What `run` would run with the definitions at `pinned` revisions."""
    wanted = set(run.hosts)
    found = [
        (row, groups)
        for row, groups in rendering.hosts_with_groups(
            session, organisation_id=run.organisation_id, columns=HOST_COLUMNS
        )
        if row[0] in wanted
    ]
    host_rows = [HostRow(row[0], groups, row[1], row[4], row[3]) for row, groups in found]
    modules = {d["name"]: d["module"] for d in run.definitions}
    shapes = rendering.resolve(
        plugins,
        host_rows,
        rendering.group_parents(session, organisation_id=run.organisation_id),
        rendering.definition_rows(
            session, organisation_id=run.organisation_id, pinned=dict(pinned)
        ),
    )
    per_host = rendering.settings_of(plugins, shapes)
    return _jsonable(
        {
            "run": str(run.id),
            "kind": str(run.kind),
            "definitions": [
                {"name": name, "module": modules.get(name), "revision": pinned[name]}
                for name in sorted(pinned)
            ],
            "hosts": {
                row[0]: {
                    "address": row[2],
                    "port": row[3],
                    "user": row[4],
                    "host_key": row[5],
                    "credential": row[6],
                    "variables": row[1],
                    "settings": per_host.get(row[0], {}),
                }
                for row, _ in found
            },
        }
    )


def _jsonable(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan as stored: JSON only (shared objects and tuples made plain)."""
    loaded: dict[str, Any] = json.loads(canonical(plan))
    return loaded


def canonical(plan: Mapping[str, Any]) -> bytes:
    """The plan's canonical JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        plan, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def digest_of(plan: Mapping[str, Any]) -> str:
    """SHA-256 of the plan's canonical JSON, in hex."""
    return hashlib.sha256(canonical(plan)).hexdigest()


def changes(approved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between the approved plan and the plan as it stands, in words."""
    found = _definition_changes(approved["definitions"], now["definitions"])
    found += _host_changes(approved["hosts"], now["hosts"])
    if len(found) > MAX_CHANGES:
        found = [*found[:MAX_CHANGES], f"and {len(found) - MAX_CHANGES} more"]
    return found or ["the plan differs"]


def _definition_changes(approved: list[dict[str, Any]], now: list[dict[str, Any]]) -> list[str]:
    current = {d["name"]: d["revision"] for d in now}
    found = []
    for definition in approved:
        name, revision = definition["name"], definition["revision"]
        if name not in current:
            found.append(f"definition {name} was retired or unpublished")
        elif current[name] != revision:
            found.append(f"definition {name} is at revision {current[name]} (approved: {revision})")
    return found


def _host_changes(approved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    found = []
    for name, host in sorted(approved.items()):
        if name not in now:
            found.append(f"host {name} is gone")
            continue
        fields = [f for f in CONNECTION if host.get(f) != now[name].get(f)]
        if host.get("variables") != now[name].get("variables"):
            fields.append("variables")
        modules = sorted(
            m
            for m in set(host["settings"]) | set(now[name]["settings"])
            if host["settings"].get(m) != now[name]["settings"].get(m)
        )
        fields += [f"settings of {m}" for m in modules]
        if fields:
            found.append(f"host {name}: {', '.join(fields)} changed")
    return found


def plan_diff(session: Session, run: Run) -> list[dict[str, Any]]:
    """For each definition of the plan, the settings it would apply against the revision
    last applied to the run's hosts (a unified diff; "" when they are the same)."""
    applied = _applied_revisions(session, run)
    out = []
    for definition in run.definitions:
        name, revision = definition["name"], int(definition["revision"])
        before_numbers = sorted(applied.get(name, set()))
        before = before_numbers[-1] if before_numbers else 0  # 0: never applied
        settings = _settings(session, run, name, {revision, before})
        out.append(
            {
                "name": name,
                "module": definition["module"],
                "revision": revision,
                "applied": before_numbers,
                "text": text_diff(
                    settings.get(before, {}), settings.get(revision, {}), before, revision
                )
                if before != revision
                else "",
            }
        )
    return out


def _applied_revisions(session: Session, run: Run) -> dict[str, set[int]]:
    """{definition: the revisions of it last applied on the run's hosts}."""
    wanted = set(run.hosts)
    found: dict[str, set[int]] = {}
    rows = session.exec(
        select(HostRunState.applied, HostRunState.host_id).where(
            HostRunState.organisation_id == run.organisation_id
        )
    ).all()
    names = dict(
        session.exec(
            select(Host.id, Host.name).where(Host.organisation_id == run.organisation_id)
        ).all()
    )
    for applied, host_id in rows:
        if names.get(host_id) not in wanted:
            continue
        for name, revision in (applied or {}).items():
            found.setdefault(name, set()).add(int(revision))
    return found


def _settings(session: Session, run: Run, name: str, numbers: set[int]) -> dict[int, Any]:
    rows = session.exec(
        select(Revision.number, Revision.settings)
        .join(Definition, Definition.id == Revision.definition_id)  # type: ignore[arg-type]
        .where(
            Definition.organisation_id == run.organisation_id,
            Definition.name == name,
            col(Revision.number).in_(sorted(numbers)),
        )
    ).all()
    return {number: settings for number, settings in rows}
