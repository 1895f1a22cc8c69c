"""Webhook delivery to a real receiver: signed with the node's key and the shared secret,
retried while the receiver is down, delivered once per idempotency key."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models.base import utcnow
from infracms.models.notification import DeliveryState, NotificationKind, OutboxMessage
from infracms.models.organisation import Organisation
from infracms.services import notification_delivery as delivery
from infracms.services import notifications
from tests.notifications.conftest import add_channel
from tests.notifications.receivers import WebhookReceiver, free_port


def emit(
    engine: Engine, kind: NotificationKind = NotificationKind.run_failed, **data: object
) -> None:
    with session_scope(engine, write=True) as session:
        org_id = session.exec(select(Organisation.id).where(Organisation.name == "clinic")).one()
        notifications.emit(
            session, organisation_id=org_id, kind=kind, subject="apply of clinic failed", data=data
        )
        session.commit()


def rows(engine: Engine) -> list[OutboxMessage]:
    with session_scope(engine) as session:
        return list(session.exec(select(OutboxMessage)))


def test_a_webhook_arrives_signed_by_the_node_and_with_the_hmac(
    clinic: Engine, node: Settings, receiver: WebhookReceiver
) -> None:
    add_channel(
        clinic,
        node,
        "run.failed",
        name="ops",
        kind="webhook",
        url=receiver.url,
        hmac_secret="shared-secret-123456",
    )
    emit(clinic, run="r1", password="hunter2-hunter2")
    assert delivery.deliver_due(node, clinic) == 1
    [got] = receiver.received
    assert receiver.refused == []
    assert got.signed_by == node.node_name and got.hmac_ok is True
    assert got.body["kind"] == "run.failed" and got.body["organisation"] == "clinic"
    assert got.key == got.body["idempotency_key"] == rows(clinic)[0].idempotency_key
    assert got.body["data"]["password"] == {"redacted": "withheld"}
    assert "hunter2" not in str(got.body)
    [row] = rows(clinic)
    assert row.state is DeliveryState.delivered and row.attempts == 1


def test_a_slack_body_is_one_text_line(
    clinic: Engine, node: Settings, receiver: WebhookReceiver
) -> None:
    add_channel(
        clinic,
        node,
        "run.failed",
        name="chat",
        kind="webhook",
        url=receiver.url,
        body_format="slack",
        sign_with_node_key=False,
    )
    emit(clinic)
    delivery.deliver_due(node, clinic)
    [got] = receiver.received
    assert got.body == {"text": "[clinic] run.failed: apply of clinic failed"}
    assert got.signed_by is None and got.hmac_ok is None


def test_receiver_down_is_retried_with_back_off_then_delivered_once(
    clinic: Engine, node: Settings, node_key: object
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    add_channel(clinic, node, "run.failed", name="ops", kind="webhook", url=url)
    emit(clinic)
    start = utcnow()
    assert delivery.deliver_due(node, clinic, now=lambda: start) == 1
    [row] = rows(clinic)
    assert row.state is DeliveryState.pending and row.attempts == 1
    assert "ConnectError" in (row.last_error or ""), row.last_error
    assert row.next_attempt_at == start + timedelta(seconds=1)  # the first back-off
    assert delivery.deliver_due(node, clinic, now=lambda: start) == 0  # not due yet
    second = start + timedelta(seconds=1)
    delivery.deliver_due(node, clinic, now=lambda: second)
    assert rows(clinic)[0].next_attempt_at == second + timedelta(seconds=2)  # doubled
    receiver = WebhookReceiver(node_key=node_key, port=port)  # type: ignore[arg-type]
    try:
        later = second + timedelta(seconds=2)
        assert delivery.deliver_due(node, clinic, now=lambda: later) == 1
        assert delivery.deliver_due(node, clinic, now=lambda: later + timedelta(hours=1)) == 0
        assert len(receiver.received) == 1 and receiver.received[0].signed_by == node.node_name
    finally:
        receiver.close()
    [row] = rows(clinic)
    assert row.state is DeliveryState.delivered and row.attempts == 3
    assert [entry["error"] is None for entry in row.attempt_log] == [False, False, True]


def test_an_error_answer_is_recorded_and_the_last_attempt_fails_the_delivery(
    clinic: Engine, node: Settings, receiver: WebhookReceiver
) -> None:
    receiver.answer = 503
    add_channel(clinic, node, "run.failed", name="ops", kind="webhook", url=receiver.url)
    emit(clinic)
    few = node.model_copy(update={"notify_max_attempts": 2})
    moment = utcnow()
    delivery.deliver_due(few, clinic, now=lambda: moment)
    delivery.deliver_due(few, clinic, now=lambda: moment + timedelta(hours=1))
    [row] = rows(clinic)
    assert row.state is DeliveryState.failed and row.attempts == 2
    assert (row.last_error or "").startswith("answered 503 Service Unavailable")
    assert delivery.deliver_due(few, clinic, now=lambda: moment + timedelta(days=1)) == 0


def test_a_claim_whose_claimer_died_is_delivered_after_its_lease_once(
    clinic: Engine, node: Settings, receiver: WebhookReceiver
) -> None:
    add_channel(clinic, node, "run.failed", name="ops", kind="webhook", url=receiver.url)
    emit(clinic)
    emit(clinic)
    moment = utcnow()
    claimed = delivery.claim_due(clinic, node, claimer="gone:1:1", now=moment)
    assert len(claimed) == 2  # ... and the process that claimed them is gone
    assert delivery.deliver_due(node, clinic, now=lambda: moment) == 0  # still leased
    after = moment + delivery.LEASE + timedelta(seconds=1)
    assert delivery.deliver_due(node, clinic, now=lambda: after) == 2
    assert delivery.deliver_due(node, clinic, now=lambda: after + timedelta(hours=1)) == 0
    assert sorted(receiver.keys()) == sorted(item.idempotency_key for item in claimed)


def test_backoff_doubles_up_to_its_cap(node: Settings) -> None:
    capped = node.model_copy(
        update={"notify_backoff_seconds": 2.0, "notify_backoff_cap_seconds": 60}
    )
    waits = [delivery.backoff(capped, n).total_seconds() for n in range(1, 8)]
    assert waits == [2, 4, 8, 16, 32, 60, 60]
