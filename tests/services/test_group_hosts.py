"""Groups from their side: the hosts in them, host counts in one query, adding and
taking out hosts (audited once per change)."""

from __future__ import annotations

import json

from sqlalchemy import Engine, event
from sqlmodel import Session, select

from infracms.db import session_scope
from infracms.models import AuditEntry
from infracms.services import group_hosts, inventory
from tests.helpers import ADMIN, make_org


def _populate(engine: Engine, groups: int) -> None:
    with session_scope(engine, write=True) as session:
        for n in range(groups):
            inventory.create_group(
                session=session, actor=ADMIN, organisation="clinic", data={"name": f"g{n}"}
            )
            inventory.create_host(
                session=session,
                actor=ADMIN,
                organisation="clinic",
                data={"name": f"h{n}", "address": f"198.51.100.{n + 1}", "groups": [f"g{n}"]},
            )


def _statements(engine: Engine) -> int:
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        with session_scope(engine) as session:
            found = inventory.list_groups(session=session, actor=ADMIN, organisation="clinic")
        assert all(group.host_count == 1 for group in found)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_host_counts_take_the_same_queries_for_2_or_20_groups(engine: Engine) -> None:
    make_org(engine, "clinic")
    _populate(engine, 2)
    few = _statements(engine)
    with session_scope(engine, write=True) as session:
        for n in range(2, 20):
            inventory.create_group(
                session=session, actor=ADMIN, organisation="clinic", data={"name": f"g{n}"}
            )
            inventory.create_host(
                session=session,
                actor=ADMIN,
                organisation="clinic",
                data={"name": f"h{n}", "address": f"198.51.100.{n + 1}", "groups": [f"g{n}"]},
            )
    assert _statements(engine) == few


def test_adding_and_taking_out_hosts_is_audited_once_each(engine: Engine) -> None:
    make_org(engine, "clinic")
    _populate(engine, 3)
    with session_scope(engine, write=True) as session:
        added = group_hosts.add_hosts(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            name="g0",
            data={"hosts": ["h1", "h2", "h0"]},
        )
    assert added == ["h1", "h2"]  # h0 was in it already
    with session_scope(engine, write=True) as session:
        inside = group_hosts.group_hosts(
            session=session, actor=ADMIN, organisation="clinic", name="g0"
        )
        assert [host.name for host in inside] == ["h0", "h1", "h2"]
        removed = group_hosts.remove_hosts(
            session=session, actor=ADMIN, organisation="clinic", name="g0", data={"hosts": ["h1"]}
        )
    assert removed == ["h1"]
    with Session(engine) as session:
        entries = session.exec(
            select(AuditEntry)
            .where(AuditEntry.subject == "group:clinic/g0")
            .order_by(AuditEntry.index)
        ).all()
    assert [(e.action, json.loads(e.payload)) for e in entries[1:]] == [
        ("group.add_hosts", {"hosts": ["h1", "h2"]}),
        ("group.remove_hosts", {"hosts": ["h1"]}),
    ]
