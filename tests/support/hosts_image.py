"""The test hosts' Debian root file system, built once with debootstrap and cached.

`ensure_root()` answers the path of a bookworm root file system made with debootstrap
(minbase plus `ROOT_PACKAGES`), upgraded from the same mirror as this machine's apt
sources, with no host keys, no apt lists and sshd configured for the tests. The local
apt repository beside it is hosts_repo's.

Both live under ``/var/cache/infracms-tests`` (``INFRACMS_TEST_CACHE`` overrides it),
named by a hash of what goes into them, so a changed package list builds a new one and
an unchanged one is reused. A lock file makes a parallel test process wait for the
build instead of doing it twice. Run ``scripts/build-test-root.sh`` (this module's
main) to build both ahead of the tests; otherwise the first test that needs hosts
does (about 2.5 minutes here, most of it debootstrap).
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support import hosts_build as build

VARIANT = "minbase"

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


def root_key(packages: Sequence[str] = ROOT_PACKAGES) -> str:
    """Return the cache name of the root made from `packages`."""
    digest = build.digest(
        suite=build.SUITE,
        variant=VARIANT,
        packages=sorted(packages),
        sources=build.target_sources_list(),
        version=build.BUILD_VERSION,
    )
    return f"{build.SUITE}-{digest}"


def ensure_root(packages: Sequence[str] = ROOT_PACKAGES) -> Path:
    """Return the cached root for `packages`, building it under a lock when missing."""
    key = root_key(packages)
    folder = build.cache_dir() / key
    if (folder / "root.done").exists():
        return folder / "root"
    with build.build_lock(key):
        if not (folder / "root.done").exists():
            build_root(folder, packages)
    return folder / "root"


def build_root(folder: Path, packages: Sequence[str]) -> None:
    """debootstrap a root into folder/root, upgrade and prepare it (minutes)."""
    started = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder / "root.partial"
    build.remove_tree(scratch)
    build.log(f"building the test hosts' root in {folder} (takes minutes the first time)")
    build.run_logged(
        [
            "debootstrap",
            f"--variant={VARIANT}",
            f"--include={','.join(sorted(packages))}",
            build.SUITE,
            str(scratch),
            build.mirror(),
        ],
        "debootstrap",
    )
    build.log(f"debootstrap done after {time.monotonic() - started:.0f} s; upgrading from updates")
    with build.chroot_mounts(scratch):
        build.write_file(scratch / "etc/apt/sources.list", build.target_sources_list())
        shutil.copyfile("/etc/resolv.conf", scratch / "etc/resolv.conf")
        build.chroot(scratch, "apt-get", "update", "-q")
        build.chroot(scratch, "apt-get", "dist-upgrade", "-y", "-q")
        build.chroot(scratch, "apt-get", "clean")
    _prepare_root(scratch)
    scratch.rename(folder / "root")
    (folder / "root.done").write_text(f"{time.monotonic() - started:.1f}\n")
    build.log(f"root built in {time.monotonic() - started:.0f} s: {folder / 'root'}")


def _prepare_root(root: Path) -> None:
    """Make the root a template: no host keys, no identity, no apt lists.

    sshd's configuration stays Debian's (the ssh_hardening module's tests see a stock
    file); each host gets its own ed25519 key, and sshd skips the missing others.
    """
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    build.write_file(root / "etc/machine-id", "")
    build.write_file(root / "etc/hostname", "localhost\n")
    build.write_file(root / "etc/resolv.conf", "")
    build.write_file(
        root / "etc/apt/sources.list", "# written per host by tests/support/hosts.py\n"
    )
    for entry in (root / "var/lib/apt/lists").glob("*"):
        if entry.is_file():
            entry.unlink()
    build.remove_tree(root / "var/lib/apt/lists/partial")
    (root / "var/lib/apt/lists/partial").mkdir()


def prune(keep: Path) -> None:
    """Remove cached roots (and their repositories) other than `keep`'s, unless mounted."""
    mounted = Path("/proc/self/mountinfo").read_text()
    for folder in sorted(build.cache_dir().glob(f"{build.SUITE}-*")):
        if folder.suffix == ".lock" or folder == keep.parent:
            continue
        if str(folder) in mounted:
            build.log(f"kept {folder}: a test host uses it")
            continue
        with build.build_lock(folder.name):
            build.remove_tree(folder)
            for lock in build.cache_dir().glob(f"{folder.name}*.lock"):
                lock.unlink()
        build.log(f"removed {folder}")


def main(arguments: Sequence[str] = ()) -> None:
    """Build (or find) the cached root and repository; with --prune drop older ones."""
    from tests.support import hosts_repo
    from tests.support.hosts import REPO_PACKAGES

    started = time.monotonic()
    root = ensure_root()
    build.log(f"root: {root} ({time.monotonic() - started:.1f} s)")
    started = time.monotonic()
    repo = hosts_repo.ensure_repo(root, REPO_PACKAGES)
    build.log(f"repository: {repo} ({time.monotonic() - started:.1f} s)")
    if "--prune" in arguments:
        prune(root)


if __name__ == "__main__":
    main(sys.argv[1:])
