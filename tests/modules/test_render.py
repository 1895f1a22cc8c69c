"""Resolving definitions by host shape gives every host what resolving it alone gave."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import pytest

from infracms.modules.render import (
    DefinitionRow,
    HostRow,
    RenderConflict,
    reached,
    render,
    settle,
    shapes,
)
from infracms.modules.targets import HostFacts

MULTIPLE = {"base": False, "motd": False, "site": True}


def reference(
    hosts: list[HostRow],
    parents: Mapping[str, str | None],
    definitions: list[DefinitionRow],
    multiple: Mapping[str, bool],
    extra: Any = None,
) -> dict[str, dict[str, Any]]:
    """The resolution as it was done before shapes: each host on its own."""
    distances: dict[str, dict[str, int]] = {}
    for group in parents:
        chain: dict[str, int] = {}
        current: str | None = group
        while current is not None and current not in chain:
            chain[current] = len(chain)
            current = parents.get(current)
        distances[group] = chain
    result: dict[str, dict[str, Any]] = {}
    for host in hosts:
        found = [(-1, d) for d in definitions if d.target_kind == "host" and d.target == host.name]
        nearest: dict[str, int] = {}
        for direct in host.groups:
            for group, steps in distances.get(direct, {direct: 0}).items():
                nearest[group] = min(steps, nearest.get(group, 1 << 30))
        for group, steps in nearest.items():
            found += [
                (steps, d) for d in definitions if d.target_kind == "group" and d.target == group
            ]
        if not found:
            continue
        by_module: dict[str, list[tuple[int, DefinitionRow]]] = defaultdict(list)
        for steps, d in found:
            by_module[d.module].append((steps, d))
        settled: dict[str, Any] = {}
        facts = HostFacts(host.name, host.variables, host.ssh_user, host.ssh_port)

        def with_extra(module: str, d: DefinitionRow, facts: HostFacts = facts) -> Any:
            more = extra(module, d.settings, facts) if extra else None
            return {**d.settings, **more} if more else d.settings

        for module, candidates in by_module.items():
            if multiple.get(module, False):
                ordered = sorted((d for _, d in candidates), key=lambda d: d.name)
                settled[module] = [with_extra(module, d) for d in ordered]
                continue
            best = min(steps for steps, _ in candidates)
            winners = [d for steps, d in candidates if steps == best]
            if len(winners) > 1:
                raise RenderConflict(f"host {host.name}")
            settled[module] = with_extra(module, winners[0])
        result[host.name] = settled
    return result


def extra(module: str, settings: Mapping[str, Any], host: HostFacts) -> Any:
    """Per host for motd (its name), the same for every host for base, nothing for site."""
    if module == "motd":
        return {"greeting": f"{settings.get('message')}, {host.name}"}
    if module == "base":
        return {"port": 22, "rack": host.variables.get("rack", 0) % 2}
    return None


def world(seed: int) -> tuple[list[HostRow], dict[str, str | None], list[DefinitionRow]]:
    """A random forest of groups, hosts in up to two groups, definitions on groups and on
    some hosts (a third of the worlds have a tie somewhere: the conflict must show too)."""
    rng = random.Random(seed)
    groups = [f"g{i}" for i in range(12)]
    parents: dict[str, str | None] = {}
    for i, group in enumerate(groups):
        parents[group] = rng.choice([None, *groups[:i]]) if i else None
    hosts = [
        HostRow(
            f"h{i:03d}", tuple(rng.sample(groups, rng.choice((0, 1, 1, 1, 2)))), {"rack": i % 5}
        )
        for i in range(120)
    ]
    definitions = []
    for n in range(rng.randint(3, 10)):
        module = rng.choice(("base", "motd", "site", "site"))
        on_host = rng.random() < 0.3
        definitions.append(
            DefinitionRow(
                name=f"d{n:02d}",
                module=module,
                target_kind="host" if on_host else "group",
                target=rng.choice(hosts).name if on_host else rng.choice(groups),
                settings={"message": f"m{n}", "n": n, "list": [n, str(n)]},
            )
        )
    return hosts, parents, definitions


@pytest.mark.parametrize("seed", range(40))
def test_shapes_give_each_host_what_resolving_it_alone_gave(seed: int) -> None:
    hosts, parents, definitions = world(seed)
    try:
        expected = reference(hosts, parents, definitions, MULTIPLE, extra)
    except RenderConflict:
        with pytest.raises(RenderConflict):
            render(hosts, parents, definitions, MULTIPLE, extra)
        return
    got = render(hosts, parents, definitions, MULTIPLE, extra)
    assert got == expected, (
        f"seed {seed}: differs for {sorted(h for h in got if got[h] != expected.get(h))}"
    )
    assert set(got) == set(expected)


def test_hosts_in_the_same_groups_are_resolved_once_and_share_equal_values() -> None:
    parents: dict[str, str | None] = {"site": None, "web": "site", "db": "site"}
    hosts = [HostRow(f"web{i}", ("web",), {"rack": 2}) for i in range(500)]
    hosts += [HostRow(f"db{i}", ("db",), {"rack": i}) for i in range(500)]
    definitions = [
        DefinitionRow("base-site", "base", "group", "site", {"a": 1}),
        DefinitionRow("base-db", "base", "group", "db", {"a": 2}),
        DefinitionRow("base-web7", "base", "host", "web7", {"a": 3}),
        DefinitionRow("motd-site", "motd", "group", "site", {"message": "hi"}),
    ]
    found = shapes(hosts, parents, definitions, MULTIPLE)
    assert sorted(len(shape.hosts) for shape in found) == [1, 499, 500]  # web7 is on its own
    settled = settle(found, extra)
    assert settled["web7"]["base"]["a"] == 3 and settled["web8"]["base"]["a"] == 1
    assert settled["web1"]["base"] is settled["web2"]["base"]  # same rack parity: one object
    assert settled["db1"]["base"] is not settled["db2"]["base"]  # rack 1 and 2 differ
    assert settled["db1"]["base"] is settled["db3"]["base"]
    assert settled["web1"]["motd"]["greeting"] == "hi, web1"  # per host, never shared
    assert settled["web2"]["motd"]["greeting"] == "hi, web2"
    plain = settle(found)
    assert plain["web1"] is plain["web2"] and plain["db1"] is plain["db2"]  # whole mappings
    assert plain["web1"] is not plain["db1"]


def test_prepare_runs_once_per_distinct_value() -> None:
    hosts = [HostRow(f"h{i}", ("all",)) for i in range(100)]
    definitions = [DefinitionRow("base-all", "base", "group", "all", {"a": {"$env": "X"}})]
    seen: list[Any] = []

    def prepare(value: Any) -> Any:
        seen.append(value)
        return {"a": "resolved"}

    settled = settle(shapes(hosts, {"all": None}, definitions, MULTIPLE), None, prepare)
    assert len(seen) == 1 and settled["h42"] == {"base": {"a": "resolved"}}


def test_values_that_only_look_equal_are_not_shared() -> None:
    hosts = [HostRow(name, ("all",), {"v": v}) for name, v in (("a", True), ("b", 1), ("c", 1.0))]
    definitions = [DefinitionRow("base-all", "base", "group", "all", {})]
    settled = render(
        hosts,
        {"all": None},
        definitions,
        MULTIPLE,
        lambda module, settings, host: {"v": host.variables["v"]},
    )
    assert [type(settled[h]["base"]["v"]) for h in "abc"] == [bool, int, float]


def test_a_tie_is_a_conflict_named() -> None:
    hosts = [HostRow("web1", ("a", "b"))]
    parents: dict[str, str | None] = {"a": None, "b": None}
    definitions = [
        DefinitionRow("motd-b", "motd", "group", "b", {}),
        DefinitionRow("motd-a", "motd", "group", "a", {}),
    ]
    with pytest.raises(
        RenderConflict, match="host web1: definitions motd-a, motd-b of module motd"
    ):
        shapes(hosts, parents, definitions, MULTIPLE)


def test_reached_is_the_hosts_in_a_group_or_below_or_named() -> None:
    parents: dict[str, str | None] = {"site": None, "web": "site", "edge": "web", "db": None}
    hosts = [
        HostRow("w1", ("web",)),
        HostRow("e1", ("edge",)),
        HostRow("d1", ("db",)),
        HostRow("lone"),
    ]
    assert reached(hosts, parents, [("group", "web")]) == {"w1", "e1"}
    assert reached(hosts, parents, [("group", "site"), ("host", "lone")]) == {"w1", "e1", "lone"}
    assert reached(hosts, parents, [("group", "db")]) == {"d1"}
    assert reached(hosts, parents, []) == set()
