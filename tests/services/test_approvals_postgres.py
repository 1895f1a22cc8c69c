"""Approvals on PostgreSQL: the held run is locked while people decide, the plan's JSON
and digest read back the same, and a changed definition voids the approvals at claim."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from infracms.db import make_engine, session_scope
from infracms.models import RunStatus
from infracms.plugins import Plugins
from infracms.services import definitions, runs
from infracms.services.setup import initialise
from tests.conftest import make_settings
from tests.services.test_approvals import (
    apply,
    build_clinic,
    decide,
    person,
    plugins,
    set_policy,
    status,
)

__all__ = ["plugins"]
pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_clinic(tmp_path: Path, fresh_postgres_database: str, plugins: Plugins) -> Iterator[Engine]:
    settings = make_settings(tmp_path / "var", database_url=fresh_postgres_database)
    engine = make_engine(settings)
    initialise(settings, engine)
    yield build_clinic(engine, plugins)
    engine.dispose()


def test_approved_then_changed_on_postgres(pg_clinic: Engine, plugins: Plugins) -> None:
    set_policy(pg_clinic)
    held = apply(pg_clinic, plugins, person(pg_clinic, "oscar"), hosts=["web1", "web2"])
    assert held.status is RunStatus.pending_approval
    assert decide(pg_clinic, plugins, person(pg_clinic, "olga"), held).status is (
        RunStatus.pending_approval
    )
    assert decide(pg_clinic, plugins, person(pg_clinic, "otto"), held).status is RunStatus.queued
    again = apply(pg_clinic, plugins, person(pg_clinic, "oscar"), hosts=["web1"])
    decide(pg_clinic, plugins, person(pg_clinic, "olga"), again)
    decide(pg_clinic, plugins, person(pg_clinic, "otto"), again)
    with session_scope(pg_clinic, write=True) as session:
        assert runs.claim_run(session, run_id=held.id, worker="w", plugins=plugins) is not None
    with session_scope(pg_clinic, write=True) as session:
        definitions.save_revision(
            session=session,
            actor=person(pg_clinic, "eddie"),
            plugins=plugins,
            organisation="clinic",
            name="motd-web",
            data={"settings": {"message": "changed"}},
        )
    with session_scope(pg_clinic, write=True) as session:
        assert runs.claim_run(session, run_id=again.id, worker="w", plugins=plugins) is None
    assert status(pg_clinic, again).status is RunStatus.refused
