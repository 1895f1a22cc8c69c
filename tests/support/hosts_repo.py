"""The test hosts' local apt repository: built once beside the root, served over HTTP.

`ensure_repo(root, packages)` answers a flat apt repository holding the .deb files
`packages` need on top of `root`, resolved by apt inside an overlay of the root (so
exactly what a host would download), indexed with dpkg-scanpackages and cached beside
the root under a hash of the list. `RepoServer` serves it to the hosts.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support import hosts_build as build

# Never put in the repository: wireguard-tools recommends kernel modules, which apt
# would satisfy with a whole kernel image (70 MB, an initramfs built on install) that
# a host sharing this machine's kernel cannot use. Real hosts have a kernel already.
REPO_NEVER = ("linux-image-*", "linux-headers-*", "wireguard-dkms")


def repo_key(root: Path, packages: Sequence[str]) -> str:
    """Return the cache name of the repository for `packages` on top of `root`."""
    return "repo-" + build.digest(
        root=root.parent.name,
        packages=sorted(packages),
        never=REPO_NEVER,
        version=build.BUILD_VERSION,
    )


def ensure_repo(root: Path, packages: Sequence[str]) -> Path:
    """Return the cached apt repository for `packages`, building it when missing."""
    key = repo_key(root, packages)
    folder = root.parent / key
    if (folder / "Packages").exists():
        return folder
    with build.build_lock(f"{root.parent.name}-{key}"):
        if not (folder / "Packages").exists():
            build_repo(root, folder, packages)
    return folder


def build_repo(root: Path, folder: Path, packages: Sequence[str]) -> None:
    """Download what `packages` need on top of `root` into a flat repository at `folder`."""
    started = time.monotonic()
    build.log(f"building the local apt repository for {', '.join(packages)}")
    with tempfile.TemporaryDirectory(prefix="infracms-repo-") as scratch:
        merged = build.mount_overlay(root, Path(scratch))
        try:
            with build.chroot_mounts(merged):
                build.write_file(merged / "etc/apt/sources.list", build.target_sources_list())
                build.write_file(merged / "etc/apt/preferences.d/infracms-never", _never_pins())
                shutil.copyfile("/etc/resolv.conf", merged / "etc/resolv.conf")
                build.chroot(merged, "apt-get", "update", "-q")
                build.chroot(
                    merged,
                    *("apt-get", "install", "-y", "-q", "--download-only", "--reinstall"),
                    *packages,
                )
            partial = folder.with_name(folder.name + ".partial")
            build.remove_tree(partial)
            partial.mkdir(parents=True)
            debs = sorted((merged / "var/cache/apt/archives").glob("*.deb"))
            for deb in debs:
                shutil.copy2(deb, partial / deb.name)
        finally:
            build.unmount_under(Path(scratch))
    index_repo(partial)
    build.remove_tree(folder)
    partial.rename(folder)
    build.log(
        f"repository built in {time.monotonic() - started:.0f} s: {len(debs)} packages in {folder}"
    )


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


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serve files without a line on stderr per request."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class RepoServer:
    """A threaded HTTP server for one repository folder, on `address` and a free port."""

    def __init__(self, folder: Path, address: str) -> None:
        self.folder = folder
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self._server = ThreadingHTTPServer((address, 0), handler)
        self._server.daemon_threads = True
        self.address = address
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="infracms-apt-repo", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The repository's base URL as the hosts see it."""
        return f"http://{self.address}:{self.port}/"

    @property
    def sources_list(self) -> str:
        """A host's /etc/apt/sources.list: this repository alone, unsigned but trusted."""
        return f"deb [trusted=yes] {self.url} ./\n"

    def apt_lists(self) -> dict[str, bytes]:
        """Return the files `apt-get update` leaves in /var/lib/apt/lists for this repository.

        Seeding them lets a host install right after start, like a machine whose apt
        cache is fresh; apt names them after the URL (scheme dropped, / turned into _).
        """
        stem = f"{self.address}:{self.port}_._"
        return {
            f"{stem}Release": (self.folder / "Release").read_bytes(),
            f"{stem}Packages": (self.folder / "Packages").read_bytes(),
        }

    def close(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
