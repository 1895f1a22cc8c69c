"""The SSH test hosts: reachable with a pinned key, able to install and run services."""

# The fixtures are imported, so the tests' parameters shadow them (F811); once
# tests/conftest.py lists "tests.support.hosts" in pytest_plugins the imports can go.
# ruff: noqa: F811

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support import hosts_net
from tests.support.hosts import (
    HostFactory,
    HostPool,
    TestHost,
    host_factory,  # noqa: F401  (a fixture)
    host_pool,  # noqa: F401  (a fixture)
    test_hosts,  # noqa: F401  (a fixture)
    write_inventory,
    write_known_hosts,
)

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
SSH_TIMEOUT = 60


def ssh(host: TestHost, known_hosts: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """Run `command` on `host` over SSH, checking its key against `known_hosts`."""
    return subprocess.run(
        ["ssh", "-i", str(host.key_path), "-p", str(host.port),
         "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
         "-o", "BatchMode=yes", "-o", "GlobalKnownHostsFile=/dev/null",
         "-o", "ConnectTimeout=10", f"{host.user}@{host.address}", *command],
        capture_output=True,
        text=True,
        timeout=SSH_TIMEOUT,
        check=False,
    )  # fmt: skip


def ansible(inventory: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run the venv's `ansible` ad hoc against `inventory`, host key checking on."""
    config = inventory.with_name("ansible.cfg")  # none of the machine's or the user's
    config.write_text("[defaults]\n")
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_NOCOLOR": "1",
    }
    return subprocess.run(
        [str(VENV_BIN / "ansible"), "-i", str(inventory), *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def http_get(url: str) -> tuple[int, str]:
    """GET `url` from this (the root) namespace, bypassing any proxy settings."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        return response.status, response.read().decode(errors="replace")


def test_ssh_with_pinned_host_key(test_hosts: list[TestHost], tmp_path: Path) -> None:
    known_hosts = write_known_hosts(test_hosts, tmp_path / "known_hosts")
    addresses = {host.address for host in test_hosts}
    assert len(addresses) == 2, f"two hosts share an address: {test_hosts}"
    for host in test_hosts:
        assert host.host_key.startswith("ssh-ed25519 AAAA"), host.host_key
        result = ssh(host, known_hosts, "hostname")
        assert result.returncode == 0, f"ssh to {host} failed: {result.stderr}"
        assert result.stdout.strip() == host.name


def test_wrong_pinned_key_is_refused(test_hosts: list[TestHost], tmp_path: Path) -> None:
    first, second = test_hosts
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"{first.address} {second.host_key}\n")
    result = ssh(first, known_hosts, "true")
    assert result.returncode == 255, f"ssh accepted a wrong host key: {result}"
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr, result.stderr


def test_run_is_inside_the_host(test_hosts: list[TestHost]) -> None:
    for host in test_hosts:
        result = host.run("hostname; cat /proc/1/comm; ip -4 -o addr show dev eth0")
        assert result.returncode == 0, result.stderr
        name, init, address = result.stdout.splitlines()
        assert (name, init) == (host.name, "systemd")
        assert f"inet {host.address}/24" in address
    # each host has its own file system: a file written on one is not on the other
    first, second = test_hosts
    first.run("echo only-here > /root/marker", check=True)
    assert second.run("test -e /root/marker").returncode == 1


def test_hosts_have_no_route_out(test_hosts: list[TestHost]) -> None:
    # the default route goes to the bridge, and this machine does not forward
    assert hosts_net.ip("-n", test_hosts[0].name, "route").stdout.startswith(
        f"default via {hosts_net.BRIDGE_ADDRESS}"
    )
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "0"


def test_apt_install_nginx_from_the_local_repository(test_hosts: list[TestHost]) -> None:
    host = test_hosts[0]
    started = time.monotonic()
    result = host.run("DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx")
    assert result.returncode == 0, f"apt-get install nginx failed:\n{result.stdout}{result.stderr}"
    print(f"\n[timing] apt-get install nginx: {time.monotonic() - started:.1f} s")
    assert host.run("systemctl is-active nginx").stdout.strip() == "active"
    status, body = http_get(f"http://{host.address}/")
    assert status == 200 and "Welcome to nginx" in body, body[:200]
    # the service is managed by systemd: stop it and nothing answers
    host.run("systemctl stop nginx", check=True)
    with pytest.raises(OSError):
        http_get(f"http://{host.address}/")


def test_hosts_manage_their_own_network(test_hosts: list[TestHost], tmp_path: Path) -> None:
    # what the firewall module does, over SSH (with the container's capabilities)
    host = test_hosts[1]
    known_hosts = write_known_hosts([host], tmp_path / "known_hosts")
    host.run("DEBIAN_FRONTEND=noninteractive apt-get install -y -q nftables", check=True)
    result = ssh(
        host,
        known_hosts,
        "nft add table inet infracms && nft list tables"
        " && systemctl restart nftables && systemctl is-active nftables"
        " && sysctl -w net.ipv4.ip_forward=1",
    )
    assert result.returncode == 0, f"{result.stdout}{result.stderr}"
    assert "active" in result.stdout and "net.ipv4.ip_forward = 1" in result.stdout
    # the host's sysctl is its own namespace's: this machine still forwards nothing
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "0"


def test_ansible_ping_and_setup(test_hosts: list[TestHost], tmp_path: Path) -> None:
    known_hosts = write_known_hosts(test_hosts, tmp_path / "known_hosts")
    inventory = write_inventory(test_hosts, tmp_path / "inventory.ini", known_hosts)
    started = time.monotonic()
    ping = ansible(inventory, "all", "-m", "ansible.builtin.ping", "-o")
    print(f"\n[timing] ansible ping, 2 hosts: {time.monotonic() - started:.1f} s")
    assert ping.returncode == 0, f"ansible ping failed:\n{ping.stdout}{ping.stderr}"
    assert ping.stdout.count("SUCCESS") == 2, ping.stdout
    started = time.monotonic()
    setup = ansible(inventory, "all", "-m", "ansible.builtin.setup", "-t", str(tmp_path / "facts"))
    print(f"[timing] ansible setup, 2 hosts: {time.monotonic() - started:.1f} s")
    assert setup.returncode == 0, f"ansible setup failed:\n{setup.stdout}{setup.stderr}"
    for host in test_hosts:
        facts = json.loads((tmp_path / "facts" / host.name).read_text())["ansible_facts"]
        assert facts["ansible_hostname"] == host.name
        assert facts["ansible_default_ipv4"]["address"] == host.address
        assert facts["ansible_service_mgr"] == "systemd"
        assert facts["ansible_distribution"] == "Debian"
        assert facts["ansible_distribution_major_version"] == "12"


def test_ansible_refuses_a_host_with_a_changed_key(
    test_hosts: list[TestHost], tmp_path: Path
) -> None:
    first, second = test_hosts
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"{first.address} {second.host_key}\n")
    inventory = write_inventory([first], tmp_path / "inventory.ini", known_hosts)
    result = ansible(inventory, "all", "-m", "ansible.builtin.ping", "-o")
    assert result.returncode == 4, f"expected unreachable (4): {result.stdout}{result.stderr}"
    assert "UNREACHABLE" in result.stdout and "HOST IDENTIFICATION HAS CHANGED" in result.stdout


def test_ansible_manages_services(host_factory: HostFactory, tmp_path: Path) -> None:
    (host,) = host_factory(1)
    known_hosts = write_known_hosts([host], tmp_path / "known_hosts")
    inventory = write_inventory([host], tmp_path / "inventory.ini", known_hosts)
    started = time.monotonic()
    install = ansible(inventory, "all", "-m", "ansible.builtin.apt", "-a", "name=postgresql,nginx")
    print(f"\n[timing] ansible apt postgresql+nginx: {time.monotonic() - started:.1f} s")
    assert install.returncode == 0, f"apt through Ansible failed:\n{install.stdout}"
    for action in ("state=stopped", "state=started enabled=true"):
        result = ansible(
            inventory, "all", "-m", "ansible.builtin.service", "-a", f"name=postgresql {action}"
        )
        assert result.returncode == 0, f"service {action} failed:\n{result.stdout}"
    query = host.run("runuser -u postgres -- psql -tAc 'select 40 + 2'")
    assert query.stdout.strip() == "42", f"PostgreSQL does not answer: {query}"
    restarted = ansible(
        inventory, "all", "-m", "ansible.builtin.systemd", "-a", "name=nginx state=restarted"
    )
    assert restarted.returncode == 0, restarted.stdout
    assert http_get(f"http://{host.address}/")[0] == 200


def test_sshd_init_hosts(host_factory: HostFactory, tmp_path: Path) -> None:
    (host,) = host_factory(1, init="sshd")
    assert host.run("cat /proc/1/comm").stdout.strip() == "sshd"
    known_hosts = write_known_hosts([host], tmp_path / "known_hosts")
    assert ssh(host, known_hosts, "true").returncode == 0
    inventory = write_inventory([host], tmp_path / "inventory.ini", known_hosts)
    facts = ansible(inventory, "all", "-m", "ansible.builtin.setup", "-a", "filter=*service_mgr")
    # Ansible names PID 1's command: not a manager it knows, so `service` uses init scripts
    assert '"ansible_service_mgr": "sshd"' in facts.stdout, facts.stdout
    install = ansible(inventory, "all", "-m", "ansible.builtin.apt", "-a", "name=nginx")
    assert install.returncode == 0, f"apt through Ansible failed:\n{install.stdout}"
    # no systemd: apt started nginx from its /etc/init.d script, and so does `service`
    assert http_get(f"http://{host.address}/")[0] == 200
    host.run("service nginx stop", check=True)
    with pytest.raises(OSError):
        http_get(f"http://{host.address}/")
    started = ansible(
        inventory, "all", "-m", "ansible.builtin.service", "-a", "name=nginx state=started"
    )
    assert started.returncode == 0, started.stdout
    assert http_get(f"http://{host.address}/")[0] == 200


@pytest.mark.parametrize("init", ["systemd", "sshd"])
@pytest.mark.parametrize("user", ["root", "admin"])
def test_password_login_for_bootstrap(
    host_factory: HostFactory, tmp_path: Path, init: str, user: str
) -> None:
    (host,) = host_factory(1, init=init)
    known_hosts = write_known_hosts([host], tmp_path / "known_hosts")
    command = ["sshpass", "-e", "ssh", "-o", f"UserKnownHostsFile={known_hosts}",
               "-o", "StrictHostKeyChecking=yes", "-o", "PubkeyAuthentication=no",
               "-o", "ConnectTimeout=10", f"{user}@{host.address}", "id -un"]  # fmt: skip
    env = {**os.environ, "SSHPASS": "one-time secret"}
    before = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert before.returncode != 0, f"{user} logged in with a password before it was allowed"
    host.allow_password_login("one-time secret", user=user)
    after = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert after.returncode == 0, after.stderr
    assert after.stdout.strip() == user


def leftovers(name: str, scratch: Path) -> list[str]:
    """Name what is left of host `name`: namespace, link, mounts, lease, folder."""
    found = []
    if name in hosts_net.ip("netns", "list").stdout.split():
        found.append(f"network namespace {name}")
    if hosts_net.ip("link", "show", f"icmsv{name.split('-')[1]}", check=False).returncode == 0:
        found.append(f"veth of {name}")
    if str(scratch) in Path("/proc/self/mountinfo").read_text():
        found.append(f"mounts under {scratch}")
    if (hosts_net.STATE_DIR / f"{name.split('-')[1]}.json").exists():
        found.append(f"lease of {name}")
    if scratch.exists():
        found.append(f"folder {scratch}")
    return found


def test_stop_leaves_nothing_behind(host_factory: HostFactory) -> None:
    hosts = host_factory(1) + host_factory(1, init="sshd")
    for host in hosts:
        scratch, pid = host._boot.scratch, host._boot.init_pid
        assert pid is not None
        host.stop()
        assert leftovers(host.name, scratch) == []
        assert hosts_net.process_start(pid) is None, f"{host.name}'s init {pid} still runs"


def test_a_killed_run_is_cleaned_up_by_the_next(host_pool: HostPool, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import json, os, signal, sys
        from tests.support.hosts import HostPool
        pool = HostPool()
        hosts = pool.start_hosts(1) + pool.start_hosts(1, init="sshd")
        print(json.dumps([str(pool.workdir)]))
        print(json.dumps([[h.name, str(h._boot.scratch), h._boot.init_pid] for h in hosts]))
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    workdir_line, hosts_line = child.stdout.splitlines()
    workdir, killed = Path(json.loads(workdir_line)[0]), json.loads(hosts_line)
    assert workdir.exists() and all(leftovers(n, Path(s)) for n, s, _ in killed)
    hosts_net.clean_stale()  # what the next run's pool does when it opens
    assert not workdir.exists(), f"the killed pool's {workdir} is left"
    for name, scratch, pid in killed:
        assert leftovers(name, Path(scratch)) == []
        assert hosts_net.process_start(pid) is None, f"{name}'s init {pid} still runs"
