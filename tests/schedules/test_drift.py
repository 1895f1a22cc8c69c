"""Drift from finished runs: found on a host that was applied (audited, with the
definitions and a digest), shown as the host's state, acknowledged, cleared by an apply;
on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import Conflict, PermissionDenied
from infracms.models import AuditEntry, Role
from infracms.models.run import RunKind
from infracms.models.schedule import DriftState
from infracms.plugins import Plugins
from infracms.services import drift, host_state
from tests.conftest import make_settings
from tests.helpers import ADMIN, member_actor
from tests.schedules.conftest import changed_event, finish, run

ALL_OK = {"web1": {"ok": 2}, "web2": {"ok": 2}, "db1": {"ok": 1}}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """SQLite, and PostgreSQL (marked): the role and diff are picked out of the events by
    SQL that differs between the two."""
    if request.param == "sqlite":
        return make_settings(tmp_path / "var")
    url = request.getfixturevalue("fresh_postgres_database")
    return make_settings(tmp_path / "var", database_url=url)


def states(engine: Engine) -> dict[str, DriftState]:
    with session_scope(engine) as session:
        found = drift.organisation_drift(session=session, actor=ADMIN, organisation="clinic")
    return {state.host: state.state for state in found}


def entries(engine: Engine, action: str) -> list[dict[str, object]]:
    with session_scope(engine) as session:
        rows = session.exec(
            select(AuditEntry).where(AuditEntry.action == action).order_by(col(AuditEntry.index))
        )
        return [json.loads(row.payload) | {"subject": row.subject} for row in rows]


def drifted_plan(engine: Engine, plugins: Plugins, diff: str = "b") -> uuid.UUID:
    plan = run(engine, plugins, kind=RunKind.plan)
    events = [
        changed_event(1, "web1", "motd", "Write the message", {"before": "a", "after": diff}),
        changed_event(2, "db1", "base", "Install packages", None),
    ]
    finish(engine, plan, {**ALL_OK, "web1": {"changed": 1}, "db1": {"changed": 1}}, events)
    return plan


def test_states_before_and_after_a_first_apply(
    engine: Engine, clinic: uuid.UUID, plugins: Plugins
) -> None:
    assert set(states(engine).values()) == {DriftState.never_applied}
    finish(engine, run(engine, plugins, kind=RunKind.apply), ALL_OK)
    assert set(states(engine).values()) == {DriftState.in_sync}


def test_drift_found_is_shown_and_audited_with_its_definitions_and_digest(
    engine: Engine, clinic: uuid.UUID, plugins: Plugins
) -> None:
    finish(engine, run(engine, plugins, kind=RunKind.apply), ALL_OK)
    plan = drifted_plan(engine, plugins)
    assert states(engine) == {
        "db1": DriftState.drifted,
        "web1": DriftState.drifted,
        "web2": DriftState.in_sync,
    }
    with session_scope(engine) as session:
        web1 = drift.host_drift(session=session, actor=ADMIN, organisation="clinic", host="web1")
        assert host_state.standing(session, organisation_id=clinic).hosts["drifted"] == [
            "db1",
            "web1",
        ]
    assert web1.definitions == ["motd-web"] and web1.tasks == ["motd-web: Write the message"]
    assert web1.run_id == plan and web1.checked_at is not None and web1.digest
    found = entries(engine, "drift.found")
    assert sorted((e["host"], e["definitions"]) for e in found) == [  # type: ignore[type-var]
        ("db1", ["base-db"]),
        ("web1", ["motd-web"]),
    ]
    assert {e["digest"] for e in found if e["host"] == "web1"} == {web1.digest}
    again = drifted_plan(engine, plugins)  # the same drift again: nothing new to say
    assert len(entries(engine, "drift.found")) == 2
    with session_scope(engine) as session:
        web1 = drift.host_drift(session=session, actor=ADMIN, organisation="clinic", host="web1")
    assert web1.run_id == again and web1.since is not None and web1.checked_at > web1.since
    drifted_plan(engine, plugins, diff="c")  # a different diff on web1 is a new drift
    assert [e["host"] for e in entries(engine, "drift.found")][2:] == ["web1"]


def test_a_plan_on_a_host_never_applied_is_not_drift(
    engine: Engine, clinic: uuid.UUID, plugins: Plugins
) -> None:
    drifted_plan(engine, plugins)
    assert states(engine)["web1"] is DriftState.never_applied
    assert entries(engine, "drift.found") == []


def test_an_unreachable_host_stays_so_until_checked_again(
    engine: Engine, clinic: uuid.UUID, plugins: Plugins
) -> None:
    finish(engine, run(engine, plugins, kind=RunKind.apply), ALL_OK)
    plan = run(engine, plugins, kind=RunKind.plan)
    finish(engine, plan, {**ALL_OK, "web2": {"unreachable": 1}})
    assert states(engine)["web2"] is DriftState.unreachable


def test_acknowledged_drift_leaves_the_dashboard_until_it_changes(
    engine: Engine, clinic: uuid.UUID, plugins: Plugins
) -> None:
    finish(engine, run(engine, plugins, kind=RunKind.apply), ALL_OK)
    drifted_plan(engine, plugins)
    with session_scope(engine, write=True) as session:
        drift.acknowledge(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            host="web1",
            data={"reason": "hand-edited during the outage, kept until Monday"},
        )
    with session_scope(engine) as session:
        assert host_state.standing(session, organisation_id=clinic).hosts["drifted"] == ["db1"]
    (ack,) = entries(engine, "drift.acknowledge")
    assert ack["reason"].startswith("hand-edited") and ack["host"] == "web1"  # type: ignore[union-attr]
    drifted_plan(engine, plugins, diff="z")
    with session_scope(engine) as session:
        assert host_state.standing(session, organisation_id=clinic).hosts["drifted"] == [
            "db1",
            "web1",
        ]


def test_a_good_apply_clears_the_drift_of_what_it_applied(
    engine: Engine, clinic: uuid.UUID, plugins: Plugins
) -> None:
    finish(engine, run(engine, plugins, kind=RunKind.apply), ALL_OK)
    drifted_plan(engine, plugins)
    with session_scope(engine, write=True) as session:
        fix = drift.remediate(
            session=session, actor=ADMIN, plugins=plugins, organisation="clinic", host="web1"
        )
        assert fix.kind is RunKind.apply and fix.hosts == ["web1"]
        assert [d["name"] for d in fix.definitions] == ["motd-web"]
        fix_id = fix.id
    finish(engine, fix_id, {"web1": {"changed": 1}})
    assert states(engine)["web1"] is DriftState.in_sync
    assert states(engine)["db1"] is DriftState.drifted
    (cleared,) = entries(engine, "drift.cleared")
    assert cleared["host"] == "web1" and str(fix_id) in str(cleared["why"])
    # a later plan that finds nothing clears db1 too
    plan = run(engine, plugins, kind=RunKind.plan)
    finish(engine, plan, ALL_OK)
    assert set(states(engine).values()) == {DriftState.in_sync}
    assert [e["host"] for e in entries(engine, "drift.cleared")] == ["web1", "db1"]


def test_a_host_out_of_date_after_a_new_revision(
    engine: Engine, clinic: uuid.UUID, plugins: Plugins
) -> None:
    from infracms.services import definitions

    finish(engine, run(engine, plugins, kind=RunKind.apply), ALL_OK)
    with session_scope(engine, write=True) as session:
        definitions.save_revision(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            name="motd-web",
            data={"settings": {"message": "b"}},
        )
    found = states(engine)
    assert found["web1"] is DriftState.out_of_date and found["db1"] is DriftState.in_sync


@pytest.mark.security
def test_only_operators_and_owners_acknowledge_or_remediate(
    engine: Engine, clinic: uuid.UUID, plugins: Plugins
) -> None:
    finish(engine, run(engine, plugins, kind=RunKind.apply), ALL_OK)
    drifted_plan(engine, plugins)
    outsider_org = uuid.uuid4()
    for actor in (
        member_actor(clinic, Role.editor, "eddie"),
        member_actor(clinic, Role.viewer, "vera"),
        member_actor(outsider_org, Role.owner, "olga"),
    ):
        with session_scope(engine, write=True) as session:
            with pytest.raises(PermissionDenied):
                drift.acknowledge(
                    session=session,
                    actor=actor,
                    organisation="clinic",
                    host="web1",
                    data={"reason": "nothing to see"},
                )
            with pytest.raises(PermissionDenied):
                drift.remediate(
                    session=session,
                    actor=actor,
                    plugins=plugins,
                    organisation="clinic",
                    host="web1",
                )
    assert entries(engine, "drift.acknowledge") == []
    with session_scope(engine, write=True) as session, pytest.raises(Conflict):
        drift.acknowledge(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            host="web2",
            data={"reason": "web2 has no drift"},
        )


def test_drift_found_and_cleared_reach_the_channels_that_ask_for_them(
    engine: Engine, clinic: uuid.UUID, plugins: Plugins, settings: Settings
) -> None:
    from infracms.models.notification import OutboxMessage
    from infracms.services import notification_settings as channels

    with session_scope(engine, write=True) as session:
        channels.create_channel(
            session=session,
            actor=ADMIN,
            settings=settings,
            organisation="clinic",
            data={"name": "ops", "kind": "webhook", "url": "https://hooks.example/ops"},
        )
        for kind in ("drift.found", "drift.cleared"):
            channels.add_rule(
                session=session,
                actor=ADMIN,
                organisation="clinic",
                data={"channel": "ops", "kind": kind},
            )
    finish(engine, run(engine, plugins, kind=RunKind.apply), ALL_OK)
    drifted_plan(engine, plugins)
    finish(engine, run(engine, plugins, kind=RunKind.plan), ALL_OK)
    with session_scope(engine) as session:
        bodies = [row.body for row in session.exec(select(OutboxMessage))]
    said = sorted((body["kind"], body["data"]["host"]) for body in bodies)
    assert said == [
        ("drift.cleared", "db1"),
        ("drift.cleared", "web1"),
        ("drift.found", "db1"),
        ("drift.found", "web1"),
    ]
