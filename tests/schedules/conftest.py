"""An organisation with hosts and definitions, and runs finished as an executor does."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from infracms.db import session_scope
from infracms.models.base import utcnow
from infracms.models.run import RunStatus
from infracms.plugins import Plugins
from infracms.services import definitions, inventory, modules, runs
from tests.helpers import ADMIN, make_org
from tests.services.test_modules import FAKES


@pytest.fixture
def plugins() -> Plugins:
    return Plugins.load(builtins=FAKES, entry_points=False)


@pytest.fixture
def clinic(engine: Engine, plugins: Plugins) -> uuid.UUID:
    """web1, web2 (group web, motd-web on it) and db1 (base-db on it); the org's id."""
    org_id = make_org(engine, "clinic")
    with session_scope(engine, write=True) as session:
        for name in ("base", "motd"):
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )
        modules.enable_module(
            session=session, actor=ADMIN, plugins=plugins, organisation="clinic", name="motd"
        )
        inventory.create_group(
            session=session, actor=ADMIN, organisation="clinic", data={"name": "web"}
        )
        for name in ("web1", "web2", "db1"):
            groups = ["web"] if name.startswith("web") else []
            data = {"name": name, "address": "198.51.100.1", "groups": groups}
            inventory.create_host(session=session, actor=ADMIN, organisation="clinic", data=data)
        for data in (
            {
                "name": "motd-web",
                "module": "motd",
                "target": {"group": "web"},
                "settings": {"message": "a"},
            },
            {"name": "base-db", "module": "base", "target": {"host": "db1"}, "settings": {}},
        ):
            definitions.create_definition(
                session=session, actor=ADMIN, plugins=plugins, organisation="clinic", data=data
            )
    return org_id


def changed_event(seq: int, host: str, role: str, task: str, diff: Any) -> dict[str, Any]:
    """A stored event of a task that changed (or, in a plan, would change)."""
    return {
        "seq": seq,
        "event": "runner_on_ok",
        "host": host,
        "task": task,
        "status": "changed",
        "changed": True,
        "stdout": f"changed: [{host}]",
        "data": {"role": role, "diff": diff},
        "created_at": utcnow(),
    }


def finish(
    engine: Engine,
    run_id: uuid.UUID,
    recap: dict[str, dict[str, int]],
    events: list[dict[str, Any]] = (),  # type: ignore[assignment]
    status: RunStatus = RunStatus.succeeded,
) -> None:
    """Claim `run_id`, store `events`, finish it with `recap`."""
    with session_scope(engine, write=True) as session:
        assert runs.claim_run(session, run_id=run_id, worker="test-worker") is not None
        if events:
            runs.write_events(
                session, run_id=run_id, rows=[{"run_id": run_id, **e} for e in events]
            )
        runs.finish_run(
            session, run_id=run_id, status=status, rc=0, recap=recap, stdout_sha256=None
        )


def run(engine: Engine, plugins: Plugins, **data: Any) -> uuid.UUID:
    """A run asked for by the admin."""
    with session_scope(engine, write=True) as session:
        return runs.create_run(
            session=session, actor=ADMIN, plugins=plugins, organisation="clinic", data=data
        ).id


HOUR = timedelta(hours=1)
