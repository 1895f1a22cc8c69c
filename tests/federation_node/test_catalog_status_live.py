"""Catalog sync status between two served nodes: b.test syncs a.test's catalog, is refused
while a.test suspends it, and says so (`infracms catalog status`, `peer list`)."""

from __future__ import annotations

import json

import pytest

from tests.federation_node.conftest import Node

pytestmark = pytest.mark.integration


def status(node: Node) -> dict[str, object]:
    [found] = json.loads(node.cli("catalog", "status", "--json").stdout)
    assert isinstance(found, dict)
    return found


def test_sync_status_follows_each_attempt(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    assert status(b)["outcome"] is None
    assert "a.test: new version 1" in b.cli("catalog", "sync").stdout
    synced = status(b)
    assert (synced["version"], synced["offerings"], synced["outcome"]) == (1, 1, "updated")
    assert b.cli("catalog", "status", "--check").returncode == 0

    a.cli("peer", "suspend", "b.test")
    try:
        assert b.cli("catalog", "sync", check=False).returncode == 1
        refused = b.cli("catalog", "status", "--check", check=False)
        assert refused.returncode == 1
        assert ", failed: refused by the peer (PeerAnswerError: " in refused.stdout
        assert "stale:         yes, the last sync failed: refused by the peer" in refused.stdout
        assert "last sync failed: refused by the peer, STALE" in b.cli("peer", "list").stdout
        failed = status(b)
        assert (failed["failure"], failed["version"]) == ("refused", 1)
        assert failed["synced_at"] == synced["synced_at"]
    finally:
        a.cli("peer", "resume", "b.test")
    assert "a.test: unchanged 1" in b.cli("catalog", "sync").stdout
    again = status(b)
    assert (again["outcome"], again["stale"], again["fetched_at"]) == (
        "unchanged",
        False,
        synced["fetched_at"],
    )
    actions = [(action, payload.get("failure")) for action, payload in b.audit_actions()]
    assert ("catalog.sync_failed", "refused") in actions
