"""An app's lifespan may run more than once (the tests' app pool starts one app test
after test): each time, its executor takes runs and its audit integrator runs again."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from infracms.app import create_app
from infracms.config import Settings


def test_an_app_started_again_runs_its_executor_and_integrator_again(
    settings: Settings, engine: Engine
) -> None:
    app = create_app(settings)
    for start in ("first", "second"):
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200, start
            executor = app.state.executor
            run_id = uuid.uuid4()  # no such run: executed, it is not ours to run
            executor.submit(run_id)
            assert executor.wait(run_id, timeout=30) is None, start
            assert executor.reaper.is_alive(), f"{start} start: the reaper is not running"
            integrator = app.state.audit_integrator
            assert integrator._thread.is_alive(), f"{start} start: the integrator is not running"
        assert not integrator._thread.is_alive(), f"{start} stop: the integrator still runs"
    app.state.engine.dispose()
