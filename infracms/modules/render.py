"""Which settings each host gets: the published definitions resolved over the inventory.

A definition on a host applies to it; one on a group applies to every host in the group
and in its descendant groups. A module that is not ``multiple`` takes the most specific
definition (the host's own, else the one on the nearest group); two equally near
definitions of it are a conflict, named. A ``multiple`` module gets the list of every
definition that applies, ordered by name. A module's ``extra_variables`` adds derived
variables per host. Pure: no database; the caller loads the rows.

Hosts that are in the same groups and that no definition targets by name get the same
definitions at the same distances: they share a shape, resolved once (10,000 hosts in
40 groups are 40 resolutions, not 10,000). Settling then gives hosts whose values come
out equal the same objects, so a renderer can write them once for all those hosts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infracms.modules.targets import HostFacts

HOST_DEPTH = -1  # a definition on the host itself beats any group


class RenderConflict(ValueError):
    """Two definitions of a single-instance module apply equally to one host."""


@dataclass(frozen=True)
class HostRow:
    """A host and the groups it is directly in."""

    name: str
    groups: tuple[str, ...] = ()
    variables: Mapping[str, Any] = field(default_factory=dict)
    ssh_user: str = "root"
    ssh_port: int = 22


@dataclass(frozen=True)
class DefinitionRow:
    """A published definition."""

    name: str
    module: str
    target_kind: str  # "host" or "group"
    target: str
    settings: Mapping[str, Any]


# a module's winner, or for a multiple module every definition that applies, by name
Winner = DefinitionRow | tuple[DefinitionRow, ...]


@dataclass(frozen=True)
class Shape:
    """Hosts that the same definitions reach at the same distances, and what wins."""

    hosts: tuple[HostRow, ...]
    winners: Mapping[str, Winner]


# (module, the definition's settings, the host) -> variables to merge in, or None
ExtraVariables = Callable[[str, Mapping[str, Any], HostFacts], Mapping[str, Any] | None]
Prepare = Callable[[Any], Any]


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
    return settle(shapes(hosts, parents, definitions, multiple), extra_variables)


def shapes(
    hosts: Iterable[HostRow],
    parents: Mapping[str, str | None],
    definitions: Iterable[DefinitionRow],
    multiple: Mapping[str, bool],
) -> list[Shape]:
    """The hosts some definition reaches, by shape, with each shape's winners."""
    on_host: dict[str, list[DefinitionRow]] = defaultdict(list)
    on_group: dict[str, list[DefinitionRow]] = defaultdict(list)
    for definition in definitions:
        (on_host if definition.target_kind == "host" else on_group)[definition.target].append(
            definition
        )
    members: dict[tuple[tuple[str, ...], str | None], list[HostRow]] = defaultdict(list)
    for host in hosts:
        own = host.name if host.name in on_host else None
        members[(tuple(sorted(set(host.groups))), own)].append(host)
    distances = group_distances(parents)
    found = []
    for (groups, own), rows in members.items():
        applying = [(HOST_DEPTH, d) for d in on_host[own]] if own else []
        applying += _from_groups(groups, on_group, distances)
        if applying:
            found.append(Shape(tuple(rows), _winners(rows[0].name, applying, multiple)))
    return found


def reached(
    hosts: Iterable[HostRow],
    parents: Mapping[str, str | None],
    targets: Iterable[tuple[str, str]],
) -> set[str]:
    """The names of the hosts that definitions on `targets` ((kind, name): "host" or
    "group" and its name) would apply to."""
    targets = list(targets)
    on_host = {name for kind, name in targets if kind == "host"}
    on_group = {name for kind, name in targets if kind != "host"}
    distances = group_distances(parents)
    under: dict[tuple[str, ...], bool] = {}
    names = set()
    for host in hosts:
        if host.groups not in under:
            under[host.groups] = any(
                not on_group.isdisjoint(distances.get(g, (g,))) for g in host.groups
            )
        if under[host.groups] or host.name in on_host:
            names.add(host.name)
    return names


def _from_groups(
    groups: tuple[str, ...],
    on_group: Mapping[str, list[DefinitionRow]],
    distances: Mapping[str, Mapping[str, int]],
) -> list[tuple[int, DefinitionRow]]:
    nearest: dict[str, int] = {}
    for direct in groups:
        for group, steps in distances.get(direct, {direct: 0}).items():
            if steps < nearest.get(group, 1 << 30):
                nearest[group] = steps
    return [(steps, d) for group, steps in nearest.items() for d in on_group.get(group, ())]


