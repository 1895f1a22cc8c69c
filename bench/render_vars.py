"""Rendering the input of a run: the settings of 10,000 hosts with 8 modules each.

Two figures: the pure resolution (definitions over the group tree, precedence, the
extra_variables hook), and the whole service call that loads hosts, groups and
published revisions from SQLite first. Target: <= 1 s for 10,000 hosts x 8 modules.

    .venv/bin/python bench/render_vars.py [--hosts 10000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models import (
    Definition,
    EnabledModule,
    Host,
    HostGroup,
    HostGroupLink,
    Organisation,
    Revision,
)
from infracms.modules.render import DefinitionRow, HostRow, render
from infracms.plugins import Plugins
from infracms.services import rendering
from infracms.services.context import system_actor
from infracms.services.setup import initialise

MODULES = [f"mod{i}" for i in range(8)]
GROUPS = 40


def rows(hosts: int) -> tuple[list[HostRow], dict[str, str | None], list[DefinitionRow]]:
    """Hosts in 40 leaf groups under 4 parents; each module defined on the parents,
    overridden on some leaf groups and on every 50th host."""
    parents: dict[str, str | None] = {f"site{i}": None for i in range(4)}
    parents.update({f"group{i}": f"site{i % 4}" for i in range(GROUPS)})
    host_rows = [
        HostRow(f"host{i:05d}", (f"group{i % GROUPS}",), {"rack": i % 7}) for i in range(hosts)
    ]
    definitions: list[DefinitionRow] = []
    for module in MODULES:
        settings = {
            "enabled": True,
            "ports": [22, 80, 443],
            "name": module,
            "nested": {"a": 1, "b": [1, 2]},
        }
        definitions += [
            DefinitionRow(f"{module}-site{i}", module, "group", f"site{i}", settings)
            for i in range(4)
        ]
        definitions += [
            DefinitionRow(f"{module}-g{i}", module, "group", f"group{i}", settings)
            for i in range(0, GROUPS, 3)
        ]
        definitions += [
            DefinitionRow(f"{module}-h{i}", module, "host", f"host{i:05d}", settings)
            for i in range(0, hosts, 50)
        ]
    return host_rows, parents, definitions


def best_of(runs: int, work: Callable[[], object]) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def store(
    settings: Settings,
    hosts: list[HostRow],
    parents: dict[str, str | None],
    definitions: list[DefinitionRow],
) -> None:
    """Write the same inventory and definitions to a database."""
    engine = make_engine(settings)
    initialise(settings, engine)
    with session_scope(engine, write=True) as session:
        org = Organisation(name="bench")
        session.add(org)
        session.flush()
        session.add_all(
            EnabledModule(organisation_id=org.id, name=m, version="1.0.0") for m in MODULES
        )
        groups = {name: HostGroup(name=name, organisation_id=org.id) for name in parents}
        session.add_all(groups.values())
        session.flush()
        for name, parent in parents.items():
            groups[name].parent_id = groups[parent].id if parent else None
        host_ids = {}
        for row in hosts:
            host = Host(
                name=row.name,
                address="10.0.0.1",
                organisation_id=org.id,
                variables=dict(row.variables),
            )
            host_ids[row.name] = host.id
            session.add(host)
            session.add_all(
                HostGroupLink(host_id=host.id, group_id=groups[g].id) for g in row.groups
            )
        session.flush()
        for d in definitions:
            definition = Definition(
                organisation_id=org.id,
                name=d.name,
                module=d.module,
                published=1,
                latest=1,
                host_id=host_ids.get(d.target) if d.target_kind == "host" else None,
                group_id=groups[d.target].id if d.target_kind == "group" else None,
            )
            session.add(definition)
            session.add(
                Revision(
                    definition_id=definition.id, number=1, settings=dict(d.settings), author="bench"
                )
            )
        session.commit()
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10_000)
    args = parser.parse_args()
    hosts, parents, definitions = rows(args.hosts)
    multiple = dict.fromkeys(MODULES, False)
    plugins = Plugins.load(builtins=(), entry_points=False)
    pure_best, pure_median = best_of(5, lambda: render(hosts, parents, definitions, multiple))
    result = render(hosts, parents, definitions, multiple)
    assert len(result) == args.hosts and all(len(v) == len(MODULES) for v in result.values())
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            admin_password="bench-password-1",
            argon2_time_cost=1,
            argon2_memory_kib=1024,
        )
        store(settings, hosts, parents, definitions)
        engine = make_engine(settings)

        def service() -> object:
            with session_scope(engine) as session:
                return rendering.host_settings(
                    session=session, actor=system_actor(), plugins=plugins, organisation="bench"
                )

        full_best, full_median = best_of(3, service)
        engine.dispose()
    cells = args.hosts * len(MODULES)
    print(f"{'what':<42}{'best s':>9}{'median s':>10}{'target':>9}")
    print(f"{'pure resolution':<42}{pure_best:>9.3f}{pure_median:>10.3f}{'<= 1 s':>9}")
    label = "service call (SQLite load + resolution)"
    print(f"{label:<42}{full_best:>9.3f}{full_median:>10.3f}{'<= 1 s':>9}")
    print(
        f"\n{args.hosts} hosts x {len(MODULES)} modules = {cells} host-module settings, "
        f"{len(definitions)} definitions, {len(parents)} groups"
    )


if __name__ == "__main__":
    main()
