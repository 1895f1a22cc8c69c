"""An anonymous client reads /healthz: it learns whether the node is up and whether its
audit log is sound, not how many entries the log holds (how busy the node is), nor
which entry failed the self check and why (what a tamperer wants to hear)."""

from __future__ import annotations

import pytest

from infracms.audit import store
from infracms.services import audit
from tests.security._audit_support import Node, node_fixture  # noqa: F401

pytestmark = pytest.mark.security


def _anonymous(node: Node) -> dict[str, str]:
    token = node.client.headers.pop("authorization")
    try:
        answer = node.client.get("/healthz")
    finally:
        node.client.headers["authorization"] = token
    assert answer.status_code in (200, 503)
    body: dict[str, str] = answer.json()
    return body


def test_health_tells_an_anonymous_client_no_more_than_up_and_sound(node: Node) -> None:
    for name in ("web1", "web2", "web3"):
        made = node.client.post(
            "/api/v1/orgs/clinic/hosts", json={"name": name, "address": "198.51.100.7"}
        )
        assert made.status_code == 201, made.text
    size = store.integrate(node.engine, audit.node_signer(node.settings)).size
    assert audit.self_check(engine=node.engine, settings=node.settings).ok
    body = _anonymous(node)
    assert body["status"] == "ok"
    assert str(size) not in body["audit"], body

    node.sql("UPDATE audit_entry SET subject = 'host:clinic/web9' WHERE \"index\" = 3")
    outcome = audit.self_check(engine=node.engine, settings=node.settings)
    assert not outcome.ok and outcome.first_bad == 3
    body = _anonymous(node)
    assert body["status"] == "degraded"
    assert "3" not in body["audit"] and outcome.detail not in body["audit"], body
    assert "infracms audit check" in body["audit"]  # where whoever runs the node looks
