"""Booting one test host: namespace, overlay root, identity, and its init (see hosts.py)."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tests.support import hosts_net
from tests.support.hosts_build import log
from tests.support.hosts_net import Lease

if TYPE_CHECKING:
    from tests.support.hosts_repo import RepoServer

READY_TIMEOUT = 90.0
BOOT_TIMEOUT = 60.0
NSENTER = "/usr/bin/nsenter"


class HostBootError(RuntimeError):
    """A test host did not come up."""


class HostBoot:
    """The machinery behind one TestHost, from its lease to its teardown."""

    def __init__(self, *, init: Literal["systemd", "sshd"]) -> None:
        if init not in ("systemd", "sshd"):
            raise ValueError(f"init must be 'systemd' or 'sshd', got {init!r}")
        self.init: Literal["systemd", "sshd"] = init
        self.lease: Lease = hosts_net.acquire()
        self.scratch = Path(tempfile.mkdtemp(prefix=f"infracms-{self.lease.name}-"))
        self.lease.record(scratch=str(self.scratch))
        self.merged = self.scratch / "merged"
        self.host_key = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.init_pid: int | None = None
        self.stopped = False

    @property
    def console_log(self) -> Path:
        """Where the init's console output goes (read it when a host fails)."""
        return self.scratch / "console.log"

    def prepare(self, root: Path, client_key: Path, repo: RepoServer) -> None:
        """Make the namespace and the overlay, and give the host its identity and keys."""
        hosts_net.create_namespace(self.lease)
        for part in ("upper", "work", "merged"):
            (self.scratch / part).mkdir()
        options = (
            f"lowerdir={root},upperdir={self.scratch / 'upper'},workdir={self.scratch / 'work'}"
        )
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(self.merged)], check=True
        )
        self._write_identity(client_key, repo)

    def _write_identity(self, client_key: Path, repo: RepoServer) -> None:
        name, etc = self.lease.name, self.merged / "etc"
        _replace(etc / "hostname", f"{name}\n")
        _replace(etc / "hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n")
        _replace(etc / "machine-id", uuid.uuid4().hex + "\n")
        _replace(etc / "apt/sources.list", repo.sources_list)
        for filename, content in repo.apt_lists().items():
            (self.merged / "var/lib/apt/lists" / filename).write_bytes(content)
        key = etc / "ssh/ssh_host_ed25519_key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}", "-f", str(key)],
            check=True,
        )
        self.host_key = " ".join(key.with_suffix(".pub").read_text().split()[:2])
        ssh_dir = self.merged / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        _replace(ssh_dir / "authorized_keys", client_key.read_text(), mode=0o600)

    def launch(self) -> None:
        """Start the host's init in its namespaces (it goes on in the background)."""
        cgroups = hosts_net.cgroup_dirs(self.lease.name) if self.init == "systemd" else []
        for directory in cgroups:
            directory.mkdir(exist_ok=True)
        self.lease.record(cgroups=[str(directory) for directory in cgroups])
        # nspawn puts its container below its own cgroup: one cgroup per host keeps two
        # containers started from the same process out of each other's way
        enter = "".join(f'echo $$ > "{d}/cgroup.procs"; ' for d in cgroups)
        command = self._nspawn_command() if self.init == "systemd" else self._sshd_command()
        # /proc/sys/net writable (it is the host's own namespace): sysctl net.ipv4.*
        env = {**os.environ, "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"}
        with open(self.console_log, "wb") as console:
            self.process = subprocess.Popen(
                ["/bin/sh", "-c", f"{enter}exec {shlex.join(command)}"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.lease.record(
            launcher=hosts_net.identity(self.process.pid),
            terminate="launcher" if self.init == "systemd" else "init",
        )

    def _nspawn_command(self) -> list[str]:
        return [
            "systemd-nspawn",
            "--quiet",
            "--boot",
            f"--directory={self.merged}",
            f"--machine={self.lease.name}",
            f"--network-namespace-path=/run/netns/{self.lease.name}",
            "--register=no",  # no systemd-machined on this machine (no system bus)
            "--keep-unit",  # no scope unit either: run in the cgroup we were started in
            # the firewall module loads nftables rules; the namespace is the host's own
            "--capability=CAP_NET_ADMIN",
            "--resolv-conf=off",
            "--timezone=off",
            "--link-journal=no",
            "--console=pipe",
        ]

    def _sshd_command(self) -> list[str]:
        merged, name = shlex.quote(str(self.merged)), shlex.quote(self.lease.name)
        inside = (
            f"mount -t proc proc {merged}/proc && mount --rbind /dev {merged}/dev && "
            f"hostname {name} && exec chroot {merged} /usr/sbin/sshd -D -e"
        )
        # /run is the overlay's (fresh per host): sshd's privilege separation folder, and
        # a utmp saying runlevel 2, without which invoke-rc.d starts no service
        (self.merged / "run/sshd").mkdir(parents=True, exist_ok=True)
        (self.merged / "run/utmp").write_bytes(_runlevel_record("2"))
        return [
            *("ip", "netns", "exec", self.lease.name),
            *("unshare", "--mount", "--pid", "--uts", "--ipc", "--fork", "--kill-child"),
            *("/bin/sh", "-c", inside),
        ]

    def find_init(self) -> int | None:
        """Return the host's PID 1 as this machine numbers it, once it exists."""
        if self.init_pid is None and self.process is not None:
            pid = _pid_namespace_init(self.process.pid)
            if pid is not None:
                self.init_pid = pid
                self.lease.record(init=hosts_net.identity(pid))
        return self.init_pid

    def enter_command(self) -> list[str]:
        """The command prefix that runs something inside the host (all its namespaces)."""
        if self.stopped or self.init_pid is None:
            raise HostBootError(f"{self.lease.name} is not running")
        return [NSENTER, f"--target={self.init_pid}", "--mount", "--uts", "--ipc", "--net",
                "--pid", "--root", "--wd"]  # fmt: skip

    def reload_sshd(self) -> None:
        """Make sshd, the init of an ``init="sshd"`` host, read its configuration again.

        SIGHUP makes it close its listening sockets and re-execute itself, keeping its
        pid: the new sockets tell that it has, so no connection meets the old process.
        """
        assert self.init == "sshd" and self.init_pid is not None
        before = _sockets(self.init_pid)
        os.kill(self.init_pid, signal.SIGHUP)
        deadline = time.monotonic() + READY_TIMEOUT
        while _sockets(self.init_pid) & before or not _sockets(self.init_pid):
            if time.monotonic() > deadline:
                raise self.failure("sshd did not re-execute after SIGHUP")
            time.sleep(0.02)

    def failure(self, reason: str) -> HostBootError:
        """An error naming the host, `reason` and the end of its console log."""
        tail = self.console_log.read_text(errors="replace")[-3000:]
        return HostBootError(f"{self.lease.name} ({self.init}): {reason}; console:\n{tail}")

    def stop(self) -> None:
        """Halt the host and free everything it used (idempotent)."""
        if self.stopped:
            return
        self.stopped = True
        hosts_net.release(self.lease)
        if self.process is not None:
            try:
                self.process.wait(timeout=hosts_net.KILL_TIMEOUT)
            except subprocess.TimeoutExpired:
                log(f"{self.lease.name}: launcher {self.process.pid} did not end")


INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_PER_HOST = 16  # seen: about 7 (systemd, journald, logind, dbus, sshd); a margin


def ensure_inotify_instances(hosts: int) -> None:
    """Raise the kernel's inotify instance limit so that `hosts` more systemd hosts boot.

    Debian's default of 128 per user stops the 20th to 35th container here: its
    systemd exits at once (nspawn exit status 255) without saying why.
    """
    limit = int(INOTIFY_LIMIT.read_text())
    wanted = 1024 + INOTIFY_PER_HOST * (hosts + len(list(hosts_net.STATE_DIR.glob("*.json"))))
    if limit < wanted:
        INOTIFY_LIMIT.write_text(f"{wanted}\n")
        log(f"raised fs.inotify.max_user_instances from {limit} to {wanted} for systemd hosts")


def wait_for_sshd(address: str, timeout: float = READY_TIMEOUT) -> None:
    """Wait until sshd at `address` answers again (after a reload), or raise."""
    deadline = time.monotonic() + timeout
    while not ssh_banner(address):
        if time.monotonic() > deadline:
            raise HostBootError(f"sshd at {address} did not answer within {timeout:.0f} s")
        time.sleep(0.05)


def wait_ready(boots: list[HostBoot]) -> None:
    """Wait until each host's sshd sends its banner (and systemd has booted)."""
    deadline = time.monotonic() + READY_TIMEOUT
    waiting = list(boots)
    while waiting:
        for boot in list(waiting):
            if boot.process is not None and boot.process.poll() is not None:
                raise boot.failure(f"its init exited with {boot.process.returncode}")
            if boot.find_init() is not None and ssh_banner(boot.lease.address):
                waiting.remove(boot)
        if waiting and time.monotonic() > deadline:
            raise waiting[0].failure(f"sshd did not answer within {READY_TIMEOUT:.0f} s")
        if waiting:
            time.sleep(0.1)
    for boot in boots:
        if boot.init == "systemd":
            _wait_booted(boot)


def _wait_booted(boot: HostBoot) -> None:
    """Wait for systemd's start-up jobs to end, so apt and services do not race them."""
    result = subprocess.run(
        [*boot.enter_command(), "systemctl", "is-system-running", "--wait"],
        capture_output=True,
        text=True,
        timeout=BOOT_TIMEOUT,
        check=False,
    )
    state = result.stdout.strip()
    if state not in ("running", "degraded"):
        raise boot.failure(f"systemd is {state or result.stderr.strip()!r} after boot")


def ssh_banner(address: str) -> bool:
    """True when sshd at `address` port 22 sends its identification banner."""
    try:
        with socket.create_connection((address, 22), timeout=1) as connection:
            connection.settimeout(2)
            return connection.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def _sockets(pid: int) -> set[str]:
    """Return the sockets process `pid` holds open, as 'socket:[inode]' names."""
    names = set()
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(descriptor)
            if target.startswith("socket:"):
                names.add(target)
    return names


def _pid_namespace_init(launcher: int) -> int | None:
    """Find, among the descendants of `launcher`, the PID 1 of a new PID namespace."""
    depth = len(_nspid(os.getpid()) or [])
    pending = [launcher]
    for _ in range(1000):  # a few processes deep at most; bounded all the same
        if not pending:
            return None
        pid = pending.pop()
        numbers = _nspid(pid)
        if numbers and len(numbers) > depth and numbers[-1] == 1:
            return pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        pending.extend(int(child) for child in children)
    return None


def _nspid(pid: int) -> list[int] | None:
    """Return the process's pid in each PID namespace it is in, outermost first."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    line = next((line for line in status.splitlines() if line.startswith("NSpid:")), "")
    return [int(number) for number in line.split()[1:]]


def _runlevel_record(level: str) -> bytes:
    """A glibc x86-64 utmp RUN_LVL record, as sysvinit writes it on entering `level`."""
    run_lvl = 1
    return struct.pack(
        "<hxxi32s4s32s256s4xi8x16x20x",
        run_lvl,
        ord(level) + 256 * ord("N"),  # current level in the low byte, previous above it
        b"~~",
        b"~~",
        b"runlevel",
        b"",
        0,
    )


def _replace(path: Path, text: str, mode: int = 0o644) -> None:
    """Write `path` afresh (not through a symlink the root may have there)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
