"""An editor cannot run anything on a managed host through a plan (issue 10, item 2).

The editor's tools: host and group variables named like a role's constants
(`postgresql_psql`, `users_sudoers_dir`, `firewall_nft`, `ssh_hardening_sshd`,
`backup_restic`) or like Ansible's own (`_ansible_ansiballz_pydevd_config`,
`ansible_become_exe`), and a plan, all through the API with an editor's token. A plan
must leave both hosts as they were (no /root/x), run no restic with the repository
password, and never hand a free-form variable to a role as a variable of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security._plans_support import GROUP, RESTIC_LOG, SECRETS, Scene, scene
from tests.support.hosts import HostPool

pytestmark = [pytest.mark.security, pytest.mark.integration, pytest.mark.slow]

INJECTION = ["sh", "-c", "id > /root/x; echo {}", "x"]
HOST_VARIABLES = {
    "pg": {"postgresql_psql": INJECTION, "postgresql_run_psql": INJECTION, "n": "{{ 7 * 6 }}"},
    "fresh": {"postgresql_psql": INJECTION, "backup_restic": "/tmp/evil"},
}
GROUP_VARIABLES = {
    "users_sudoers_dir": "/tmp/evil-sudoers",
    "firewall_nft": "/tmp/evil-nft",
    "ssh_hardening_sshd": "/tmp/evil-sshd",
    "ssh_hardening_config": "/tmp/evil-sshd-config",
}


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory, host_pool: HostPool) -> Iterator[Scene]:
    """The scene, with the editor's variables set through the API."""
    with scene(tmp_path_factory.mktemp("plans"), host_pool) as built:
        org = built.node.org
        for host in ("fresh", "pg"):
            done = built.editor.patch(
                f"/orgs/{org}/hosts/{host}", json={"variables": HOST_VARIABLES[host]}
            )
            assert done.status_code == 200, done.text
        done = built.editor.patch(
            f"/orgs/{org}/groups/{GROUP}", json={"variables": GROUP_VARIABLES}
        )
        assert done.status_code == 200, done.text
        yield built


def test_ansible_names_are_refused(attacked: Scene) -> None:
    org = attacked.node.org
    reserved = (
        "ansible_become_exe",
        "ansible_python_interpreter",
        "_ansible_ansiballz_pydevd_config",
        "infracms_modules",
        "infracms_host_vars",
    )
    for name in reserved:
        done = attacked.editor.patch(
            f"/orgs/{org}/groups/{GROUP}", json={"variables": {name: "/tmp/evil"}}
        )
        assert done.status_code == 422, f"{name}: {done.status_code} {done.text}"
    group = attacked.editor.get(f"/orgs/{org}/groups/{GROUP}").json()
    assert group["variables"] == GROUP_VARIABLES


def test_a_plan_with_overriding_variables_runs_nothing_and_changes_nothing(
    attacked: Scene,
) -> None:
    before = attacked.state()
    run = attacked.plan()
    after = attacked.state()
    assert attacked.pg.run(["test", "-e", "/root/x"]).returncode != 0, "the injection ran"
    assert attacked.fresh.run(["test", "-e", "/root/x"]).returncode != 0, "the injection ran"
    for host in ("fresh", "pg"):
        assert after[host] == before[host], f"the plan changed {host}"
    calls = attacked.pg.run(["cat", RESTIC_LOG])
    assert calls.returncode != 0, f"restic ran in a plan: {calls.stdout}"
    events = attacked.events(run["id"])
    # the plan did talk to the server on pg: the injected psql had its chance
    read = {e["task"] for e in events if e["host"] == "pg" and e["status"] == "ok"}
    assert "Read the databases the server has" in read, sorted(read)
    text = "\n".join(e["stdout"] + str(e["data"]) for e in events)
    for value in ("/tmp/evil", "id > /root/x", "pydevd"):
        assert value not in text, f"{value!r} reached a task"
    for secret in SECRETS.values():
        assert secret not in text
    assert run["status"] == "succeeded", run


def test_nothing_of_the_editor_is_left_on_the_hosts(attacked: Scene) -> None:
    for host in (attacked.fresh, attacked.pg):
        for path in (
            "/tmp/evil-sudoers",
            "/tmp/evil-nft",
            "/tmp/evil-sshd",
            "/tmp/evil-sshd-config",
        ):
            assert host.run(["test", "-e", path]).returncode != 0, path
        found = host.run(["grep", "-rlF", SECRETS["restic"], "/etc", "/root", "/tmp", "/var/tmp"])
        assert found.stdout == "", f"the repository password is on {host}: {found.stdout}"
