"""An editor tries to send the organisation's root password to a machine they control.

The organisation's host `h1` logs in with the password credential `org-root-pw`. The
editor controls a second machine (`evil`, a real test host) and, with their API token
against a served node, tries each way to make ssh go there with that password: attach
the credential to a host at their address, create such a host, point h1 at their
machine (address, port, user), or swap h1's pinned key for their machine's. Each is
refused and changes nothing; the editor's plan still goes to h1 (its pinned key
matched) and their machine never saw a password. An operator cannot replace a pinned
key with a plain update either (409 naming both fingerprints), only with the explicit
replace action after a scan, audited with both fingerprints.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from infracms.models.host import Host
from infracms.sshkeys import host_key_fingerprint
from tests.helpers import count
from tests.integration.node import ORG, Node, make_node, on_host
from tests.security._authz_support import Api, audit_payloads, served_api, state
from tests.support.hosts import HostPool, TestHost, stop_hosts
from tests.support.server import settings_env

pytestmark = [pytest.mark.security, pytest.mark.integration, pytest.mark.slow]

CREDENTIAL = "org-root-pw"


@dataclass
class World:
    """The served node, the organisation's host and the editor's own machine."""

    api: Api
    node: Node
    h1: TestHost
    evil: TestHost
    password: str


def _a_key() -> str:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return line.decode()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, host_pool: HostPool) -> Iterator[World]:
    hosts = host_pool.start_hosts(2)
    try:
        yield from _world(tmp_path_factory, *hosts)
    finally:
        stop_hosts(hosts)


def _world(
    tmp_path_factory: pytest.TempPathFactory, h1: TestHost, evil: TestHost
) -> Iterator[World]:
    node = make_node(tmp_path_factory.mktemp("authz-facts") / "var")
    password = f"root-{secrets.token_urlsafe(12)}"
    h1.allow_password_login(password)
    evil.allow_password_login(f"evil-{secrets.token_urlsafe(8)}")  # it would log the try
    node.add_credential(CREDENTIAL, password)
    node.add_host("h1", h1, credential=CREDENTIAL)
    node.add_host("spare", evil)  # a machine the organisation once added, no credential
    node.define("base-h1", "base", "h1", {"timezone": "UTC", "unattended_upgrades": False})
    with served_api(node, tmp_path_factory.mktemp("authz-served")) as api:
        yield World(api=api, node=node, h1=h1, evil=evil, password=password)


def _refused(response: httpx.Response, status: int = 403) -> None:
    assert response.status_code == status, f"{response.status_code}: {response.text}"


def _password_tries(host: TestHost) -> list[str]:
    """What the machine's sshd logged of password logins."""
    journal = on_host(host, "journalctl --no-pager -o cat -u ssh")
    return [line for line in journal.splitlines() if "password" in line.lower()]


def test_editor_cannot_attach_the_credential(world: World) -> None:
    before = state(world.node, "spare"), state(world.node, "h1")
    editor = world.api["editor"]
    _refused(editor.patch("/hosts/spare", json={"credential": CREDENTIAL}))
    _refused(editor.patch("/hosts/h1", json={"credential": None}))
    assert (state(world.node, "spare"), state(world.node, "h1")) == before


def test_editor_cannot_create_a_host_at_their_address(world: World) -> None:
    hosts = count(world.node.engine, Host)
    before = state(world.node, "h1")
    editor = world.api["editor"]
    evil = {"name": "evil", "address": world.evil.address, "host_key": world.evil.host_key}
    _refused(editor.post("/hosts", json={**evil, "credential": CREDENTIAL}))
    _refused(editor.post("/hosts", json=evil))
    assert count(world.node.engine, Host) == hosts
    assert state(world.node, "h1") == before


