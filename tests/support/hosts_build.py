"""Helpers that build the test hosts' cached root and repository (see hosts_image).

Logging, the cache folder and its locks, this machine's apt sources, overlays,
chroots with /proc, /sys and /dev, and unmounting before removing anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

SUITE = "bookworm"
# Bump when the build steps change in a way the package lists do not show.
BUILD_VERSION = 4
CACHE_VARIABLE = "INFRACMS_TEST_CACHE"
MIRROR_VARIABLE = "INFRACMS_TEST_MIRROR"
DEFAULT_CACHE = Path("/var/cache/infracms-tests")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
APT_SOURCES_LIST = Path("/etc/apt/sources.list")
BUILD_TIMEOUT = 3600.0


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


def digest(**parts: object) -> str:
    blob = json.dumps(parts, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


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


def mount_overlay(lower: Path, scratch: Path) -> Path:
    """Mount an overlay of `lower` with its writable layer in `scratch`; return the mount."""
    upper, work, merged = scratch / "upper", scratch / "work", scratch / "merged"
    for path in (upper, work, merged):
        path.mkdir()
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], check=True)
    return merged


@contextlib.contextmanager
def chroot_mounts(root: Path) -> Iterator[None]:
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


def chroot(root: Path, *command: str) -> None:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LC_ALL": "C",
        "HOME": "/root",
    }
    # no daemon may start inside the build root: policy-rc.d says no to invoke-rc.d
    policy = root / "usr/sbin/policy-rc.d"
    write_file(policy, "#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    try:
        run_logged(["chroot", str(root), *command], command[0] + " " + command[1], env=env)
    finally:
        policy.unlink(missing_ok=True)


def run_logged(command: list[str], label: str, env: dict[str, str] | None = None) -> None:
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


def write_file(path: Path, text: str) -> None:
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


def remove_tree(path: Path) -> None:
    """Remove `path`, never descending into something mounted below it (/dev, /proc)."""
    if path.exists():
        unmount_under(path)
        shutil.rmtree(path)
