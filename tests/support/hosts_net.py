"""Addresses, network namespaces and leftovers of the test hosts.

All test hosts on this machine, whichever process started them, hang off one bridge
``icmsbr0`` with the address 10.231.0.1/24 in the root network namespace; host N gets
the network namespace ``icms-N``, the address 10.231.0.N (N from 10 to 254) and a veth
pair ``icmsvN`` (on the bridge) / ``eth0`` (in the namespace). 10.231.0.0/24 is a
private block that nothing on these machines routes (their own networks are
192.0.2.0/24 and a resolver at 10.255.255.53); IP forwarding stays off, so the hosts
reach the bridge address and each other, and nothing beyond.

A host's number is leased through a file ``/run/infracms-test-hosts/N.json`` created
exclusively, which also records the processes and folders to clean up. A lease whose
owner process is gone is stale: `clean_stale()` ends what it recorded and frees it,
so a test run killed with SIGKILL leaves nothing behind after the next start, while
hosts of another live test process are left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.hosts_build import unmount_under

BRIDGE = "icmsbr0"
NETWORK = "10.231.0"
PREFIX_LENGTH = 24
BRIDGE_ADDRESS = f"{NETWORK}.1"
FIRST_HOST, LAST_HOST = 10, 254
NAMESPACE_PREFIX = "icms-"
VETH_PREFIX = "icmsv"
STATE_DIR = Path("/run/infracms-test-hosts")
CGROUP_PREFIX = "infracms-test-"
NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")
STOP_TIMEOUT = 15.0
KILL_TIMEOUT = 5.0


@dataclass(frozen=True)
class Lease:
    """One host number, with the names and address that follow from it."""

    number: int

    @property
    def name(self) -> str:
        """The network namespace's name, also the host's name."""
        return f"{NAMESPACE_PREFIX}{self.number}"

    @property
    def address(self) -> str:
        """The host's IPv4 address on the bridge."""
        return f"{NETWORK}.{self.number}"

    @property
    def veth(self) -> str:
        """The root-namespace end of the host's veth pair."""
        return f"{VETH_PREFIX}{self.number}"

    @property
    def path(self) -> Path:
        """The lease file."""
        return STATE_DIR / f"{self.number}.json"

    def record(self, **fields: Any) -> None:
        """Add `fields` to what the lease file records (read back by `clean_stale`)."""
        state = read_state(self.path) or {}
        state.update(fields)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(self.path)