def _winners(
    host: str, applying: list[tuple[int, DefinitionRow]], multiple: Mapping[str, bool]
) -> dict[str, Winner]:
    by_module: dict[str, list[tuple[int, DefinitionRow]]] = defaultdict(list)
    for steps, definition in applying:
        by_module[definition.module].append((steps, definition))
    winners: dict[str, Winner] = {}
    for module, candidates in by_module.items():
        if multiple.get(module, False):
            winners[module] = tuple(sorted((d for _, d in candidates), key=lambda d: d.name))
            continue
        best = min(steps for steps, _ in candidates)
        nearest = [d for steps, d in candidates if steps == best]
        if len(nearest) > 1:
            raise RenderConflict(
                f"host {host}: definitions {', '.join(sorted(d.name for d in nearest))} "
                f"of module {module} apply equally; target one of them more precisely"
            )
        winners[module] = nearest[0]
    return winners


def settle(
    found: Iterable[Shape],
    extra_variables: ExtraVariables | None = None,
    prepare: Prepare | None = None,
    data_paths: Mapping[str, tuple[str, ...]] | None = None,
) -> dict[str, dict[str, Any]]:
    """{host: {module: settings, or a list for a multiple module}} with the modules' extra
    variables merged in. Equal values are one object, and so are equal host mappings;
    `prepare` (e.g. resolving secret references) runs once per distinct value;
    `data_paths` ({module: paths}) tells extra_variables what each host's modules keep."""
    sharing = _Sharing(extra_variables, prepare, data_paths or {})
    return {host.name: sharing.host(shape, host) for shape in found for host in shape.hosts}


class _Sharing:
    """Builds each value once: memoised by the identities of the parts it is made of
    (every object named by a key is kept in the memo, so no identity is reused)."""

    def __init__(
        self,
        extra_variables: ExtraVariables | None,
        prepare: Prepare | None,
        data_paths: Mapping[str, tuple[str, ...]],
    ) -> None:
        self.extra_variables = extra_variables
        self.prepare = prepare
        self.data_paths = data_paths
        self.made: dict[Hashable, Any] = {}

    def host(self, shape: Shape, host: HostRow) -> dict[str, Any]:
        facts = None  # built only for modules that derive variables
        if self.extra_variables is not None:
            kept = sorted({p for m in shape.winners for p in self.data_paths.get(m, ())})
            facts = HostFacts(host.name, host.variables, host.ssh_user, host.ssh_port, tuple(kept))
        values = {module: self._value(module, w, facts) for module, w in shape.winners.items()}
        key = ("host", *((m, id(v)) for m, v in values.items()))
        shared: dict[str, Any] = self._once(key, values)
        return shared

    def _value(self, module: str, winner: Winner, facts: HostFacts | None) -> Any:
        if isinstance(winner, DefinitionRow):
            return self._settings(module, winner, facts)
        entries = [self._settings(module, d, facts) for d in winner]
        return self._once(("list", *map(id, entries)), entries)

    def _settings(self, module: str, definition: DefinitionRow, facts: HostFacts | None) -> Any:
        extra = None
        if self.extra_variables is not None and facts is not None:
            extra = self.extra_variables(module, definition.settings, facts)
        key = ("settings", id(definition), _frozen(extra) if extra else None)
        if key in self.made:
            return self.made[key]
        merged = {**definition.settings, **extra} if extra else definition.settings
        return self._once(key, self.prepare(merged) if self.prepare else merged)

    def _once(self, key: Hashable, value: Any) -> Any:
        return self.made.setdefault(key, value)


def _frozen(value: Any) -> Hashable:
    """A key equal for equal plain data, and only for it (True, 1 and 1.0 differ); a
    key of its own for anything else, so that it is never shared."""
    kind = type(value)
    if kind is dict:
        return (dict, tuple((_frozen(k), _frozen(v)) for k, v in value.items()))
    if kind is list or kind is tuple:
        return (kind, tuple(_frozen(v) for v in value))
    if kind in (str, int, float, bool) or value is None:
        return (kind, value)
    return (object, object())
