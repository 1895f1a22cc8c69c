"""Which settings each host gets: the published definitions resolved over the inventory.

A definition on a host applies to it; one on a group applies to every host in the group
and in its descendant groups. A module that is not ``multiple`` takes the most specific
definition (the host's own, else the one on the nearest group); two equally near
definitions of it are a conflict, named. A ``multiple`` module gets the list of every
definition that applies, ordered by name. The ``extra_variables`` hook adds derived
variables per host. Pure: no database; the caller loads the rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

HOST_DEPTH = -1  # a definition on the host itself beats any group


class RenderConflict(ValueError):
    """Two definitions of a single-instance module apply equally to one host."""


@dataclass(frozen=True)
class HostRow:
    """A host and the groups it is directly in."""

    name: str
    groups: tuple[str, ...] = ()
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DefinitionRow:
    """A published definition."""

    name: str
    module: str
    target_kind: str  # "host" or "group"
    target: str
    settings: Mapping[str, Any]


ExtraVariables = Callable[[str, Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any] | None]


def group_distances(parents: Mapping[str, str | None]) -> dict[str, dict[str, int]]:
    """For each group, every group it is in (itself included) and how many steps up."""
    distances: dict[str, dict[str, int]] = {}
    for group in parents:
        chain: dict[str, int] = {}
        current: str | None = group
        while current is not None and current not in chain:
            chain[current] = len(chain)
            current = parents.get(current)
        distances[group] = chain
    return distances


def render(
    hosts: Iterable[HostRow],
    parents: Mapping[str, str | None],
    definitions: Iterable[DefinitionRow],
    multiple: Mapping[str, bool],
    extra_variables: ExtraVariables | None = None,
) -> dict[str, dict[str, Any]]:
    """{host: {module: settings, or a list of settings for multiple modules}}."""
    on_host: dict[str, list[DefinitionRow]] = defaultdict(list)
    on_group: dict[str, list[DefinitionRow]] = defaultdict(list)
    for definition in definitions:
        (on_host if definition.target_kind == "host" else on_group)[definition.target].append(
            definition
        )
    distances = group_distances(parents)
    result: dict[str, dict[str, Any]] = {}
    for host in hosts:
        applying = _applying(host, on_host, on_group, distances)
        if applying:
            result[host.name] = _settle(host, applying, multiple, extra_variables)
    return result


def _applying(
    host: HostRow,
    on_host: Mapping[str, list[DefinitionRow]],
    on_group: Mapping[str, list[DefinitionRow]],
    distances: Mapping[str, Mapping[str, int]],
) -> list[tuple[int, DefinitionRow]]:
    found = [(HOST_DEPTH, d) for d in on_host.get(host.name, ())]
    nearest: dict[str, int] = {}
    for direct in host.groups:
        for group, steps in distances.get(direct, {direct: 0}).items():
            if steps < nearest.get(group, 1 << 30):
                nearest[group] = steps
    for group, steps in nearest.items():
        found.extend((steps, d) for d in on_group.get(group, ()))
    return found


def _settle(
    host: HostRow,
    applying: list[tuple[int, DefinitionRow]],
    multiple: Mapping[str, bool],
    extra_variables: ExtraVariables | None,
) -> dict[str, Any]:
    by_module: dict[str, list[tuple[int, DefinitionRow]]] = defaultdict(list)
    for steps, definition in applying:
        by_module[definition.module].append((steps, definition))
    settled: dict[str, Any] = {}
    for module, candidates in by_module.items():
        if multiple.get(module, False):
            ordered = sorted(candidates, key=lambda c: c[1].name)
            settled[module] = [
                _with_extra(module, d.settings, host, extra_variables) for _, d in ordered
            ]
            continue
        best = min(steps for steps, _ in candidates)
        winners = sorted(d.name for steps, d in candidates if steps == best)
        if len(winners) > 1:
            raise RenderConflict(
                f"host {host.name}: definitions {', '.join(winners)} of module {module} "
                "apply equally; target one of them more precisely"
            )
        chosen = next(d for steps, d in candidates if steps == best)
        settled[module] = _with_extra(module, chosen.settings, host, extra_variables)
    return settled


def _with_extra(
    module: str,
    settings: Mapping[str, Any],
    host: HostRow,
    extra_variables: ExtraVariables | None,
) -> Mapping[str, Any]:
    if extra_variables is None:
        return settings
    extra = extra_variables(module, settings, {"name": host.name, "variables": host.variables})
    return {**settings, **extra} if extra else settings