def ip(*arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip` with `arguments`; raise with its message when `check` and it fails."""
    result = subprocess.run(["ip", *arguments], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(arguments)} failed: {result.stderr.strip()}")
    return result


@contextlib.contextmanager
def state_lock() -> Iterator[None]:
    """Hold the machine-wide lock over leases, the bridge and the cleanup."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def process_start(pid: int) -> int | None:
    """Return the start time of process `pid` (clock ticks since boot), None if gone.

    A zombie counts as gone: it has ended, only its parent has not reaped it yet.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])


def identity(pid: int) -> list[int]:
    """Return [pid, start time], which tells a process apart from a later one reusing pid."""
    return [pid, process_start(pid) or 0]


def alive(recorded: list[int] | None) -> bool:
    """True when the process recorded as [pid, start time] still runs."""
    return bool(recorded) and process_start(recorded[0]) == recorded[1]  # type: ignore[index]


def read_state(path: Path) -> dict[str, Any] | None:
    """Return a lease file's content, None when it is missing or half written."""
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return None


def acquire() -> Lease:
    """Lease a free host number for this process, cleaning stale leases first."""
    with state_lock():
        _clean_stale_locked()
        for number in range(FIRST_HOST, LAST_HOST + 1):
            lease = Lease(number)
            try:
                descriptor = os.open(lease.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            with os.fdopen(descriptor, "w") as handle:
                json.dump({"owner": identity(os.getpid())}, handle)
            return lease
    raise RuntimeError(f"all test host addresses {NETWORK}.{FIRST_HOST}-{LAST_HOST} are leased")


def new_pool_dir() -> Path:
    """Make a folder for a pool's files (its client key), removed as stale with its owner."""
    pid, start = identity(os.getpid())
    folder = STATE_DIR / "pools" / f"{pid}-{start}-{time.monotonic_ns()}"
    folder.mkdir(parents=True, mode=0o700)
    return folder


def ensure_bridge() -> None:
    """Create the bridge with its address, unless it is there already."""
    with state_lock():
        if ip("link", "show", BRIDGE, check=False).returncode != 0:
            ip("link", "add", BRIDGE, "type", "bridge")
            ip("addr", "add", f"{BRIDGE_ADDRESS}/{PREFIX_LENGTH}", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")


def remove_bridge_if_unused() -> None:
    """Delete the bridge when no host and no live pool is left (they may be another's)."""
    with state_lock():
        leases = list(STATE_DIR.glob("*.json"))
        if not leases and not any(_pool_alive(folder) for folder in _pool_dirs()):
            ip("link", "del", BRIDGE, check=False)


def _pool_dirs() -> list[Path]:
    return list((STATE_DIR / "pools").glob("*-*-*"))


def _pool_alive(folder: Path) -> bool:
    """True when the process that made pool folder `folder` still runs."""
    pid, start, _ = folder.name.split("-")
    return alive([int(pid), int(start)])


def create_namespace(lease: Lease) -> None:
    """Make the host's network namespace, wired to the bridge with its address."""
    ns = lease.name
    ip("netns", "add", ns)
    ip("link", "add", lease.veth, "type", "veth", "peer", "name", f"{lease.veth}p")
    ip("link", "set", f"{lease.veth}p", "netns", ns)
    ip("link", "set", lease.veth, "master", BRIDGE, "up")
    for arguments in (
        ("link", "set", f"{lease.veth}p", "name", "eth0"),
        ("addr", "add", f"{lease.address}/{PREFIX_LENGTH}", "dev", "eth0"),
        ("link", "set", "eth0", "up"),
        ("link", "set", "lo", "up"),
        ("route", "add", "default", "via", BRIDGE_ADDRESS),
    ):
        ip("-n", ns, *arguments)


def release(lease: Lease, state: dict[str, Any] | None = None) -> None:
    """End everything the lease recorded, then free it (bounded waits throughout)."""
    state = state if state is not None else (read_state(lease.path) or {})
    _end_processes(state)
    if state.get("scratch"):
        scratch = Path(state["scratch"])
        unmount_under(scratch)
        subprocess.run(["rm", "-rf", "--one-file-system", str(scratch)], check=False)
    ip("netns", "del", lease.name, check=False)
    ip("link", "del", lease.veth, check=False)
    for directory in state.get("cgroups") or [str(path) for path in cgroup_dirs(lease.name)]:
        _remove_cgroup(Path(directory))
    with contextlib.suppress(OSError):
        (NSPAWN_PROPAGATE / lease.name).rmdir()
    lease.path.unlink(missing_ok=True)


def _end_processes(state: dict[str, Any]) -> None:
    """SIGTERM the process recorded as `terminate`; SIGKILL what outlives the wait.

    For systemd-nspawn that is the launcher (nspawn halts the container); for a host
    whose init is sshd it is sshd itself, since `unshare --fork` ignores SIGTERM.
    """
    launcher, init = state.get("launcher"), state.get("init")
    target = state.get(state.get("terminate", "launcher"))
    if alive(target):
        with contextlib.suppress(ProcessLookupError):
            os.kill(target[0], signal.SIGTERM)  # type: ignore[index]
        _wait_gone([launcher, init], STOP_TIMEOUT)
    for recorded in (init, launcher):  # killing a PID namespace's init kills all in it
        if alive(recorded):
            with contextlib.suppress(ProcessLookupError):
                os.kill(recorded[0], signal.SIGKILL)  # type: ignore[index]
    _wait_gone([init, launcher], KILL_TIMEOUT)


def _wait_gone(processes: list[list[int] | None], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(recorded) for recorded in processes) and time.monotonic() < deadline:
        time.sleep(0.05)


def cgroup_roots() -> list[tuple[Path, str]]:
    """Return (mount point, this process's path) of the systemd and unified cgroup trees."""
    ours: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        ours[controllers] = path
    roots = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        kind, options = fields[-3], fields[-1]
        if kind == "cgroup" and "name=systemd" in options.split(","):
            roots.append((Path(fields[4]), ours.get("name=systemd", "/")))
        elif kind == "cgroup2":
            roots.append((Path(fields[4]), ours.get("", "/")))
    return roots


def cgroup_dirs(name: str) -> list[Path]:
    """Return the cgroups (one per tree) that host `name`'s launcher is moved into."""
    return [root / path.lstrip("/") / f"{CGROUP_PREFIX}{name}" for root, path in cgroup_roots()]


def _remove_cgroup(top: Path) -> None:
    """Remove an emptied cgroup and the ones nspawn made below it (deepest first)."""
    if not top.is_dir():
        return
    below = [entry for entry in top.rglob("*") if entry.is_dir()]
    for directory in sorted(below, key=lambda entry: len(entry.parts), reverse=True):
        with contextlib.suppress(OSError):
            directory.rmdir()
    with contextlib.suppress(OSError):
        top.rmdir()


def clean_stale() -> None:
    """Remove hosts whose owner process is gone, and unleased namespaces and links."""
    with state_lock():
        _clean_stale_locked()


def _clean_stale_locked() -> None:
    leased = set()
    for path in STATE_DIR.glob("*.json"):
        lease = Lease(int(path.stem))
        state = read_state(path)
        if state is not None and alive(state.get("owner")):
            leased.add(lease.number)
        else:
            release(lease, state or {})
    for number in _numbers(ip("netns", "list").stdout, rf"^{NAMESPACE_PREFIX}(\d+)\b"):
        if number not in leased:
            release(Lease(number), {})
    for number in _numbers(ip("-o", "link").stdout, rf"^\d+: {VETH_PREFIX}(\d+)[@:]"):
        if number not in leased:
            ip("link", "del", Lease(number).veth, check=False)
    for folder in _pool_dirs():
        if not _pool_alive(folder):
            shutil.rmtree(folder, ignore_errors=True)


def _numbers(listing: str, pattern: str) -> set[int]:
    return {int(match) for match in re.findall(pattern, listing, flags=re.MULTILINE)}
