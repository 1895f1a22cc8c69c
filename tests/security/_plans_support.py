"""The scene of the plan attacks: a served node, an editor with an API token, two hosts.

`fresh` is a new host with every built-in module defined on it; `pg` already runs
PostgreSQL and has restic, with a PostgreSQL and a backup definition (the tasks that
talk to the server or the repository run there). restic on `pg` is wrapped so that
every call is logged on the host, with whether it had the repository password.
Both hosts are in the group `all-hosts`. The admin set all this up; the attacks are
the editor's, through the API.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from infracms.db import session_scope
from infracms.models import Role
from infracms.services import auth, inventory
from tests.helpers import ADMIN, make_user, password_of
from tests.integration.node import Node, Server, make_node, on_host, served
from tests.integration.world import STATE_COMMAND, base_settings, firewall_settings, vpn_settings
from tests.support.hosts import HostPool, TestHost, stop_hosts

EDITOR = "eve-editor"
GROUP = "all-hosts"
RESTIC_LOG = "/var/log/restic-calls"
SECRETS = {"restic": "restic-pw-9f3b1c0d", "app-db": "pg-pw-4e7a2b6c", "wg-private": ""}
RESTIC_WRAPPER = f"""#!/bin/sh
echo "restic $* password=${{RESTIC_PASSWORD:+set}}" >> {RESTIC_LOG}
exec /usr/bin/restic.real "$@"
"""


@dataclass
class Scene:
    """The node, its server, the editor's API client and the hosts."""

    node: Node
    server: Server
    editor: httpx.Client
    fresh: TestHost
    pg: TestHost

    def plan(self) -> dict[str, Any]:
        """Start a plan as the editor and wait for its end; the run as the API gives it."""
        response = self.editor.post(f"/orgs/{self.node.org}/runs", json={"kind": "plan"})
        assert response.status_code == 202, response.text
        run_id = uuid.UUID(response.json()["id"])
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            run: dict[str, Any] = self.editor.get(f"/orgs/{self.node.org}/runs/{run_id}").json()
            if run["status"] not in ("queued", "running"):
                return run
            time.sleep(1)
        pytest.fail(f"plan {run_id} did not end in 900 s")

    def events(self, run_id: str) -> list[dict[str, Any]]:
        """The run's events as the editor reads them."""
        response = self.editor.get(f"/orgs/{self.node.org}/runs/{run_id}/events")
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()
        return events

    def state(self) -> dict[str, str]:
        """Each host's files' checksums, packages and accounts."""
        return {"fresh": on_host(self.fresh, STATE_COMMAND), "pg": on_host(self.pg, STATE_COMMAND)}


def _definitions() -> dict[str, tuple[str, str, dict[str, Any]]]:
    """name -> (module, host, settings)."""
    postgresql = {
        "roles": [{"name": "app", "password": {"$credential": "app-db"}}],
        "databases": [{"name": "appdb", "owner": "app"}],
    }
    backup = {"repository": "/srv/restic", "password": {"$credential": "restic"}, "paths": ["/etc"]}
    return {
        "base-fresh": ("base", "fresh", base_settings("Europe/Berlin")),
        "users-fresh": ("users", "fresh", {"users": [{"name": "bob", "sudo": "nopassword"}]}),
        "ssh-fresh": ("ssh_hardening", "fresh", {"allow_users": ["root", "bob"]}),
        "firewall-fresh": ("firewall", "fresh", firewall_settings([80])),
        "site-fresh": (
            "nginx_site",
            "fresh",
            {"name": "www", "server_names": ["example.org"], "root": "/srv/www"},
        ),
        "db-fresh": ("postgresql", "fresh", postgresql),
        "backup-fresh": ("backup", "fresh", backup),
        "vpn-fresh": ("wireguard", "fresh", vpn_settings()),
        "db-pg": ("postgresql", "pg", postgresql),
        "backup-pg": ("backup", "pg", backup),
    }


def _prepare_pg(host: TestHost) -> None:
    """PostgreSQL running and restic installed (wrapped), as on a host in service (with
    fresh package lists: a plan then expects no package change and talks to the server)."""
    on_host(
        host,
        "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql restic",
    )
    on_host(host, "pg_lsclusters --no-header | grep -q online")
    on_host(
        host,
        "mv /usr/bin/restic /usr/bin/restic.real && cat > /usr/bin/restic",
        input=RESTIC_WRAPPER,
    )
    on_host(host, "chmod 0755 /usr/bin/restic && restic version >/dev/null && rm -f " + RESTIC_LOG)


def _editor_client(node: Node, server: Server) -> httpx.Client:
    """The editor signs in, makes an API token for the organisation, and uses only it."""
    make_user(node.engine, node.settings, EDITOR, **{node.org: Role.editor})
    with session_scope(node.engine, write=True) as session:
        login = auth.login(
            session=session,
            settings=node.settings,
            username=EDITOR,
            password=password_of(EDITOR),
            client="security",
        )
    base = f"{server.base_url}/api/v1"
    signed_in = httpx.Client(
        base_url=base,
        trust_env=False,
        cookies={"infracms_session": login.token},
        headers={"x-csrf-token": login.csrf_token},
    )
    with signed_in:
        issued = signed_in.post(
            "/tokens", json={"name": "eve-cli", "organisation": node.org, "role": "editor"}
        )
    assert issued.status_code == 201, issued.text
    return httpx.Client(
        base_url=base,
        trust_env=False,
        timeout=httpx.Timeout(30, read=120),
        headers={"authorization": f"Bearer {issued.json()['token']}"},
    )


@contextlib.contextmanager
def scene(tmp: Path, host_pool: HostPool) -> Iterator[Scene]:
    """Set the scene up; tear it down after."""
    from tests.integration.world import _wireguard_pair

    node = make_node(tmp / "var")
    fresh, pg = host_pool.start_hosts(2)
    try:
        for host in (fresh, pg):
            on_host(host, "cat > /root/.ssh/authorized_keys", input=node.public_key + "\n")
        _prepare_pg(pg)
        SECRETS["wg-private"] = _wireguard_pair()[0]
        for name, secret in SECRETS.items():
            node.add_credential(name, secret)
        node.add_host("fresh", fresh)
        node.add_host("pg", pg)
        with session_scope(node.engine, write=True) as session:
            inventory.create_group(
                session=session, actor=ADMIN, organisation=node.org, data={"name": GROUP}
            )
        for name in ("fresh", "pg"):
            node.update_host(name, groups=[GROUP])
        for name, (module, host, settings) in _definitions().items():
            node.define(name, module, host, settings)
        with served(node, tmp) as server:
            editor = _editor_client(node, server)
            try:
                yield Scene(node=node, server=server, editor=editor, fresh=fresh, pg=pg)
            finally:
                editor.close()
    finally:
        stop_hosts([fresh, pg])
        node.engine.dispose()
