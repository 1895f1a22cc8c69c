"""The hosts list's orders on SQLite and PostgreSQL (which place NULLs differently by
default): missing values last both ways, ties by name, pages that neither overlap nor
skip."""

from __future__ import annotations

from datetime import timedelta
from typing import get_args

from sqlalchemy import Engine
from sqlmodel import select

from infracms.db import session_scope
from infracms.models.base import utcnow
from infracms.models.host import Host, HostSort
from infracms.models.run import HostOutcome, HostRunState, RunKind
from infracms.services import inventory, organisations
from tests.helpers import ADMIN

# name: (address, groups, last outcome, minutes ago)
HOSTS = {
    "a": ("10.0.0.4", ["web"], HostOutcome.ok, 1),
    "b": ("10.0.0.3", [], HostOutcome.failed, 5),
    "c": ("10.0.0.2", ["db", "web"], None, None),
    "d": ("10.0.0.1", ["web"], HostOutcome.failed, 3),
}
ORDERS = {
    "name": "abcd",
    "-name": "dcba",
    "address": "dcba",
    "-address": "abcd",
    "group": "cadb",  # c's first group is db; a and d tie on web; b has none
    "-group": "adcb",
    "last_outcome": "bdac",  # failed (b, d by name), ok; never run last
    "-last_outcome": "abdc",
    "last_run_at": "bdac",  # oldest first; never run last
    "-last_run_at": "adbc",
}


def _populate(engine: Engine) -> None:
    with session_scope(engine, write=True) as session:
        organisations.create_organisation(session=session, actor=ADMIN, data={"name": "clinic"})
        for group in ("web", "db"):
            inventory.create_group(
                session=session, actor=ADMIN, organisation="clinic", data={"name": group}
            )
        for name, (address, groups, _, _) in HOSTS.items():
            data = {"name": name, "address": address, "groups": groups}
            inventory.create_host(session=session, actor=ADMIN, organisation="clinic", data=data)
    now = utcnow()
    with session_scope(engine, write=True) as session:
        # the rows host_state.record_run writes when a run ends
        for host in session.exec(select(Host)).all():
            _, _, outcome, ago = HOSTS[host.name]
            if outcome is not None and ago is not None:
                session.add(
                    HostRunState(
                        host_id=host.id,
                        organisation_id=host.organisation_id,
                        last_run_id=None,
                        last_kind=RunKind.plan,
                        last_outcome=outcome,
                        last_run_at=now - timedelta(minutes=ago),
                        applied={},
                    )
                )
        session.commit()


def _names(engine: Engine, sort: str, limit: int = 50, offset: int = 0) -> str:
    with session_scope(engine) as session:
        found = inventory.list_hosts(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            limit=limit,
            offset=offset,
            sort=sort,  # type: ignore[arg-type]
        )
    return "".join(host.name for host in found.items)


def test_every_order_on_both_databases(any_engine: Engine) -> None:
    assert set(ORDERS) == set(get_args(HostSort))
    _populate(any_engine)
    for sort, expected in ORDERS.items():
        assert _names(any_engine, sort) == expected, sort
        paged = "".join(_names(any_engine, sort, limit=1, offset=i) for i in range(4))
        assert paged == expected, f"{sort}: pages overlap or skip"
