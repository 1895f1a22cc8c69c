"""The test hosts' Debian root and local apt repository, built once and cached.

`ensure_root()` answers the path of a bookworm root file system made with debootstrap
(minbase plus `ROOT_PACKAGES`), upgraded from the same mirror as this machine's apt
sources. `ensure_repo(root, packages)` answers a flat apt repository holding the .deb
files those packages need on top of that root (resolved by apt inside an overlay of the
root, so exactly what a host would download), indexed with dpkg-scanpackages.

Both live under ``/var/cache/infracms-tests`` (``INFRACMS_TEST_CACHE`` overrides it),
named by a hash of what goes into them, so a changed package list builds a new one and
an unchanged one is reused. A lock file makes a parallel test process wait for the
build instead of doing it twice. Run ``python -m tests.support.hosts_image`` to build
both ahead of the tests (``make test`` does not have to: the first test builds them).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

SUITE = "bookworm"
VARIANT = "minbase"
# Bump when the build steps change in a way the package lists do not show.
BUILD_VERSION = 3
CACHE_VARIABLE = "INFRACMS_TEST_CACHE"
MIRROR_VARIABLE = "INFRACMS_TEST_MIRROR"
DEFAULT_CACHE = Path("/var/cache/infracms-tests")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
APT_SOURCES_LIST = Path("/etc/apt/sources.list")

# What every host has before Ansible touches it: sshd as the way in, Python and
# python3-apt for Ansible's modules (ansible.builtin.apt imports apt), sudo, and
# systemd as init so that the service and systemd modules manage real services.
ROOT_PACKAGES = (
    "openssh-server",
    "python3",
    "python3-apt",
    "sudo",
    "ca-certificates",
    "apt-utils",
    "systemd",
    "systemd-sysv",
    "dbus",
    "iproute2",
    "procps",
)

# sshd as FIELD-NOTES found it works here: no PAM, no ownership checks on the overlay.
SSHD_CONFIG = """\
# infracms test host
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
HostKey /etc/ssh/ssh_host_ed25519_key
"""

BUILD_TIMEOUT = 3600.0

# Never put in the repository: wireguard-tools recommends kernel modules, which apt
# would satisfy with a whole kernel image (70 MB, an initramfs built on install) that
# a host sharing this machine's kernel cannot use. Real hosts have a kernel already.
REPO_NEVER = ("linux-image-*", "linux-headers-*", "wireguard-dkms")


class ImageBuildError(RuntimeError):
    """The root file system or the apt repository could not be built."""


def log(message: str) -> None:
    """Print a progress line (the first build takes minutes)."""
    print(f"[test-hosts] {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """Return the folder that holds the cached roots and repositories."""
    return Path(os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE)


def machine_sources() -> list[tuple[str, list[str]]]:
    """Return (URI, suites) of this machine's Debian apt sources, deb822 or one-line."""
    found: list[tuple[str, list[str]]] = []
    if APT_SOURCES.exists():
        for stanza in APT_SOURCES.read_text().split("\n\n"):
            fields = dict(_deb822_fields(stanza))
            if "deb" in fields.get("types", "").split() and fields.get("uris"):
                found.append((fields["uris"].split()[0], fields.get("suites", "").split()))
    if APT_SOURCES_LIST.exists():
        for line in APT_SOURCES_LIST.read_text().splitlines():
            match = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line)
            if match:
                found.append((match.group(1), [match.group(2)]))
    return found


def _deb822_fields(stanza: str) -> Iterator[tuple[str, str]]:
    for line in stanza.splitlines():
        if line and not line.startswith(("#", " ", "\t")) and ":" in line:
            key, _, value = line.partition(":")
            yield key.strip().lower(), value.strip()


def mirror() -> str:
    """Return the mirror that serves SUITE on this machine (the env variable wins)."""
    if os.environ.get(MIRROR_VARIABLE):
        return os.environ[MIRROR_VARIABLE]
    for uri, suites in machine_sources():
        if SUITE in suites:
            return uri
    return DEFAULT_MIRROR


def target_sources_list() -> str:
    """Return the sources.list used while building: this machine's sources for SUITE."""
    lines = []
    for uri, suites in machine_sources():
        for suite in suites:
            if suite == SUITE or suite.startswith(f"{SUITE}-"):
                lines.append(f"deb {uri} {suite} main")
    return "\n".join(lines or [f"deb {mirror()} {SUITE} main"]) + "\n"


