"""Listing an organisation's groups with their host counts, on SQLite.

Builds one organisation with G groups and H hosts (each host in one group), then times
`inventory.list_groups` (what the API, the CLI and the group tree use) and counts its SQL
statements: they must not grow with the number of groups (no query per group).

    .venv/bin/python bench/group_list.py [--groups 1000] [--hosts 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, event, insert

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models import Organisation
from infracms.models.host import Host, HostGroup, HostGroupLink
from infracms.services import inventory
from infracms.services.context import system_actor
from infracms.services.setup import initialise


def populate(engine: Engine, groups: int, hosts: int) -> None:
    """One organisation `bench`, `groups` groups, `hosts` hosts spread over them."""
    org = uuid.uuid4()
    group_ids = [uuid.uuid4() for _ in range(groups)]
    with engine.begin() as connection:
        connection.execute(insert(Organisation), [{"id": org, "name": "bench", "title": ""}])
        connection.execute(
            insert(HostGroup),
            [
                {"id": g, "organisation_id": org, "name": f"g{i}", "description": ""}
                | {"variables": {}, "parent_id": group_ids[i // 10] if i >= 10 else None}
                for i, g in enumerate(group_ids)
            ],
        )
        host_ids = [uuid.uuid4() for _ in range(hosts)]
        connection.execute(
            insert(Host),
            [
                {"id": h, "organisation_id": org, "name": f"h{i}", "address": "198.51.100.1"}
                | {"ssh_port": 22, "ssh_user": "root", "variables": {}}
                for i, h in enumerate(host_ids)
            ],
        )
        connection.execute(
            insert(HostGroupLink),
            [{"host_id": h, "group_id": group_ids[i % groups]} for i, h in enumerate(host_ids)],
        )


def measure(engine: Engine, repeat: int) -> tuple[float, int]:
    """The median time of list_groups in ms, and the statements one call runs."""
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    times = []
    for _ in range(repeat):
        statements.clear()
        started = time.perf_counter()
        with session_scope(engine) as session:
            inventory.list_groups(session=session, actor=system_actor(), organisation="bench")
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), len(statements)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("| groups | hosts | list_groups median | statements |")
    print("| ---: | ---: | ---: | ---: |")
    for groups in sorted({10, args.groups}):
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp) / "var", admin_password="bench-password-long")
            engine = make_engine(settings)
            initialise(settings, engine)
            populate(engine, groups, args.hosts)
            median, statements = measure(engine, args.repeat)
            engine.dispose()
        print(f"| {groups} | {args.hosts} | {median:.0f} ms | {statements} |")


if __name__ == "__main__":
    main()