def test_editor_cannot_redirect_h1_and_the_plan_goes_to_h1(world: World) -> None:
    before = state(world.node, "h1")
    editor = world.api["editor"]
    for change in (
        {"address": world.evil.address},
        {"address": world.evil.address, "host_key": world.evil.host_key},
        {"ssh_port": 2222},
        {"ssh_user": "attacker"},
    ):
        _refused(editor.patch("/hosts/h1", json=change))
    assert state(world.node, "h1") == before
    kept = editor.patch("/hosts/h1", json={"variables": {"note": "editors keep variables"}})
    assert kept.status_code == 200, kept.text
    assert state(world.node, "h1")[0] == before[0]

    started = editor.post("/runs", json={"kind": "plan", "hosts": ["h1"]})
    assert started.status_code == 202, started.text
    run = _wait(editor, started.json()["id"])
    assert run["status"] == "succeeded", run  # h1's pinned key matched: ssh went to h1
    assert _password_tries(world.evil) == []
    assert world.password not in world.api.server.output()


def test_editor_cannot_replace_the_pinned_key(world: World) -> None:
    before = state(world.node, "h1")
    editor = world.api["editor"]
    _refused(editor.patch("/hosts/h1", json={"host_key": world.evil.host_key}))
    _refused(editor.patch("/hosts/h1", json={"host_key": None}))
    _refused(editor.post("/hosts/h1/host-key", json={"fingerprint": _fingerprint(world.evil)}))
    assert state(world.node, "h1") == before


def test_operator_replaces_a_pinned_key_only_explicitly(world: World) -> None:
    stale = _a_key()
    operator = world.api["operator"]
    created = operator.post(
        "/hosts", json={"name": "rebuilt", "address": world.evil.address, "host_key": stale}
    )
    assert created.status_code == 201, created.text
    old, new = host_key_fingerprint(stale), _fingerprint(world.evil)
    before = state(world.node, "rebuilt")

    by_update = operator.patch("/hosts/rebuilt", json={"host_key": world.evil.host_key})
    _refused(by_update, 409)
    assert old in by_update.json()["detail"] and new in by_update.json()["detail"]
    _refused(operator.patch("/hosts/rebuilt", json={"host_key": None}), 409)
    wrong = operator.post("/hosts/rebuilt/host-key", json={"fingerprint": old})
    _refused(wrong, 409)
    assert state(world.node, "rebuilt") == before

    scanned = operator.get("/hosts/rebuilt/scan").json()
    assert (scanned["pinned_fingerprint"], scanned["fingerprint"]) == (old, new)
    done = operator.post("/hosts/rebuilt/host-key", json={"fingerprint": new})
    assert done.status_code == 200, done.text
    assert done.json() == {"old_fingerprint": old, "fingerprint": new}
    assert world.node.host_row("rebuilt").host_key == world.evil.host_key
    assert audit_payloads(world.node, "host.replace_key") == [
        {"old_fingerprint": old, "new_fingerprint": new, "source": "scan"}
    ]


def _fingerprint(host: TestHost) -> str:
    return host_key_fingerprint(host.host_key)


def _wait(client: httpx.Client, run_id: str, timeout: float = 900) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run: dict[str, object] = client.get(f"/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(1)
    pytest.fail(f"run {run_id} did not end in {timeout:.0f} s")


def test_nothing_else_reached_the_editors_machine(world: World) -> None:
    assert _password_tries(world.evil) == []


def test_the_cli_replaces_a_pinned_key_only_with_the_confirmed_fingerprint(world: World) -> None:
    stale = _a_key()
    world.node.add_host("cli-rebuilt", world.evil, pin=False)
    world.node.update_host("cli-rebuilt", host_key=stale)  # first pin: allowed
    old, new = host_key_fingerprint(stale), _fingerprint(world.evil)

    wrong = _cli(world.node, "host", "rekey", ORG, "cli-rebuilt", "--fingerprint", old)
    assert wrong.returncode != 0 and new in wrong.stderr, wrong
    assert world.node.host_row("cli-rebuilt").host_key == stale

    done = _cli(world.node, "host", "rekey", ORG, "cli-rebuilt", "--fingerprint", new)
    assert done.returncode == 0, done.stderr
    assert f"pinned key {old} replaced by {new}" in done.stdout
    assert world.node.host_row("cli-rebuilt").host_key == world.evil.host_key
    assert audit_payloads(world.node, "host.replace_key")[-1] == {
        "old_fingerprint": old,
        "new_fingerprint": new,
        "source": "scan",
    }


def _cli(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("INFRACMS_")}
    return subprocess.run(
        [sys.executable, "-m", "infracms", *args],
        env={**inherited, **settings_env(node.settings)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
