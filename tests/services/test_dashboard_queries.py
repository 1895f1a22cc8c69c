"""The dashboard reads every organisation's concerns in the same few queries, whatever
the number of organisations, and each organisation still gets its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, event

from infracms.db import session_scope
from infracms.models import Role
from infracms.models.run import Run, RunKind, RunStatus
from infracms.services import dashboard, inventory, organisations
from infracms.services.dashboard import Attention
from tests.helpers import ADMIN, make_org, member_actor


def add_org(engine: Engine, name: str, hosts: int, runs: dict[RunStatus, int]) -> None:
    """Organisation `name` with `hosts` hosts (no pinned key) and `runs` by status."""
    org_id = make_org(engine, name)
    with session_scope(engine, write=True) as session:
        for i in range(hosts):
            data = {"name": f"{name}-{i}", "address": "198.51.100.1"}
            inventory.create_host(session=session, actor=ADMIN, organisation=name, data=data)
    with session_scope(engine, write=True) as session:
        for status, count in runs.items():
            for _ in range(count):
                session.add(
                    Run(
                        organisation_id=org_id,
                        kind=RunKind.apply,
                        status=status,
                        requested_by="test",
                        hosts=[f"{name}-0"],
                    )
                )
        session.commit()


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements sent to `engine` inside the block."""
    sent: list[str] = []

    def record(*args: object) -> None:
        sent.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def attention(engine: Engine) -> tuple[Attention, list[str]]:
    with session_scope(engine) as session, counted(engine) as sent:
        return dashboard.attention(session=session, actor=ADMIN), sent


def test_six_organisations_take_as_many_queries_as_two(engine: Engine) -> None:
    for name in ("org-0", "org-1"):
        add_org(engine, name, hosts=2, runs={RunStatus.failed: 1})
    found, few = attention(engine)
    assert len(found.organisations) == 2
    for name in ("org-2", "org-3", "org-4", "org-5"):
        add_org(engine, name, hosts=2, runs={RunStatus.failed: 1})
    found, many = attention(engine)
    assert len(found.organisations) == 6
    assert len(many) == len(few), f"2 organisations: {len(few)} queries, 6: {len(many)}"


def test_each_organisation_gets_its_own_concerns(engine: Engine) -> None:
    add_org(engine, "clinic", hosts=3, runs={RunStatus.failed: 7, RunStatus.succeeded: 2})
    add_org(engine, "empty", hosts=0, runs={})
    add_org(engine, "bakery", hosts=1, runs={RunStatus.queued: 1, RunStatus.running: 1})
    found, _ = attention(engine)
    by_name = {org.organisation.name: org for org in found.organisations}
    counts = {name: {c.key: c.count for c in org.concerns} for name, org in sorted(by_name.items())}
    assert counts == {
        "bakery": {"active_runs": 2, "no_key": 1},
        "clinic": {"failed_runs": 7, "no_key": 3},
        "empty": {},
    }
    assert (by_name["clinic"].hosts, by_name["bakery"].hosts, by_name["empty"].hosts) == (3, 1, 0)
    clinic = {c.key: c for c in by_name["clinic"].concerns}
    assert len(clinic["failed_runs"].sample) == dashboard.SAMPLE
    assert clinic["no_key"].sample == ["clinic-0", "clinic-1", "clinic-2"]
    assert [
        len(org.recent_runs) for org in (by_name[n] for n in ("clinic", "bakery", "empty"))
    ] == [
        dashboard.SAMPLE,
        2,
        0,
    ]
    assert {run.organisation_id for run in by_name["bakery"].recent_runs} == {
        by_name["bakery"].organisation.id
    }


@pytest.mark.security
def test_a_member_of_one_organisation_reads_none_of_anothers_concerns(engine: Engine) -> None:
    """The queries cover every organisation at once: a viewer of `bakery` must still get
    only `bakery`, its counts and samples computed from its own rows only."""
    add_org(engine, "clinic", hosts=3, runs={RunStatus.failed: 4, RunStatus.running: 1})
    add_org(engine, "bakery", hosts=1, runs={RunStatus.succeeded: 1})
    with session_scope(engine) as session:
        bakery = organisations.get_organisation(session=session, actor=ADMIN, name="bakery")
        viewer = member_actor(bakery.id, Role.viewer, "baker")
        found = dashboard.attention(session=session, actor=viewer)
    assert [org.organisation.name for org in found.organisations] == ["bakery"]
    [only] = found.organisations
    assert {c.key: c.count for c in only.concerns} == {"no_key": 1}
    assert only.concerns[0].sample == ["bakery-0"]
    assert {run.organisation_id for run in only.recent_runs} == {bakery.id}
    assert found.node == []
