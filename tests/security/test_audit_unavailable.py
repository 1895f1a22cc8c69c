"""When the audit log cannot be written, the change is refused with 503 "audit log
unavailable" and rolled back: never a misleading 409 "already exists", never a 500.

A node admin with a shell (or a failing disk) breaks the log under a running node; an
organisation's owner then changes a host through the API with their token.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from infracms.models import Host
from tests.helpers import audit_size
from tests.security._audit_support import Node, node_fixture  # noqa: F401 (fixture)

pytestmark = pytest.mark.security

HOST = {"name": "web1", "address": "192.0.2.10"}
# Each way the append can fail: its index taken (the head row set back, as after a
# restore of only some tables), the entries' table gone, the insert refused (a full disk).
BREAKAGES = {
    "index taken": ["UPDATE audit_head SET size = size - 1"],
    "table gone": ["ALTER TABLE audit_entry RENAME TO audit_entry_gone"],
    "insert refused": [
        "CREATE TRIGGER full BEFORE INSERT ON audit_entry BEGIN "
        "SELECT RAISE(FAIL, 'database or disk is full'); END"
    ],
}


def hosts(node: Node) -> dict[str, str]:
    with Session(node.engine) as session:
        return {h.name: h.address for h in session.exec(select(Host))}


def assert_refused(response: object) -> None:
    assert response.status_code == 503, (response.status_code, response.text)  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["title"] == "Audit log unavailable", body
    assert body["type"].endswith("/audit-unavailable"), body
    assert "audit log unavailable" in body["detail"], body


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_host_change_without_its_audit_entry_is_refused(node: Node, breakage: str) -> None:
    api = node.client
    assert api.post("/api/v1/orgs/clinic/hosts", json=HOST).status_code == 201
    entries = audit_size(node.engine)
    node.sql(*BREAKAGES[breakage])

    assert_refused(api.post("/api/v1/orgs/clinic/hosts", json={**HOST, "name": "web2"}))
    assert_refused(api.patch("/api/v1/orgs/clinic/hosts/web1", json={"address": "192.0.2.99"}))
    assert_refused(api.delete("/api/v1/orgs/clinic/hosts/web1"))

    assert hosts(node) == {"web1": "192.0.2.10"}  # no change without its entry
    if breakage != "table gone":
        assert audit_size(node.engine) == entries


@pytest.mark.postgres
@pytest.mark.integration
def test_a_head_row_held_locked_refuses_the_change_instead_of_hanging(
    tmp_path: object, fresh_postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another session (a stuck transaction, or an admin's `SELECT … FOR UPDATE`) holds
    the head row: a host change through the API waits a bounded time, then gets 503."""
    from pathlib import Path

    import sqlalchemy

    from infracms.app import create_app
    from infracms.db import make_engine
    from infracms.services import audit
    from infracms.services.setup import initialise
    from tests.conftest import make_settings
    from tests.helpers import make_org
    from tests.security._audit_support import owner_token

    monkeypatch.setattr(audit, "HEAD_LOCK_TIMEOUT_MS", 500)  # 30 s in production
    settings = make_settings(Path(str(tmp_path)) / "var", database_url=fresh_postgres_database)
    engine = make_engine(settings)
    initialise(settings, engine)
    make_org(engine, "clinic")
    token = owner_token(engine, settings, "olga", "clinic")
    app = create_app(settings)
    holder = sqlalchemy.create_engine(fresh_postgres_database)
    try:
        with TestClient(app, raise_server_exceptions=False) as api:
            api.headers["authorization"] = f"Bearer {token}"
            entries = audit_size(engine)
            with holder.connect() as locked:
                locked.exec_driver_sql("SELECT * FROM audit_head WHERE id = 1 FOR UPDATE")
                assert_refused(api.post("/api/v1/orgs/clinic/hosts", json=HOST))
                locked.rollback()
            assert audit_size(engine) == entries
            with Session(engine) as session:
                assert session.exec(select(Host)).all() == []
            assert api.post("/api/v1/orgs/clinic/hosts", json=HOST).status_code == 201
    finally:
        holder.dispose()
        app.state.engine.dispose()
        engine.dispose()
