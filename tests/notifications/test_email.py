"""Email delivery to a real SMTP server (aiosmtpd), in clear and with STARTTLS; a
refusal is recorded with the server's answer and retried."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from sqlmodel import select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models.base import utcnow
from infracms.models.notification import DeliveryState, NotificationKind, OutboxMessage
from infracms.services import notification_delivery as delivery
from tests.notifications.conftest import add_channel
from tests.notifications.receivers import Mailbox, self_signed, smtp_server
from tests.notifications.test_webhooks import emit


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def smtp(mailbox: Mailbox) -> Iterator[Controller]:
    server = smtp_server(mailbox)
    yield server
    server.stop()


def mail_settings(node: Settings, server: Controller, **extra: object) -> Settings:
    values = {
        "smtp_host": "127.0.0.1",
        "smtp_port": server.port,
        "smtp_security": "none",
        "smtp_from": "infracms@coop.example",
        **extra,
    }
    return Settings.model_validate({**node.model_dump(), **values})


def the_row(engine: Engine) -> OutboxMessage:
    with session_scope(engine) as session:
        [row] = session.exec(select(OutboxMessage)).all()
        return row


def test_an_email_channel_sends_to_its_recipients_with_the_key_as_message_id(
    clinic: Engine, node: Settings, smtp: Controller, mailbox: Mailbox
) -> None:
    settings = mail_settings(node, smtp)
    add_channel(
        clinic,
        settings,
        "run.failed",
        name="desk",
        kind="email",
        recipients=["desk@clinic.example", "boss@clinic.example"],
    )
    emit(clinic, NotificationKind.run_failed, run="r1", db_password="s3cret-value")
    assert delivery.deliver_due(settings, clinic) == 1
    [message] = mailbox.messages
    row = the_row(clinic)
    assert message["Message-ID"] == f"<{row.idempotency_key}@{settings.node_name}>"
    assert message["Subject"] == "[clinic] apply of clinic failed"
    assert message["X-Envelope-To"] == "desk@clinic.example, boss@clinic.example"
    assert "s3cret-value" not in message.as_string()
    assert row.state is DeliveryState.delivered


def test_starttls_with_the_servers_certificate(
    clinic: Engine, node: Settings, mailbox: Mailbox, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    server = smtp_server(mailbox, tls=(cert, key))
    try:
        settings = mail_settings(
            node, server, smtp_host="localhost", smtp_security="starttls", smtp_ca_file=cert
        )
        add_channel(
            clinic,
            settings,
            "run.failed",
            name="desk",
            kind="email",
            recipients=["desk@clinic.example"],
        )
        emit(clinic)
        delivery.deliver_due(settings, clinic)
    finally:
        server.stop()
    assert len(mailbox.messages) == 1 and the_row(clinic).state is DeliveryState.delivered


def test_a_refusing_server_is_recorded_with_its_answer_and_retried(
    clinic: Engine, node: Settings, smtp: Controller, mailbox: Mailbox
) -> None:
    settings = mail_settings(node, smtp)
    add_channel(
        clinic,
        settings,
        "run.failed",
        name="desk",
        kind="email",
        recipients=["desk@clinic.example"],
    )
    emit(clinic)
    mailbox.refusal = "451 4.3.0 mailbox busy, try later"
    moment = utcnow()
    delivery.deliver_due(settings, clinic, now=lambda: moment)
    row = the_row(clinic)
    assert row.state is DeliveryState.pending and row.attempts == 1
    assert row.last_error == "SMTP answered 451 4.3.0 mailbox busy, try later"
    mailbox.refusal = None
    delivery.deliver_due(settings, clinic, now=lambda: moment + timedelta(seconds=1))
    assert len(mailbox.messages) == 1 and the_row(clinic).state is DeliveryState.delivered


def test_no_smtp_server_configured_is_a_clear_failure(clinic: Engine, node: Settings) -> None:
    add_channel(
        clinic, node, "run.failed", name="desk", kind="email", recipients=["desk@clinic.example"]
    )
    emit(clinic)
    delivery.deliver_due(node, clinic)
    assert the_row(clinic).last_error == "no SMTP server is configured (INFRACMS_SMTP_HOST)"


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"smtp_from": None}, "INFRACMS_SMTP_FROM"),
        ({"smtp_from": "not an address"}, "INFRACMS_SMTP_FROM"),
        ({"smtp_user": "mailer"}, "go together"),
        ({"smtp_user": "m", "smtp_password": "p" * 12, "smtp_security": "none"}, "in clear"),
        ({"smtp_security": "ssl"}, "smtp_security"),
        ({"smtp_port": 0}, "smtp_port"),
        ({"smtp_ca_file": "/nonexistent/ca.pem"}, "is not a file"),
    ],
)
def test_bad_smtp_settings_are_refused(
    node: Settings, values: dict[str, object], complaint: str
) -> None:
    base = {**node.model_dump(), "smtp_host": "mail.example", "smtp_from": "a@b.example"}
    with pytest.raises(ValueError, match=complaint):
        Settings.model_validate({**base, **values})
