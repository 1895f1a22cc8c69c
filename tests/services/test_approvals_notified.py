"""Approval events reach the organisation's notification channels, in the same
transaction as the decision: requested, granted, break-glass used."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models.notification import OutboxMessage
from infracms.plugins import Plugins
from infracms.services import approvals
from infracms.services import notification_settings as channels
from tests.services.test_approvals import apply, build_clinic, decide, person, set_policy
from tests.services.test_modules import FAKES


@pytest.fixture
def plugins() -> Plugins:
    return Plugins.load(builtins=FAKES, entry_points=False)


@pytest.fixture
def clinic(engine: Engine, plugins: Plugins) -> Engine:
    return build_clinic(engine, plugins)


def _subscribe(engine: Engine, settings: Settings, *kinds: str) -> None:
    owner = person(engine, "olga")
    with session_scope(engine, write=True) as session:
        channels.create_channel(
            session=session,
            actor=owner,
            settings=settings,
            organisation="clinic",
            data={"name": "ops", "kind": "webhook", "url": "https://hooks.example/ops"},
        )
        for kind in kinds:
            channels.add_rule(
                session=session,
                actor=owner,
                organisation="clinic",
                data={"channel": "ops", "kind": kind},
            )


def _kinds(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        rows = session.exec(select(OutboxMessage)).all()
        return sorted(row.body["kind"] for row in rows)


def test_requested_granted_and_break_glass_are_queued(
    clinic: Engine, plugins: Plugins, settings: Settings
) -> None:
    _subscribe(clinic, settings, "approval.requested", "approval.granted", "break_glass.used")
    set_policy(clinic, approvals_required=1)
    held = apply(clinic, plugins, person(clinic, "oscar"), hosts=["web1"])
    assert _kinds(clinic) == ["approval.requested"]
    decide(clinic, plugins, person(clinic, "olga"), held)
    assert _kinds(clinic) == ["approval.granted", "approval.requested"]
    other = apply(clinic, plugins, person(clinic, "oscar"), hosts=["web1"])
    with session_scope(clinic, write=True) as session:
        approvals.break_glass(
            session=session,
            actor=person(clinic, "olga"),
            organisation="clinic",
            run_id=other.id,
            data={"reason": "the site is down and must be fixed now"},
        )
    assert _kinds(clinic) == [
        "approval.granted",
        "approval.requested",
        "approval.requested",
        "break_glass.used",
    ]
