"""A peer's catalog going stale (its sync starts failing) notifies the node's channels,
once for the failures in a row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from infracms.db import session_scope
from infracms.models.notification import NotificationKind, OutboxMessage
from infracms.services import notification_settings as channels
from tests.helpers import ADMIN
from tests.services.test_catalog_status import run_sync
from tests.witness.nodes import Network, Node, pin, started_node


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    network = Network()
    with (
        started_node(tmp_path, "a.example", network) as a,
        started_node(tmp_path, "b.example", network) as b,
    ):
        pin(a, b)
        pin(b, a)
        yield a, b


def test_a_catalog_that_stops_syncing_notifies_once(peers: tuple[Node, Node]) -> None:
    _, b = peers
    with session_scope(b.engine, write=True) as session:
        channels.create_channel(
            session=session,
            actor=ADMIN,
            settings=b.ctx.settings,
            organisation=None,
            data={"name": "noc", "kind": "webhook", "url": "https://noc.example/hook"},
        )
        channels.add_rule(
            session=session,
            actor=ADMIN,
            organisation=None,
            data={"channel": "noc", "kind": "peer.catalog_stale"},
        )
    run_sync(b)
    b.network.clients.pop("a.example")
    run_sync(b)
    run_sync(b)
    with session_scope(b.engine) as session:
        [row] = session.exec(select(OutboxMessage)).all()
    assert row.kind is NotificationKind.peer_catalog_stale and row.organisation_id is None
    assert row.body["data"]["peer"] == "a.example"
    assert row.body["subject"].startswith("the catalog of a.example is stale")
