"""When the audit log cannot be written, the change is refused with 503 "audit log
unavailable" and rolled back: never a misleading 409 "already exists", never a 500.

A node admin with a shell (or a failing disk) breaks the log under a running node; an
organisation's owner then changes a host through the API with their token.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlmodel import Session, select

from infracms.models import Host
from infracms.services import audit
from tests.helpers import audit_size
from tests.security._audit_support import (  # noqa: F401 (fixtures)
    Node,
    node_fixture,
    pg_node_fixture,
)

pytestmark = pytest.mark.security

HOST = {"name": "web1", "address": "198.51.100.10"}
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
    refused_with_nothing_changed(node, BREAKAGES[breakage], breakage != "table gone")


@pytest.mark.postgres
@pytest.mark.integration
@pytest.mark.parametrize("breakage", ["index taken", "table gone"])
def test_the_same_on_postgresql(pg_node: Node, breakage: str) -> None:
    refused_with_nothing_changed(pg_node, BREAKAGES[breakage], breakage != "table gone")


def refused_with_nothing_changed(node: Node, breakage: list[str], count_entries: bool) -> None:
    """Create a host, break the log, then create, update and delete: all refused."""
    api = node.client
    assert api.post("/api/v1/orgs/clinic/hosts", json=HOST).status_code == 201
    entries = audit_size(node.engine)
    node.sql(*breakage)

    assert_refused(api.post("/api/v1/orgs/clinic/hosts", json={**HOST, "name": "web2"}))
    assert_refused(api.patch("/api/v1/orgs/clinic/hosts/web1", json={"address": "198.51.100.99"}))
    assert_refused(api.delete("/api/v1/orgs/clinic/hosts/web1"))

    assert hosts(node) == {"web1": "198.51.100.10"}  # no change without its entry
    if count_entries:
        assert audit_size(node.engine) == entries


@pytest.mark.postgres
@pytest.mark.integration
def test_a_head_row_held_locked_refuses_the_change_instead_of_hanging(
    pg_node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another session (a stuck transaction, or an admin's `SELECT … FOR UPDATE`) holds
    the head row: a host change through the API waits a bounded time, then gets 503."""
    monkeypatch.setattr(audit, "HEAD_LOCK_TIMEOUT_MS", 500)  # 30 s in production
    entries = audit_size(pg_node.engine)
    holder = create_engine(pg_node.settings.resolved_database_url)
    try:
        with holder.connect() as locked:
            locked.exec_driver_sql("SELECT * FROM audit_head WHERE id = 1 FOR UPDATE")
            assert_refused(pg_node.client.post("/api/v1/orgs/clinic/hosts", json=HOST))
            locked.rollback()
    finally:
        holder.dispose()
    assert (audit_size(pg_node.engine), hosts(pg_node)) == (entries, {})
    assert pg_node.client.post("/api/v1/orgs/clinic/hosts", json=HOST).status_code == 201
