"""emit(): outbox rows in the caller's transaction, one per destination that wants the
event; a finished run notifies with no secret in what is sent."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import Organisation, Role, Run, RunStatus, User
from infracms.models.notification import NotificationKind, OutboxMessage
from infracms.plugins import Plugins
from infracms.services import definitions, inventory, modules, notifications, runs, secret_sources
from infracms.services import notification_settings as channels
from tests.helpers import ADMIN, count, make_user, member_actor
from tests.notifications.conftest import add_channel
from tests.services.test_modules import FAKES

SECRET = "s3cr3t-signature-value"


def clinic_id(engine: Engine) -> object:
    with session_scope(engine) as session:
        return session.exec(select(Organisation.id).where(Organisation.name == "clinic")).one()


def test_rows_are_written_with_the_callers_transaction_or_not_at_all(
    clinic: Engine, node: Settings
) -> None:
    add_channel(
        clinic,
        node,
        "run.failed",
        "drift.found",
        name="ops",
        kind="webhook",
        url="https://hooks.example/ops",
    )
    add_channel(
        clinic,
        node,
        "run.failed",
        name="off",
        kind="webhook",
        url="https://hooks.example/off",
        enabled=False,
    )
    with session_scope(clinic, write=True) as session:
        queued = notifications.emit(
            session,
            organisation_id=clinic_id(clinic),
            kind=NotificationKind.run_failed,
            subject="x",
            data={},
        )
        assert queued is not None
        session.rollback()
    assert count(clinic, OutboxMessage) == 0
    with session_scope(clinic, write=True) as session:
        for kind in (NotificationKind.run_failed, NotificationKind.run_succeeded):
            notifications.emit(
                session, organisation_id=clinic_id(clinic), kind=kind, subject="x", data={}
            )
        session.commit()
    with session_scope(clinic) as session:
        [row] = session.exec(select(OutboxMessage)).all()
    assert (row.destination, row.kind) == ("ops", NotificationKind.run_failed)


def test_node_events_go_only_to_the_nodes_channels(clinic: Engine, node: Settings) -> None:
    add_channel(
        clinic,
        node,
        "audit.check_failed",
        name="ops",
        kind="webhook",
        url="https://hooks.example/ops",
    )
    with session_scope(clinic, write=True) as session:
        channels.create_channel(
            session=session,
            actor=ADMIN,
            settings=node,
            organisation=None,
            data={"name": "noc", "kind": "webhook", "url": "https://noc.example/hook"},
        )
        channels.add_rule(
            session=session,
            actor=ADMIN,
            organisation=None,
            data={"channel": "noc", "kind": "audit.check_failed"},
        )
        notifications.emit(
            session,
            organisation_id=None,
            kind=NotificationKind.audit_check_failed,
            subject="x",
            data={},
        )
        session.commit()
    with session_scope(clinic) as session:
        assert [r.destination for r in session.exec(select(OutboxMessage))] == ["noc"]


@pytest.fixture
def plugins() -> Plugins:
    return Plugins.load(builtins=FAKES, entry_points=False)


def test_a_finished_run_notifies_its_channel_and_its_subscribed_requester_without_secrets(
    clinic: Engine, node: Settings, plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFRACMS_VAR_NOTIFY_SIG", SECRET)
    make_user(clinic, node, "rita", clinic=Role.owner)
    with session_scope(clinic, write=True) as session:
        rita = session.exec(select(User).where(User.username == "rita")).one()
        rita.email = "rita@clinic.example"
        session.add(rita)
        session.commit()
        secret_sources.grant_source(
            session=session,
            actor=ADMIN,
            settings=node,
            organisation="clinic",
            data={"kind": "env", "name": "INFRACMS_VAR_NOTIFY_SIG"},
        )
        for name in ("base", "motd"):
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )
        modules.enable_module(
            session=session, actor=ADMIN, plugins=plugins, organisation="clinic", name="motd"
        )
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            data={"name": "web1", "address": "198.51.100.1"},
        )
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={
                "name": "motd-web",
                "module": "motd",
                "target": {"host": "web1"},
                "settings": {"message": "hi", "signature": {"$env": "INFRACMS_VAR_NOTIFY_SIG"}},
            },
        )
    add_channel(
        clinic, node, "run.failed", name="ops", kind="webhook", url="https://hooks.example/ops"
    )
    rita_actor = replace(member_actor(clinic_id(clinic), Role.owner, "rita"), user_id=rita.id)
    with session_scope(clinic, write=True) as session:
        channels.subscribe(
            session=session, actor=rita_actor, organisation="clinic", data={"kind": "run.failed"}
        )
        run = runs.create_run(
            session=session,
            actor=rita_actor,
            plugins=plugins,
            organisation="clinic",
            data={"kind": "apply"},
        )
        runs.claim_run(session, run_id=run.id, worker="w")
        runs.finish_run(
            session=session,
            run_id=run.id,
            status=RunStatus.failed,
            rc=2,
            recap={"web1": {"failed": 1}},
            stdout_sha256=None,
        )
    with session_scope(clinic) as session:
        rows = session.exec(select(OutboxMessage).order_by(OutboxMessage.destination)).all()
    assert [r.destination for r in rows] == ["ops", "rita (email)"]
    body = rows[0].body
    assert body["kind"] == "run.failed" and body["data"]["run"] == str(run.id)
    assert body["data"]["definitions"][0]["name"] == "motd-web"
    assert SECRET not in str(body) and "INFRACMS_VAR_NOTIFY_SIG" not in str(body)


def test_a_cancelled_run_notifies_nobody(clinic: Engine, node: Settings) -> None:
    add_channel(
        clinic,
        node,
        "run.failed",
        "run.succeeded",
        name="ops",
        kind="webhook",
        url="https://hooks.example/ops",
    )
    with session_scope(clinic, write=True) as session:
        run = Run(
            organisation_id=clinic_id(clinic),
            kind="plan",
            requested_by="x",
            status=RunStatus.cancelled,
        )
        notifications.run_finished(session, run, "clinic")
        session.commit()
    assert count(clinic, OutboxMessage) == 0
