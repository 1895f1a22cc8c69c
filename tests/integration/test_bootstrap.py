"""Bootstrapping a new host: it takes a root password, has no key that infracms knows,
and nothing pinned. A run is refused before anything connects; a bootstrap with a wrong
fingerprint is refused with nothing pinned; with the scanned fingerprint confirmed and
the password, the key is pinned and the node's key installed, and the next run logs in
with the node's key (the host has no credential)."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from infracms.errors import Conflict
from infracms.services.bootstrap import BootstrapResult, ScannedKey, bootstrap_host, scan_host
from infracms.sshkeys import host_key_fingerprint
from tests.helpers import ADMIN
from tests.integration.node import (
    Node,
    assert_succeeded,
    files_holding_secrets,
    find_secrets,
    make_node,
    on_host,
)
from tests.support.hosts import TestHost

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass
class Fresh:
    """A node and a host it has never reached, with the root password a provider gave."""

    node: Node
    host: TestHost
    password: str
    refused_run: uuid.UUID
    wrong: Conflict
    wrong_fingerprint: str


@dataclass
class Bootstrapped:
    """What scanning and bootstrapping gave."""

    scanned: ScannedKey
    result: BootstrapResult


def _other_fingerprint() -> str:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return host_key_fingerprint(line.decode())


@pytest.fixture(scope="module")
def fresh(
    tmp_path_factory: pytest.TempPathFactory, module_hosts: Callable[..., list[TestHost]]
) -> Fresh:
    """Before bootstrapping: a refused run and a refused wrong fingerprint."""
    node = make_node(tmp_path_factory.mktemp("bootstrap") / "var")
    [host] = module_hosts(1)
    password = f"root-{secrets.token_urlsafe(12)}"
    on_host(host, "rm -f /root/.ssh/authorized_keys")  # the password is the only way in
    host.allow_password_login(password)
    node.add_host("fresh", host, pin=False)
    node.define(
        "base-fresh", "base", "fresh", {"timezone": "Asia/Tokyo", "unattended_upgrades": False}
    )
    refused = node.execute(node.create_run("apply")).id
    wrong = _other_fingerprint()
    with pytest.raises(Conflict) as caught:
        bootstrap_host(
            engine=node.engine,
            settings=node.settings,
            actor=ADMIN,
            organisation=node.org,
            name="fresh",
            fingerprint=wrong,
            password=password,
        )
    return Fresh(node, host, password, refused, caught.value, wrong)


@pytest.fixture(scope="module")
def bootstrapped(fresh: Fresh) -> Bootstrapped:
    node = fresh.node
    scanned = scan_host(engine=node.engine, actor=ADMIN, organisation=node.org, name="fresh")
    result = bootstrap_host(
        engine=node.engine,
        settings=node.settings,
        actor=ADMIN,
        organisation=node.org,
        name="fresh",
        fingerprint=scanned.fingerprint,
        password=fresh.password,
    )
    return Bootstrapped(scanned, result)


def test_a_host_without_a_pinned_key_is_refused_before_anything_runs(fresh: Fresh) -> None:
    run = fresh.node.run(fresh.refused_run)
    assert run.status == "failed", run.status
    assert run.error == "no pinned host key for fresh: bootstrap the host or set its key"
    assert fresh.node.events(run.id) == [], "the refused run reached Ansible"


def test_a_wrong_fingerprint_is_refused_with_nothing_pinned(fresh: Fresh) -> None:
    actual = host_key_fingerprint(fresh.host.host_key)
    message = str(fresh.wrong)
    assert actual in message and fresh.wrong_fingerprint in message, message
    assert "nothing was changed" in message, message
    assert fresh.node.host_row("fresh").host_key is None
    assert fresh.node.audit("host.pin_key") == []
    assert fresh.node.audit("host.bootstrap") == []
    assert fresh.host.run("test -e /root/.ssh/authorized_keys").returncode != 0


def test_scan_shows_the_fingerprint_the_host_has(fresh: Fresh, bootstrapped: Bootstrapped) -> None:
    listed = on_host(fresh.host, "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub").split()
    assert bootstrapped.scanned.fingerprint == listed[1], (bootstrapped.scanned, listed)
    assert bootstrapped.scanned.host_key == fresh.host.host_key


def test_bootstrap_pins_the_key_and_installs_the_node_key(
    fresh: Fresh, bootstrapped: Bootstrapped
) -> None:
    node, result = fresh.node, bootstrapped.result
    assert result.status == "succeeded", result.output
    assert result.fingerprint == bootstrapped.scanned.fingerprint
    assert node.host_row("fresh").host_key == fresh.host.host_key
    [pinned] = node.audit("host.pin_key")
    assert json.loads(pinned.payload) == {"fingerprint": result.fingerprint, "source": "bootstrap"}
    [audited] = node.audit("host.bootstrap")
    assert json.loads(audited.payload)["status"] == "succeeded", audited.payload
    keys = on_host(fresh.host, "cat /root/.ssh/authorized_keys").splitlines()
    assert keys == [node.public_key], keys
    # the one-time password is kept nowhere
    assert find_secrets(result.output, {"password": fresh.password}) == []
    assert find_secrets(str([e.payload for e in node.audit()]), {"p": fresh.password}) == []
    assert files_holding_secrets([node.settings.data_dir], {"p": fresh.password}) == {}


def test_the_next_run_logs_in_with_the_node_key(fresh: Fresh, bootstrapped: Bootstrapped) -> None:
    node = fresh.node
    assert node.host_row("fresh").credential_id is None
    run = node.execute(node.create_run("apply"))
    assert_succeeded(node, run)
    assert run.recap["fresh"].get("changed", 0) > 0, run.recap
    assert on_host(fresh.host, "cat /etc/timezone") == "Asia/Tokyo\n"
    output = "".join(event.stdout for event in node.events(run.id))
    assert "discovered Python interpreter" not in output, "the discovery warning is back"
