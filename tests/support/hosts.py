"""Test hosts that are real machines as far as Ansible can tell.

Each `TestHost` is a Debian 12 system booted by ``systemd-nspawn --boot`` (systemd is
PID 1, so Ansible's service and systemd modules manage real services: nginx and
PostgreSQL start, stop and answer) in its own network namespace with its own address
on the bridge 10.231.0.0/24 (see hosts_net), its own copy of a cached debootstrapped
root (an overlay: per-host changes land in a temporary folder), its own SSH host key,
and sshd as the only way in: root logs in with the pool's generated client key.

``init="sshd"`` gives a cheaper host for benchmarks with many hosts: sshd is PID 1 of
a chroot (``ip netns exec`` + ``unshare`` + ``chroot``), no systemd. Services start from
their /etc/init.d scripts (apt's invoke-rc.d and ``service``; a utmp record says
runlevel 2); Ansible reports ``ansible_service_mgr`` as ``sshd`` and its service module
falls back to those scripts; the systemd module does not work there.

The namespaces have no route out. Hosts install packages from a local apt repository
(`REPO_PACKAGES` and what they need, see hosts_repo) that the pool serves over HTTP
on the bridge address; each host's /etc/apt/sources.list points at it and its apt
lists are filled at start, as on a machine that ran ``apt-get update``.

Use `HostPool` as a context manager, or the process-wide `start_hosts(count)`, or the
fixtures (load with ``pytest_plugins = ["tests.support.hosts"]``): ``host_pool``
(session), ``host_factory`` (function: call it with a count) and ``test_hosts``
(function: two hosts). Everything is torn down at the end, even when a test fails;
leftovers of a killed earlier run are removed when the next one starts. Needs root.

Measured here (2 cores): two systemd hosts up in 0.5-1 s, fifty in 12 s (about 11 MiB
each), fifty sshd hosts in 7 s; stopping is under a second a host, in parallel. Booting
more than about 20 systemd hosts needs more inotify instances than Debian's default
128: the pool raises fs.inotify.max_user_instances when it has to, and says so.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import pytest

from tests.support import hosts_build, hosts_image, hosts_net, hosts_repo, tiers
from tests.support.hosts_boot import (
    HostBoot,
    ensure_inotify_instances,
    wait_for_sshd,
    wait_ready,
)
from tests.support.hosts_repo import RepoServer

# What the local apt repository offers on top of the root: what the built-in modules
# install, and what Ansible needs to drive them. Extend it here; the repository is
# rebuilt (seconds) when this changes.
REPO_PACKAGES = (
    "nginx",
    "postgresql",
    "python3-psycopg2",  # community.postgresql's modules
    "acl",  # Ansible's become_user to an unprivileged user (postgres)
    "nftables",
    "restic",
    "wireguard-tools",
    "unattended-upgrades",
    "tzdata",
    "curl",
    "radicale",  # calendars
    "python3-bcrypt",
    "python3-passlib",
)

Init = Literal["systemd", "sshd"]
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RUN_TIMEOUT = 600.0


class TestHost:
    """One running host: where to reach it over SSH, and a way in that is not SSH."""

    __test__ = False  # not a test class, whatever its name says

    def __init__(self, boot: HostBoot, key_path: Path) -> None:
        self._boot = boot
        self.name = boot.lease.name
        self.address = boot.lease.address
        self.port = 22
        self.user = "root"
        self.key_path = key_path
        self.host_key = boot.host_key
        self.init: Init = boot.init

    def __repr__(self) -> str:
        return f"TestHost({self.name!r}, {self.address}, init={self.init})"

    @property
    def known_hosts_line(self) -> str:
        """The line that pins this host's key in a known_hosts file."""
        return f"{self.address} {self.host_key}"

    def run(
        self,
        command: str | Sequence[str],
        *,
        check: bool = False,
        timeout: float = RUN_TIMEOUT,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `command` (a shell line, or an argv) as root inside the host, not over SSH."""
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        return subprocess.run(
            [*self._boot.enter_command(), "/usr/bin/env", "-i", f"PATH={HOST_PATH}",
             "HOME=/root", "LANG=C.UTF-8", "TERM=dumb", *argv],
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
            input=input,
        )  # fmt: skip

    def allow_password_login(self, password: str, user: str = "root") -> None:
        """Let `user` log in over SSH with `password`, as on a new rented server.

        For bootstrap tests: Debian's sshd takes passwords but not for root, so for root
        this adds ``PermitRootLogin yes``; a user other than root is created with sudo.
        """
        if user != "root" and self.run(["id", user]).returncode != 0:
            self.run(["useradd", "--create-home", "--shell", "/bin/bash",
                      "--groups", "sudo", user], check=True)  # fmt: skip
        self.run(["chpasswd"], input=f"{user}:{password}\n", check=True)
        if user == "root":
            self.run(
                "printf 'PermitRootLogin yes\\n' > /etc/ssh/sshd_config.d/10-root-password.conf",
                check=True,
            )
        if self.init == "systemd":
            self.run("systemctl restart ssh", check=True)  # returns once sshd is ready
        else:
            self._boot.reload_sshd()
        wait_for_sshd(self.address)

    def stop(self) -> None:
        """Halt the host and remove its namespace, mounts and files (bounded waits)."""
        self._boot.stop()

    @property
    def stopped(self) -> bool:
        """True once stop() has run."""
        return self._boot.stopped


class HostPool:
    """The shared parts of test hosts (root, repository, client key) and the hosts."""

    def __init__(self, *, repo_packages: Sequence[str] = REPO_PACKAGES) -> None:
        self.repo_packages = tuple(repo_packages)
        self.hosts: list[TestHost] = []
        self.workdir: Path | None = None
        self.root: Path | None = None
        self._server: RepoServer | None = None

    def __enter__(self) -> HostPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def key_path(self) -> Path:
        """The private key that logs in as root on every host of the pool."""
        assert self.workdir is not None, "the pool is not open yet"
        return self.workdir / "id_ed25519"

    def open(self) -> None:
        """Find or build the root and repository, make the bridge, serve the repository."""
        if self.workdir is not None:
            return
        tiers.needs("test hosts", "integration")
        check_machine()
        started = time.monotonic()
        self.root = hosts_image.ensure_root()
        repo = hosts_repo.ensure_repo(self.root, self.repo_packages)
        hosts_net.clean_stale()
        hosts_net.ensure_bridge()
        self.workdir = hosts_net.new_pool_dir()
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "infracms-tests",
             "-f", str(self.key_path)],
            check=True,
        )  # fmt: skip
        self._server = RepoServer(repo, hosts_net.BRIDGE_ADDRESS)
        hosts_build.log(f"host pool ready in {time.monotonic() - started:.1f} s")

    def start_hosts(self, count: int, *, init: Init = "systemd") -> list[TestHost]:
        """Start `count` hosts at once and wait until each one's sshd answers."""
        self.open()
        assert self.root is not None and self._server is not None
        self.hosts = [host for host in self.hosts if not host.stopped]
        started = time.monotonic()
        boots: list[HostBoot] = []
        if init == "systemd":
            ensure_inotify_instances(count)
        try:
            for _ in range(count):
                boot = HostBoot(init=init)
                boots.append(boot)
                boot.prepare(self.root, self.key_path.with_suffix(".pub"), self._server)
                boot.launch()
            wait_ready(boots)
        except BaseException:
            for boot in boots:
                boot.stop()
            raise
        hosts = [TestHost(boot, self.key_path) for boot in boots]
        self.hosts.extend(hosts)
        hosts_build.log(
            f"{count} host(s) ({init}) up in {time.monotonic() - started:.1f} s: "
            + ", ".join(f"{host.name}={host.address}" for host in hosts)
        )
        return hosts

    def close(self) -> None:
        """Stop every host, the repository server, and remove the pool's files."""
        stop_hosts(self.hosts)
        self.hosts.clear()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
            hosts_net.remove_bridge_if_unused()


def stop_hosts(hosts: Sequence[TestHost]) -> None:
    """Stop `hosts` side by side: a halting host mostly waits (PostgreSQL takes seconds)."""
    running = [host for host in hosts if not host.stopped]
    if running:
        with ThreadPoolExecutor(max_workers=min(16, len(running))) as executor:
            list(executor.map(TestHost.stop, running))


# command: the Debian package that has it (scripts/install-test-deps.sh installs them)
REQUIRED_COMMANDS = {
    "debootstrap": "debootstrap",
    "dpkg-scanpackages": "dpkg-dev",
    "systemd-nspawn": "systemd-container",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "unshare": "util-linux",
}


class HostsUnavailable(RuntimeError):
    """This machine cannot run test hosts (not root, or a package is missing)."""


def check_machine() -> None:
    """Raise HostsUnavailable naming what is missing: root, or Debian packages."""
    if os.geteuid() != 0:
        raise HostsUnavailable("test hosts need root (namespaces, mounts, debootstrap)")
    missing = sorted({pkg for cmd, pkg in REQUIRED_COMMANDS.items() if not shutil.which(cmd)})
    if missing:
        raise HostsUnavailable(
            f"missing Debian packages {', '.join(missing)}: run scripts/install-test-deps.sh"
        )


def write_known_hosts(hosts: Sequence[TestHost], path: Path) -> Path:
    """Write a known_hosts file that pins the hosts' keys; return its path."""
    path.write_text("".join(f"{host.known_hosts_line}\n" for host in hosts))
    return path


def write_inventory(hosts: Sequence[TestHost], path: Path, known_hosts: Path) -> Path:
    """Write an INI inventory of `hosts` (group test_hosts) with host key checking on."""
    lines = ["[test_hosts]"]
    for host in hosts:
        lines.append(
            f"{host.name} ansible_host={host.address} ansible_port={host.port} "
            f"ansible_user={host.user} ansible_ssh_private_key_file={host.key_path}"
        )
    lines += [
        "",
        "[test_hosts:vars]",
        "ansible_python_interpreter=/usr/bin/python3",
        f"ansible_ssh_common_args='-o UserKnownHostsFile={known_hosts} "
        "-o StrictHostKeyChecking=yes'",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


_shared: HostPool | None = None


def shared_pool() -> HostPool:
    """Return this process's pool, opened on first use and closed when the process exits."""
    global _shared
    if _shared is None:
        _shared = HostPool()
        atexit.register(close_shared_pool)
    _shared.open()
    return _shared


def close_shared_pool() -> None:
    """Stop this process's hosts and close its pool."""
    global _shared
    pool, _shared = _shared, None
    if pool is not None:
        pool.close()


def start_hosts(count: int, *, init: Init = "systemd") -> list[TestHost]:
    """Start `count` hosts in this process's pool (stopped at exit if not before)."""
    return shared_pool().start_hosts(count, init=init)


@pytest.fixture(scope="session")
def host_pool() -> Iterator[HostPool]:
    """The process-wide pool: root, repository and client key, built or found once."""
    yield shared_pool()
    close_shared_pool()


HostFactory = Callable[..., list[TestHost]]


@pytest.fixture
def host_factory(host_pool: HostPool) -> Iterator[HostFactory]:
    """Start hosts with ``host_factory(count, init="systemd")``; all stop after the test."""
    started: list[TestHost] = []

    def factory(count: int = 1, *, init: Init = "systemd") -> list[TestHost]:
        hosts = host_pool.start_hosts(count, init=init)
        started.extend(hosts)
        return hosts

    yield factory
    stop_hosts(started)


@pytest.fixture
def test_hosts(host_factory: HostFactory) -> list[TestHost]:
    """Two running hosts (systemd as init), stopped after the test."""
    return host_factory(2)