def _digest(**parts: object) -> str:
    blob = json.dumps(parts, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def root_key(packages: Sequence[str] = ROOT_PACKAGES) -> str:
    """Return the cache name of the root made from `packages`."""
    digest = _digest(
        suite=SUITE,
        variant=VARIANT,
        packages=sorted(packages),
        sources=target_sources_list(),
        version=BUILD_VERSION,
    )
    return f"{SUITE}-{digest}"


@contextlib.contextmanager
def build_lock(name: str) -> Iterator[None]:
    """Hold an exclusive lock named `name` in the cache folder (released if we die)."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another process that builds {name}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ensure_root(packages: Sequence[str] = ROOT_PACKAGES) -> Path:
    """Return the cached root for `packages`, building it under a lock when missing."""
    key = root_key(packages)
    folder = cache_dir() / key
    if (folder / "root.done").exists():
        return folder / "root"
    with build_lock(key):
        if not (folder / "root.done").exists():
            build_root(folder, packages)
    return folder / "root"


def build_root(folder: Path, packages: Sequence[str]) -> None:
    """debootstrap a root into folder/root, upgrade and prepare it (minutes)."""
    started = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder / "root.partial"
    _remove_tree(scratch)
    log(f"building the test hosts' root in {folder} (takes minutes the first time)")
    _run_logged(
        [
            "debootstrap",
            f"--variant={VARIANT}",
            f"--include={','.join(sorted(packages))}",
            SUITE,
            str(scratch),
            mirror(),
        ],
        "debootstrap",
    )
    log(f"debootstrap done after {time.monotonic() - started:.0f} s; upgrading from updates")
    with _chroot_mounts(scratch):
        _write(scratch / "etc/apt/sources.list", target_sources_list())
        shutil.copyfile("/etc/resolv.conf", scratch / "etc/resolv.conf")
        _chroot(scratch, "apt-get", "update", "-q")
        _chroot(scratch, "apt-get", "dist-upgrade", "-y", "-q")
        _chroot(scratch, "apt-get", "clean")
    _prepare_root(scratch)
    scratch.rename(folder / "root")
    (folder / "root.done").write_text(f"{time.monotonic() - started:.1f}\n")
    log(f"root built in {time.monotonic() - started:.0f} s: {folder / 'root'}")


def _prepare_root(root: Path) -> None:
    """Make the root a template: no host keys, no identity, no apt lists, sshd configured."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    _write(root / "etc/ssh/sshd_config.d/infracms-test.conf", SSHD_CONFIG)
    _write(root / "etc/machine-id", "")
    _write(root / "etc/hostname", "localhost\n")
    _write(root / "etc/resolv.conf", "")
    _write(root / "etc/apt/sources.list", "# written per host by tests/support/hosts.py\n")
    for entry in (root / "var/lib/apt/lists").glob("*"):
        if entry.is_file():
            entry.unlink()
    _remove_tree(root / "var/lib/apt/lists/partial")
    (root / "var/lib/apt/lists/partial").mkdir()
    # units that have nothing to do in a container and only slow its boot down
    for unit in ("systemd-timesyncd.service", "apt-daily.timer", "apt-daily-upgrade.timer"):
        (root / "etc/systemd/system" / unit).unlink(missing_ok=True)
        (root / "etc/systemd/system" / unit).symlink_to("/dev/null")


def repo_key(root: Path, packages: Sequence[str]) -> str:
    """Return the cache name of the repository for `packages` on top of `root`."""
    return "repo-" + _digest(
        root=root.parent.name, packages=sorted(packages), never=REPO_NEVER, version=BUILD_VERSION
    )


def ensure_repo(root: Path, packages: Sequence[str]) -> Path:
    """Return the cached apt repository for `packages`, building it when missing."""
    key = repo_key(root, packages)
    folder = root.parent / key
    if (folder / "Packages").exists():
        return folder
    with build_lock(f"{root.parent.name}-{key}"):
        if not (folder / "Packages").exists():
            build_repo(root, folder, packages)
    return folder


def build_repo(root: Path, folder: Path, packages: Sequence[str]) -> None:
    """Download what `packages` need on top of `root` into a flat repository at `folder`."""
    started = time.monotonic()
    log(f"building the local apt repository for {', '.join(packages)}")
    with tempfile.TemporaryDirectory(prefix="infracms-repo-") as scratch:
        merged = _overlay(root, Path(scratch))
        try:
            with _chroot_mounts(merged):
                _write(merged / "etc/apt/sources.list", target_sources_list())
                _write(merged / "etc/apt/preferences.d/infracms-never", _never_pins())
                shutil.copyfile("/etc/resolv.conf", merged / "etc/resolv.conf")
                _chroot(merged, "apt-get", "update", "-q")
                _chroot(
                    merged,
                    *("apt-get", "install", "-y", "-q", "--download-only", "--reinstall"),
                    *packages,
                )
            partial = folder.with_name(folder.name + ".partial")
            _remove_tree(partial)
            partial.mkdir(parents=True)
            debs = sorted((merged / "var/cache/apt/archives").glob("*.deb"))
            for deb in debs:
                shutil.copy2(deb, partial / deb.name)
        finally:
            unmount_under(Path(scratch))
    index_repo(partial)
    _remove_tree(folder)
    partial.rename(folder)
    log(f"repository built in {time.monotonic() - started:.0f} s: {len(debs)} packages in {folder}")


def _never_pins() -> str:
    """Return apt preferences that make the REPO_NEVER packages uninstallable."""
    return "\n".join(
        f"Package: {pattern}\nPin: release *\nPin-Priority: -1\n" for pattern in REPO_NEVER
    )


def index_repo(folder: Path) -> None:
    """Write Packages, Packages.gz and a Release file for the .debs in `folder`."""
    scan = subprocess.run(
        ["dpkg-scanpackages", "--multiversion", "."],
        cwd=folder,
        capture_output=True,
        check=True,
    )
    (folder / "Packages").write_bytes(scan.stdout)
    (folder / "Packages.gz").write_bytes(gzip.compress(scan.stdout, mtime=0))
    lines = ["Origin: infracms-tests", "Label: infracms-tests", "Date: " + _rfc2822_now()]
    lines.append("SHA256:")
    for name in ("Packages", "Packages.gz"):
        data = (folder / name).read_bytes()
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}")
    (folder / "Release").write_text("\n".join(lines) + "\n")


