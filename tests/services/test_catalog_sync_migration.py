"""Migration 0007 on SQLite and PostgreSQL: peers' catalog rows synced before it get
their last success and last outcome from what they hold; down and up again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine, inspect
from sqlmodel import Session, select

from infracms.config import Settings
from infracms.db import alembic_config, make_engine, upgrade
from infracms.models.base import UTCDateTime
from infracms.models.federation import Peer, PeerCatalog, SyncOutcome

pytestmark = pytest.mark.postgres

BEFORE = "0006_witness"
T1 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T2 = T1 + timedelta(minutes=5)
PEERS = sa.table(
    "peer",
    sa.column("id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("base_url", sa.String()),
    sa.column("status", sa.String()),
    sa.column("invited_by_us", sa.Boolean()),
    sa.column("created_at", UTCDateTime()),
)
CATALOGS = sa.table(
    "peer_catalog",
    sa.column("peer_id", sa.Uuid()),
    sa.column("body", sa.Text()),
    sa.column("version", sa.Integer()),
    sa.column("fetched_at", UTCDateTime()),
    sa.column("checked_at", UTCDateTime()),
    sa.column("error", sa.Text()),
    sa.column("error_at", UTCDateTime()),
)
# name: (fetched_at, checked_at, error) as a node before 0007 left them
ROWS = {
    "unchanged.test": (T1, T2, None),
    "updated.test": (T2, T2, None),
    "down.test": (T1, T2, "PeerUnreachable: connection refused"),
    "never-reached.test": (None, T2, "PeerTimeout: no answer"),
    "untried.test": (None, None, None),
}


@pytest.fixture
def old_engine(any_db_settings: Settings) -> Iterator[Engine]:
    """A database migrated up to the revision before, with catalog rows of five peers."""
    any_db_settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(any_db_settings, BEFORE)
    engine = make_engine(any_db_settings)
    with engine.begin() as connection:
        for name, (fetched, checked, error) in ROWS.items():
            peer_id = uuid.uuid4()
            connection.execute(
                PEERS.insert().values(
                    id=peer_id,
                    name=name,
                    base_url=f"https://{name}",
                    status="active",
                    invited_by_us=True,
                    created_at=T1,
                )
            )
            body = None if fetched is None else '{"catalog": {"offerings": []}}'
            connection.execute(
                CATALOGS.insert().values(
                    peer_id=peer_id,
                    body=body,
                    version=None if fetched is None else 3,
                    fetched_at=fetched,
                    checked_at=checked,
                    error=error,
                    error_at=checked if error else None,
                )
            )
    yield engine
    engine.dispose()


def _columns(engine: Engine) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns("peer_catalog")}


def _statuses(engine: Engine) -> dict[str, tuple[object, ...]]:
    with Session(engine) as session:
        found = session.exec(
            select(Peer.name, PeerCatalog).join(PeerCatalog, PeerCatalog.peer_id == Peer.id)  # type: ignore[arg-type]
        ).all()
    return {name: (row.synced_at, row.outcome, row.failure, row.version) for name, row in found}


def test_rows_synced_before_get_their_last_success_and_outcome(
    any_db_settings: Settings, old_engine: Engine
) -> None:
    assert "synced_at" not in _columns(old_engine)
    upgrade(any_db_settings)
    assert {"synced_at", "outcome", "failure"} <= _columns(old_engine)
    assert _statuses(old_engine) == {
        "unchanged.test": (T2, SyncOutcome.unchanged, None, 3),
        "updated.test": (T2, SyncOutcome.updated, None, 3),
        "down.test": (T1, SyncOutcome.failed, None, 3),
        "never-reached.test": (None, SyncOutcome.failed, None, None),
        "untried.test": (None, None, None, None),
    }


def test_down_and_up_again_keeps_the_rows(any_db_settings: Settings, old_engine: Engine) -> None:
    upgrade(any_db_settings)
    command.downgrade(alembic_config(any_db_settings), BEFORE)
    assert not {"synced_at", "outcome", "failure"} & _columns(old_engine)
    with old_engine.connect() as connection:
        kept = connection.execute(sa.select(sa.func.count()).select_from(CATALOGS)).scalar_one()
    assert kept == len(ROWS)
    upgrade(any_db_settings)
    assert _statuses(old_engine)["down.test"] == (T1, SyncOutcome.failed, None, 3)
