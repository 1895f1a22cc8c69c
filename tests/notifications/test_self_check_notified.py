"""A failing audit self check notifies the node's channels once, not at every check."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import select

from infracms.audit import store
from infracms.config import Settings
from infracms.db import session_scope
from infracms.models.notification import NotificationKind, OutboxMessage
from infracms.services import audit
from infracms.services import notification_settings as channels
from tests.audit_store.conftest import append_entries
from tests.audit_store.test_selfcheck import sql
from tests.helpers import ADMIN


def test_a_failing_self_check_notifies_the_node_once(engine: Engine, settings: Settings) -> None:
    with session_scope(engine, write=True) as session:
        channels.create_channel(
            session=session,
            actor=ADMIN,
            settings=settings,
            organisation=None,
            data={"name": "noc", "kind": "webhook", "url": "https://noc.example/hook"},
        )
        channels.add_rule(
            session=session,
            actor=ADMIN,
            organisation=None,
            data={"channel": "noc", "kind": "audit.check_failed"},
        )
    append_entries(engine, 10, per_transaction=5)
    store.integrate(engine, audit.node_signer(settings), batch=8)
    assert audit.self_check(engine=engine, settings=settings).ok
    sql(settings, "UPDATE audit_entry SET action = 'x' WHERE \"index\" = 5")
    for _ in range(3):
        assert not audit.self_check(engine=engine, settings=settings).ok
    with session_scope(engine) as session:
        [row] = session.exec(select(OutboxMessage)).all()
    assert row.kind is NotificationKind.audit_check_failed and row.organisation_id is None
    assert row.body["data"]["first_bad"] == 5
