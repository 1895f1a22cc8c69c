"""Bootstrap over the API, on SQLite, on a real host that takes only a root password.

It used to answer 500 "database is locked" after 30 s, every time: the request's own
session had taken SQLite's write lock while authenticating (a POST), and held it while
the bootstrap scanned and ran ssh, so the bootstrap's own write (pinning the key) waited
for it until the busy timeout. An editor may not bootstrap (it pins a host key)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.node import make_node, on_host
from tests.security._authz_support import audit_payloads, served_api, state
from tests.support.hosts import TestHost

pytestmark = [pytest.mark.security, pytest.mark.integration, pytest.mark.slow]


def test_bootstrap_over_the_api_on_sqlite(
    tmp_path: Path, host_factory: Callable[..., list[TestHost]]
) -> None:
    [host] = host_factory(1)
    node = make_node(tmp_path / "var")
    assert node.settings.is_sqlite
    password = f"root-{secrets.token_urlsafe(12)}"
    on_host(host, "rm -f /root/.ssh/authorized_keys")  # the password is the only way in
    host.allow_password_login(password)
    node.add_host("fresh", host, pin=False)
    with served_api(node, tmp_path / "served") as api:
        scanned = api["operator"].get("/hosts/fresh/scan")
        assert scanned.status_code == 200, scanned.text
        fingerprint = scanned.json()["fingerprint"]
        assert scanned.json()["pinned_fingerprint"] is None
        body = {"fingerprint": fingerprint, "password": password}

        before = state(node, "fresh")
        refused = api["editor"].post("/hosts/fresh/bootstrap", json=body)
        assert refused.status_code == 403, refused.text
        assert state(node, "fresh") == before

        started = time.monotonic()
        done = api["operator"].post("/hosts/fresh/bootstrap", json=body)
        took = time.monotonic() - started
        assert done.status_code == 200, f"{done.status_code} after {took:.0f} s: {done.text}"
        assert done.json()["status"] == "succeeded", done.json()["output"]
        assert password not in done.text and password not in api.server.output()
    assert node.host_row("fresh").host_key == host.host_key
    assert audit_payloads(node, "host.pin_key") == [
        {"fingerprint": fingerprint, "source": "bootstrap"}
    ]
    assert [p["status"] for p in audit_payloads(node, "host.bootstrap")] == ["succeeded"]
    assert node.public_key.split()[1] in on_host(host, "cat /root/.ssh/authorized_keys")
