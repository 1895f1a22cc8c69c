"""Schedules: cron in a time zone across DST, refused input, a missed schedule fires once,
no two checks of one scope at once, reconcile applies what drifted. A fake clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from infracms.db import session_scope
from infracms.errors import InvalidInput, PermissionDenied
from infracms.models import Role, Run, Schedule
from infracms.models.run import RunKind, RunStatus
from infracms.orchestration.jobs import JobContext, periodic_jobs
from infracms.orchestration.jobs.schedules import fire_due
from infracms.plugins import Plugins
from infracms.services import schedules
from infracms.services.schedules import next_due
from tests.helpers import ADMIN, audit_size, count, member_actor
from tests.schedules.conftest import HOUR, changed_event, finish

T0 = datetime(2027, 5, 3, 8, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        # Paris skips 02:00-03:00 on 2027-03-28: the 02:30 check runs once, at 03:30 CEST
        ("30 2 * * *", "2027-03-27T02:00Z", ["2027-03-28T01:30Z", "2027-03-29T00:30Z"]),
        # and repeats 02:00-03:00 on 2027-10-31: the 02:30 check runs once, the first time
        ("30 2 * * *", "2027-10-30T02:00Z", ["2027-10-31T00:30Z", "2027-11-01T01:30Z"]),
        # 09:00 on the wall clock, whatever the offset
        ("0 9 * * 1", "2027-03-20T00:00Z", ["2027-03-22T08:00Z", "2027-03-29T07:00Z"]),
    ],
)
def test_cron_is_read_on_the_wall_clocks_of_the_time_zone(
    cron: str, after: str, expected: list[str]
) -> None:
    moment = datetime.fromisoformat(after)
    found = []
    for _ in expected:
        moment = next_due(cron, "Europe/Paris", moment)
        found.append(moment.strftime("%Y-%m-%dT%H:%MZ"))
    assert found == expected


def test_a_time_in_the_repeated_hour_is_never_due_before_it() -> None:
    second_pass = datetime(2027, 10, 31, 1, 15, tzinfo=UTC)  # 02:15 CET, after 02:15 CEST
    assert next_due("*/30 * * * *", "Europe/Paris", second_pass) > second_pass


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cron", "61 * * * *"),
        ("cron", "* * * * * *"),
        ("cron", "every day"),
        ("time_zone", "Mars/Olympus"),
        ("time_zone", "../../etc/passwd"),
        ("time_zone", ""),
    ],
)
def test_bad_cron_and_time_zones_are_refused_with_a_field_error(
    engine: Engine, clinic: uuid.UUID, field: str, value: str
) -> None:
    data = {"name": "nightly", "cron": "0 3 * * *", "time_zone": "UTC", field: value}
    before = audit_size(engine)
    with session_scope(engine, write=True) as session, pytest.raises(InvalidInput) as caught:
        schedules.create_schedule(session=session, actor=ADMIN, organisation="clinic", data=data)
    assert field in caught.value.errors, caught.value.errors
    assert count(engine, Schedule) == 0 and audit_size(engine) == before


def add(engine: Engine, now: datetime = T0, **data: object) -> Schedule:
    fields = {"name": "hourly", "cron": "0 * * * *", "time_zone": "Europe/Paris", **data}
    with session_scope(engine, write=True) as session:
        return schedules.create_schedule(
            session=session, actor=ADMIN, organisation="clinic", data=fields, now=now
        )


def fire(engine: Engine, plugins: Plugins, now: datetime) -> list[uuid.UUID]:
    with session_scope(engine, write=True) as session:
        return schedules.fire_due(session, plugins, now)


def schedule_row(engine: Engine) -> Schedule:
    with session_scope(engine) as session:
        return session.exec(select(Schedule)).one()


def test_a_schedule_missed_while_the_node_was_down_fires_once(
    engine: Engine, clinic: uuid.UUID, plugins: Plugins
) -> None:
    add(engine)
    assert schedule_row(engine).next_due_at == datetime(2027, 5, 3, 9, tzinfo=UTC)
    assert fire(engine, plugins, T0 + 0.5 * HOUR) == []
    back = T0 + 10 * HOUR  # ten occurrences missed
    fired = fire(engine, plugins, back)
    assert len(fired) == 1
    assert fire(engine, plugins, back) == [], "a second tick at the same time fired again"
    row = schedule_row(engine)
    assert row.last_fired_at == back and row.last_run_id == fired[0]
    assert row.next_due_at == datetime(2027, 5, 3, 19, tzinfo=UTC)
    with session_scope(engine) as session:
        plan = session.get(Run, fired[0])
        assert plan is not None and plan.kind is RunKind.plan
        assert plan.requested_by == "schedule hourly"
        assert sorted(plan.hosts) == ["db1", "web1", "web2"]


def test_a_check_never_starts_while_the_previous_one_of_its_scope_runs(
    engine: Engine, clinic: uuid.UUID, plugins: Plugins
) -> None:
    add(engine, group="web")
    add(engine, name="twin", group="web")  # the same scope under another name
    first = fire(engine, plugins, T0 + HOUR)
    assert len(first) == 1, "two checks of one scope started together"
    assert fire(engine, plugins, T0 + 2 * HOUR) == []
    with session_scope(engine) as session:
        skipped = [s.last_skipped for s in session.exec(select(Schedule))]
    assert all(s and str(first[0]) in s for s in skipped), skipped
    finish(engine, first[0], {"web1": {"ok": 1}, "web2": {"ok": 1}})
    assert len(fire(engine, plugins, T0 + 3 * HOUR)) == 1


def test_a_disabled_schedule_does_not_fire(
    engine: Engine, clinic: uuid.UUID, plugins: Plugins
) -> None:
    add(engine, enabled=False)
    assert fire(engine, plugins, T0 + 5 * HOUR) == []


def test_a_schedule_with_nothing_to_check_says_why_and_moves_on(
    engine: Engine, clinic: uuid.UUID, plugins: Plugins
) -> None:
    add(engine, definitions=["gone"])
    assert fire(engine, plugins, T0 + HOUR) == []
    row = schedule_row(engine)
    assert row.last_skipped and "gone" in row.last_skipped
    assert row.next_due_at is not None and row.next_due_at > T0 + HOUR


def test_reconcile_applies_what_the_plan_found_drifted_once(
    engine: Engine, clinic: uuid.UUID, plugins: Plugins
) -> None:
    add(engine, mode="reconcile")
    (plan_id,) = fire(engine, plugins, T0 + HOUR)
    events = [changed_event(1, "web2", "motd", "Write the message", {"after": "a"})]
    finish(engine, plan_id, {"web1": {"ok": 2}, "web2": {"changed": 1}, "db1": {"ok": 1}}, events)
    (apply_id,) = fire(engine, plugins, T0 + 1.1 * HOUR)
    with session_scope(engine) as session:
        apply = session.get(Run, apply_id)
        assert apply is not None and apply.kind is RunKind.apply
        assert apply.hosts == ["web2"] and apply.parent_id == plan_id
        assert [d["name"] for d in apply.definitions] == ["motd-web"]
    assert fire(engine, plugins, T0 + 1.2 * HOUR) == [], "the same plan was reconciled twice"


def test_the_job_is_registered_and_submits_what_it_queued(
    engine: Engine, settings: object, clinic: uuid.UUID
) -> None:
    assert "schedules" in [job.name for job in periodic_jobs(broker=False)]
    assert "schedules" in [job.name for job in periodic_jobs(broker=True)]
    add(engine)
    submitted: list[uuid.UUID] = []
    context = JobContext(settings=settings, engine=engine)  # type: ignore[arg-type]
    queued = fire_due(context, now=T0 + HOUR, submit=submitted.append)
    assert queued == submitted and len(queued) == 1
    with session_scope(engine) as session:
        assert session.get(Run, queued[0]).status is RunStatus.queued  # type: ignore[union-attr]


@pytest.mark.security
def test_an_editor_may_schedule_checks_but_not_unattended_applies(
    engine: Engine, clinic: uuid.UUID, plugins: Plugins
) -> None:
    editor = member_actor(clinic, Role.editor, "eddie")
    viewer = member_actor(clinic, Role.viewer, "vera")
    data = {"name": "nightly", "cron": "0 3 * * *"}
    with session_scope(engine, write=True) as session:
        with pytest.raises(PermissionDenied):
            schedules.create_schedule(
                session=session,
                actor=editor,
                organisation="clinic",
                data={**data, "mode": "reconcile"},
            )
        with pytest.raises(PermissionDenied):
            schedules.create_schedule(
                session=session, actor=viewer, organisation="clinic", data=data
            )
        schedules.create_schedule(session=session, actor=editor, organisation="clinic", data=data)
    with session_scope(engine, write=True) as session, pytest.raises(PermissionDenied):
        schedules.remove_schedule(
            session=session, actor=viewer, organisation="clinic", name="nightly"
        )
    assert count(engine, Schedule) == 1
