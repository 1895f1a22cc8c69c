"""Secret references at run time, on a real host, through the real ``infracms serve``.

An editor with an API token saves a backup definition on host h1 whose password is
the credential ``pg-app``, which its owner limited to host db1, and starts a plan: the
run fails before Ansible starts, naming the definition and the field, and nothing of
the secret reaches h1, the run's events or its error. A host whose own connection
credential is limited to other hosts is refused the same way. A node admin's grant
(`infracms org grant-secret`) lets an ``$env`` value reach the host in an apply; once
revoked, the next run is refused before anything is sent.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from infracms.db import session_scope
from infracms.services import inventory
from tests.helpers import ADMIN
from tests.integration.node import Node, Server, make_node, on_host, served
from tests.security._secrets_support import CLINIC, bearer, people
from tests.support.hosts import HostPool, TestHost, stop_hosts
from tests.support.server import REPO_ROOT, settings_env

pytestmark = [pytest.mark.security, pytest.mark.integration]

HASH_VARIABLE = "INFRACMS_VAR_ALICE_HASH"
RUN_WAIT = 600.0
ENDED = {"succeeded", "failed", "cancelled"}


@dataclass
class Scene:
    """The served node, its one real host h1 and the people's API clients."""

    node: Node
    server: Server
    host: TestHost
    tokens: dict[str, str]
    pg_app: str
    alice_hash: str

    def client(self, who: str) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.server.base_url}/api/v1/orgs/{CLINIC}",
            headers=bearer(self.tokens[who]),
            trust_env=False,
            timeout=60,
        )

    def run(self, who: str, kind: str) -> dict[str, Any]:
        """Start a run as `who` and wait for its end; the run as the API shows it."""
        with self.client(who) as api:
            started = api.post("/runs", json={"kind": kind, "timeout_seconds": 600})
            assert started.status_code == 202, started.text
            run_id = started.json()["id"]
            deadline = time.monotonic() + RUN_WAIT
            while time.monotonic() < deadline:
                run: dict[str, Any] = api.get(f"/runs/{run_id}").json()
                if run["status"] in ENDED:
                    run["events"] = api.get(f"/runs/{run_id}/events").json()
                    return run
                time.sleep(0.5)
        pytest.fail(f"run {run_id} did not end in {RUN_WAIT:.0f} s")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`infracms ARGS` on the node, as its admin at the shell."""
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
        env.update(settings_env(self.node.settings))
        return subprocess.run(
            [sys.executable, "-m", "infracms", *args],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, host_pool: HostPool) -> Iterator[Scene]:
    tmp = tmp_path_factory.mktemp("secrets")
    node = make_node(tmp / "var")
    tokens = people(node.engine, node.settings, orgs=False)
    [host] = host_pool.start_hosts(1, init="sshd")
    on_host(host, "cat > /root/.ssh/authorized_keys", input=node.public_key + "\n")
    node.add_host("h1", host)
    with session_scope(node.engine, write=True) as session:
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation=CLINIC,
            data={"name": "db1", "address": "198.51.100.50"},
        )
    alice_hash = on_host(host, ["openssl", "passwd", "-6", "-stdin"], input="pw-of-alice").strip()
    pg_app = f"pg-app-{secrets.token_hex(12)}"
    try:
        with served(node, tmp, {HASH_VARIABLE: alice_hash}) as server:
            yield Scene(node, server, host, tokens, pg_app, alice_hash)
    finally:
        stop_hosts([host])
        node.engine.dispose()


def assert_nothing_sent(
    scene: Scene, run: dict[str, Any], secret: str, *, on_host: bool = True
) -> None:
    """The run ended before Ansible started, and `secret` is nowhere it could have gone."""
    assert run["status"] == "failed", run
    assert run["events"] == [] and run["recap"] == {}, run["events"][:3]
    assert secret not in str(run)
    if not on_host:
        return
    found = scene.host.run(
        "grep -rlF -f /dev/stdin /etc /root /tmp /var/tmp /var/log /srv 2>/dev/null || true",
        input=secret + "\n",
    )
    assert found.stdout == "", f"the secret is on h1 in {found.stdout}"


def test_a_credential_is_not_sent_to_a_host_outside_its_scope(scene: Scene) -> None:
    with scene.client("olga") as owner:
        made = owner.post(
            "/credentials",
            json={
                "name": "pg-app",
                "kind": "password",
                "secret": scene.pg_app,
                "scope": {"hosts": ["db1"]},
            },
        )
        assert made.status_code == 201, made.text
    with scene.client("eddie") as editor:
        body = {
            "name": "steal-pg",
            "module": "backup",
            "target": {"host": "h1"},
            "settings": {
                "repository": "/srv/restic",
                "password": {"$credential": "pg-app"},
                "paths": ["/etc"],
            },
        }
        saved = editor.post("/definitions", json=body)
        assert saved.status_code == 201, saved.text
    run = scene.run("eddie", "plan")
    assert "definition steal-pg, settings.password" in run["error"], run["error"]
    assert "pg-app may not be sent to host h1" in run["error"], run["error"]
    assert_nothing_sent(scene, run, scene.pg_app)
    assert scene.host.run(["test", "-e", "/etc/infracms/backup"]).returncode != 0
    with scene.client("eddie") as editor:
        assert editor.delete("/definitions/steal-pg").status_code == 204


def test_a_hosts_own_credential_must_allow_that_host(scene: Scene) -> None:
    login = f"root-pw-{secrets.token_hex(10)}"
    with scene.client("olga") as owner:
        assert owner.post("/groups", json={"name": "dbs"}).status_code == 201
        made = owner.post(
            "/credentials",
            json={
                "name": "db-root",
                "kind": "password",
                "secret": login,
                "scope": {"groups": ["dbs"]},
            },
        )
        assert made.status_code == 201, made.text
        # attached to a host outside its scope: refused at once
        outside = owner.patch("/hosts/h1", json={"credential": "db-root"})
        assert outside.status_code == 422, outside.text
        groups = owner.get("/hosts/h1").json()["groups"]
        inside = owner.patch(
            "/hosts/h1", json={"groups": [*groups, "dbs"], "credential": "db-root"}
        )
        assert inside.status_code == 200, inside.text
    bob = {"users": [{"name": "bob"}]}  # something to plan on h1, no secret in it
    with scene.client("eddie") as editor:
        # taking h1 out of the group narrows the scope (open to editors): h1 keeps the credential
        assert editor.patch("/hosts/h1", json={"groups": groups}).status_code == 200
        body = {"name": "bob", "module": "users", "target": {"host": "h1"}, "settings": bob}
        assert editor.post("/definitions", json=body).status_code == 201
    try:
        run = scene.run("eddie", "plan")
        assert "host h1: its credential db-root may not be sent to it" in run["error"], run
        assert_nothing_sent(scene, run, login)
    finally:
        with scene.client("olga") as owner:
            assert owner.patch("/hosts/h1", json={"credential": None}).status_code == 200
            assert owner.delete("/definitions/bob").status_code == 204


def test_a_granted_variable_reaches_the_host_and_a_revoked_one_is_refused(scene: Scene) -> None:
    users = {
        "name": "users-h1",
        "module": "users",
        "target": {"host": "h1"},
        "settings": {"users": [{"name": "alice", "password_hash": {"$env": HASH_VARIABLE}}]},
    }
    with scene.client("eddie") as editor:
        refused = editor.post("/definitions", json=users)
        assert refused.status_code == 422, refused.text
    granted = scene.cli("org", "grant-secret", CLINIC, "--env", HASH_VARIABLE)
    assert granted.returncode == 0, granted.stderr
    with scene.client("eddie") as editor:
        saved = editor.post("/definitions", json=users)
        assert saved.status_code == 201, saved.text
    applied = scene.run("olga", "apply")
    assert applied["status"] == "succeeded", (applied["error"], applied["recap"])
    shadow = on_host(scene.host, ["getent", "shadow", "alice"])
    assert shadow.split(":")[1] == scene.alice_hash
    assert scene.alice_hash not in str(applied["events"]), "the value in a stored event"

    revoked = scene.cli("org", "revoke-secret", CLINIC, "--env", HASH_VARIABLE)
    assert revoked.returncode == 0, revoked.stderr
    run = scene.run("eddie", "plan")
    assert "definition users-h1, settings.users.0.password_hash" in run["error"], run["error"]
    assert "not granted" in run["error"]
    assert_nothing_sent(scene, run, scene.alice_hash, on_host=False)  # sent by the apply