def _rfc2822_now() -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime())


def _overlay(lower: Path, scratch: Path) -> Path:
    """Mount an overlay of `lower` with its writable layer in `scratch`; return the mount."""
    upper, work, merged = scratch / "upper", scratch / "work", scratch / "merged"
    for path in (upper, work, merged):
        path.mkdir()
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], check=True)
    return merged


@contextlib.contextmanager
def _chroot_mounts(root: Path) -> Iterator[None]:
    """Mount /proc, /sys and /dev into `root` for apt's maintainer scripts."""
    mounted: list[Path] = []
    try:
        for kind, target, source in (
            ("proc", "proc", "proc"),
            ("sysfs", "sys", "sysfs"),
            ("bind", "dev", "/dev"),
            ("bind", "dev/pts", "/dev/pts"),
        ):
            path = root / target
            path.mkdir(exist_ok=True)
            if kind == "bind":
                command = ["mount", "--bind", source, str(path)]
            else:
                command = ["mount", "-t", kind, source, str(path)]
            subprocess.run(command, check=True)
            mounted.append(path)
        yield
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], check=False)


def _chroot(root: Path, *command: str) -> None:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LC_ALL": "C",
        "HOME": "/root",
    }
    # no daemon may start inside the build root: policy-rc.d says no to invoke-rc.d
    policy = root / "usr/sbin/policy-rc.d"
    _write(policy, "#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    try:
        _run_logged(["chroot", str(root), *command], command[0] + " " + command[1], env=env)
    finally:
        policy.unlink(missing_ok=True)


def _run_logged(command: list[str], label: str, env: dict[str, str] | None = None) -> None:
    """Run `command`, printing a progress line every few seconds and the tail on failure."""
    tail: list[str] = []
    last = time.monotonic()
    count = 0
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    ) as process:
        assert process.stdout is not None
        # the output loop below ends when the process does: the timer bounds both
        timer = threading.Timer(BUILD_TIMEOUT, process.kill)
        timer.start()
        for line in process.stdout:
            count += 1
            tail = [*tail[-40:], line.rstrip()]
            if time.monotonic() - last > 5:
                last = time.monotonic()
                log(f"{label}: {line.rstrip()[:120]}")
        process.wait()
        timer.cancel()
    if process.returncode != 0:
        raise ImageBuildError(
            f"{' '.join(command)} exited {process.returncode}; last lines:\n" + "\n".join(tail)
        )


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.write_text(text)


def mounts_under(path: Path) -> list[Path]:
    """Return the mount points at or below `path`, deepest first."""
    prefix = str(path.resolve() if path.exists() else path)
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix.rstrip("/") + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda mount: len(mount.parts), reverse=True)


def unmount_under(path: Path) -> None:
    """Unmount everything at or below `path` (lazily, so a busy mount cannot hang us)."""
    for _ in range(5):  # a mount can hide another one on the same point
        points = mounts_under(path)
        if not points:
            return
        for point in points:
            subprocess.run(["umount", "-l", str(point)], check=False, capture_output=True)
    if mounts_under(path):
        raise ImageBuildError(f"could not unmount {[str(p) for p in mounts_under(path)]}")


def _remove_tree(path: Path) -> None:
    """Remove `path`, never descending into something mounted below it (/dev, /proc)."""
    if path.exists():
        unmount_under(path)
        shutil.rmtree(path)


def main() -> None:
    """Build (or find) the cached root and repository and print where they are."""
    from tests.support.hosts import REPO_PACKAGES

    started = time.monotonic()
    root = ensure_root()
    log(f"root: {root} ({time.monotonic() - started:.1f} s)")
    started = time.monotonic()
    repo = ensure_repo(root, REPO_PACKAGES)
    log(f"repository: {repo} ({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()
