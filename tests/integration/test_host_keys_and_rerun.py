"""Host keys are pinned, and failed hosts run again on their own.

Three hosts reached with a stored SSH key credential: `alpha` is rebuilt (a new host
key) after its key was pinned, `gamma` is given a time zone its system does not have,
`beta` is fine. The apply fails alpha as unreachable, naming it, without touching it;
gamma fails; beta is applied. After the sysadmin pins alpha's new key and corrects
gamma's settings, re-running the failed hosts runs alpha and gamma only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from infracms.services.bootstrap import rekey_host
from infracms.sshkeys import host_key_fingerprint
from tests.helpers import ADMIN
from tests.integration.node import Node, assert_succeeded, describe_failures, make_node, on_host
from tests.support.hosts import TestHost

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NAMES = ("alpha", "beta", "gamma")


def timezone_only(timezone: str) -> dict[str, object]:
    """base settings that install nothing: quick to apply."""
    return {"timezone": timezone, "unattended_upgrades": False}


@dataclass
class Fleet:
    """The node, its hosts by name, and the apply in which alpha and gamma failed."""

    node: Node
    hosts: dict[str, TestHost]
    timezones_before: dict[str, str]
    new_host_key: str
    failed_run: uuid.UUID


def _rebuild_host_key(host: TestHost) -> str:
    """Give the host a new Ed25519 host key, as a reinstall (or an impostor) would."""
    on_host(
        host,
        "rm -f /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub"
        " && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key"
        " && systemctl restart ssh",
    )
    return " ".join(on_host(host, "cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2])


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, module_hosts: Callable[..., list[TestHost]]
) -> Fleet:
    node = make_node(tmp_path_factory.mktemp("fleet") / "var")
    hosts = dict(zip(NAMES, module_hosts(3), strict=True))
    node.add_credential("pool-key", hosts["alpha"].key_path.read_text(), kind="ssh_key")
    for name, host in hosts.items():
        node.add_host(name, host, credential="pool-key")
        zone = "Mars/Olympus_Mons" if name == "gamma" else "Europe/Berlin"
        node.define(f"base-{name}", "base", name, timezone_only(zone))
    before = {name: on_host(host, "cat /etc/timezone") for name, host in hosts.items()}
    new_key = _rebuild_host_key(hosts["alpha"])
    run = node.execute(node.create_run("apply"))
    return Fleet(node, hosts, before, new_key, run.id)


def test_a_changed_host_key_fails_that_host_named_and_untouched(fleet: Fleet) -> None:
    node, alpha = fleet.node, fleet.hosts["alpha"]
    run = node.run(fleet.failed_run)
    assert run.status == "failed", describe_failures(node, run)
    assert run.recap["alpha"].get("unreachable"), run.recap
    assert "unreachable: alpha" in (run.error or ""), run.error
    events = [e for e in node.events(run.id) if e.host == "alpha" and e.status == "unreachable"]
    assert events, f"no unreachable event for alpha: {describe_failures(node, run)}"
    said = events[0].stdout + str(events[0].data)
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in said, said
    presented = host_key_fingerprint(fleet.new_host_key)
    assert presented in said, f"the event does not show the presented {presented}:\n{said}"
    assert on_host(alpha, "cat /etc/timezone") == fleet.timezones_before["alpha"]
    assert node.host_row("alpha").host_key == alpha.host_key, "the pinned key was replaced"


def test_the_run_error_names_the_expected_and_presented_fingerprints(fleet: Fleet) -> None:
    error = fleet.node.run(fleet.failed_run).error or ""
    expected = host_key_fingerprint(fleet.hosts["alpha"].host_key)
    presented = host_key_fingerprint(fleet.new_host_key)
    assert expected in error and presented in error, error


def test_failed_and_unreachable_hosts_are_kept_apart(fleet: Fleet) -> None:
    node = fleet.node
    run = node.run(fleet.failed_run)
    assert run.recap["gamma"].get("failed") == 1 and not run.recap["gamma"].get("unreachable")
    assert not run.recap["alpha"].get("failed"), run.recap
    assert "failed: gamma" in (run.error or ""), run.error
    assert run.recap["beta"].get("changed", 0) > 0, run.recap
    assert not run.recap["beta"].get("failed") and not run.recap["beta"].get("unreachable")
    assert on_host(fleet.hosts["beta"], "cat /etc/timezone") == "Europe/Berlin\n"
    failed = [e for e in node.events(run.id) if e.host == "gamma" and e.status == "failed"]
    assert failed and "Mars/Olympus_Mons" in failed[0].stdout, describe_failures(node, run)


def test_re_running_the_failed_hosts_runs_just_those(fleet: Fleet) -> None:
    node = fleet.node
    # the sysadmin checked the rebuild: a pinned key is replaced only explicitly, after a scan
    rekey_host(
        engine=node.engine,
        settings=node.settings,
        actor=ADMIN,
        organisation=node.org,
        name="alpha",
        fingerprint=host_key_fingerprint(fleet.new_host_key),
    )
    node.revise("base-gamma", timezone_only("Europe/Lisbon"))
    rerun_id = node.rerun_failed(fleet.failed_run)
    queued = node.run(rerun_id)
    assert queued.hosts == ["alpha", "gamma"], queued.hosts
    assert queued.parent_id == fleet.failed_run
    assert queued.kind == "apply"
    run = node.execute(rerun_id)
    assert_succeeded(node, run)
    assert sorted(run.recap) == ["alpha", "gamma"], run.recap
    assert on_host(fleet.hosts["alpha"], "cat /etc/timezone") == "Europe/Berlin\n"
    assert on_host(fleet.hosts["gamma"], "cat /etc/timezone") == "Europe/Lisbon\n"
    revisions = {d["name"]: d["revision"] for d in run.definitions}
    assert revisions["base-gamma"] == 2, revisions
