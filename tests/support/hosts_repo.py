"""The local apt repository, served over HTTP to the test hosts on the bridge address."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


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
