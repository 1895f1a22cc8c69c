"""A sender killed between the event's commit and the receiver's answer: the next sender
delivers it once its claim runs out, under the same idempotency key; and the server's
own job loop delivers what is committed, with no call from the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from federation.keys import NodeKey
from infracms import keys
from infracms.app import create_app
from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models.notification import DeliveryState, OutboxMessage
from infracms.services import notification_delivery as delivery
from infracms.services.setup import initialise
from tests.conftest import make_settings
from tests.helpers import make_org
from tests.notifications.conftest import add_channel
from tests.notifications.receivers import WebhookReceiver
from tests.notifications.test_webhooks import emit


def node_env(settings: Settings) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("INFRACMS_")},
        "INFRACMS_DATA_DIR": str(settings.data_dir),
        "INFRACMS_NOTIFY_ALLOW_PRIVATE_TARGETS": "true",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }


@pytest.mark.slow
def test_a_killed_sender_leaves_the_notification_to_be_delivered_once_per_key(
    clinic: Engine, node: Settings, receiver: WebhookReceiver
) -> None:
    add_channel(clinic, node, "run.failed", name="ops", kind="webhook", url=receiver.url)
    emit(clinic)
    receiver.hold = True  # the first sender's request arrives and is never answered
    sender = subprocess.Popen(
        [sys.executable, "-m", "infracms", "notify", "deliver"],
        env=node_env(node),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert receiver.arrived.wait(60), "the sender's request never arrived"
    finally:
        os.killpg(sender.pid, signal.SIGKILL)
        sender.wait(10)
    with session_scope(clinic) as session:
        [row] = session.exec(select(OutboxMessage)).all()
    assert row.state is DeliveryState.pending and row.claimed_until is not None
    receiver.hold = False
    assert delivery.deliver_due(node, clinic) == 0  # its claim has not run out yet
    after = row.claimed_until + delivery.LEASE
    assert delivery.deliver_due(node, clinic, now=lambda: after) == 1
    assert delivery.deliver_due(node, clinic, now=lambda: after + delivery.LEASE) == 0
    assert receiver.seen == [row.idempotency_key, row.idempotency_key]  # the same key
    assert receiver.keys() == [row.idempotency_key]  # answered, and so acted on, once


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Settings, Engine]]:
    settings = make_settings(tmp_path / "served", notify_allow_private_targets=True)
    setup_engine = make_engine(settings)
    initialise(settings, setup_engine)
    setup_engine.dispose()
    app = create_app(settings)
    with TestClient(app):
        yield settings, app.state.engine
    app.state.engine.dispose()


@pytest.mark.slow
def test_the_servers_own_job_loop_delivers_what_is_committed(
    served: tuple[Settings, Engine], tmp_path: Path
) -> None:
    settings, engine = served

    make_org(engine, "clinic")
    server = WebhookReceiver(
        node_key=NodeKey(keys.load_identity(settings)).trusted(settings.node_name)
    )
    try:
        add_channel(engine, settings, "run.failed", name="ops", kind="webhook", url=server.url)
        emit(engine)
        assert server.arrived.wait(30), "nothing arrived from the server's job loop"
        deadline = time.monotonic() + 30
        while not server.received and time.monotonic() < deadline:
            time.sleep(0.05)
        [got] = server.received
        assert got.signed_by == settings.node_name
    finally:
        server.close()
