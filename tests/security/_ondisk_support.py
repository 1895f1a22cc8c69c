"""What the on-disk secret tests share: where runs live, a poller that reads every file
there while a run runs, and the processes a run leaves."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from infracms.runs import workdir
from tests.integration.node import find_secrets
from tests.support.hosts import TestHost

MARKER_NAME = "ICMS_ONDISK_MARKER"


def run_dirs_of(pid: int) -> list[Path]:
    """The run directories the process `pid` made."""
    return sorted(workdir.root().glob(f"{pid}.*"))


def files_holding(roots: Sequence[Path], secrets: dict[str, str]) -> dict[str, list[str]]:
    """{file: secret names} for every regular file under `roots` holding one (a named
    pipe holds nothing at rest: it is not opened)."""
    found: dict[str, list[str]] = {}
    for root in roots:
        for top, _, names in os.walk(root):
            for name in names:
                path = Path(top) / name
                try:
                    if not path.is_file() or path.is_symlink():
                        continue
                    held = find_secrets(path.read_bytes(), secrets)
                except OSError:
                    continue
                if held:
                    found[str(path)] = held
    return found


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose command line or environment holds `text`."""
    found = []
    needle = text.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read()
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        if needle in command or needle in environ:
            found.append((int(entry), command.replace(b"\0", b" ").decode(errors="replace")))
    return found


@dataclass
class Poller:
    """Reads every file under `roots` again and again until stopped; what it found."""

    roots: Sequence[Path]
    secrets: dict[str, str]
    found: dict[str, list[str]] = field(default_factory=dict)
    commands: list[Path] = field(default_factory=list)  # artifacts/<id>/command files seen
    rounds: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def loop(self) -> None:
        while not self.stop.is_set():
            self.found.update(files_holding(self.roots, self.secrets))
            for root in self.roots:
                self.commands.extend(p for p in root.glob("*/artifacts/*/command"))
            self.rounds += 1
            time.sleep(0.02)


@contextmanager
def polling(roots: Sequence[Path], secrets: dict[str, str]) -> Iterator[Poller]:
    """Poll `roots` for `secrets` in a thread while the block runs."""
    poller = Poller(roots, secrets)
    thread = threading.Thread(target=poller.loop, daemon=True)
    thread.start()
    try:
        yield poller
    finally:
        poller.stop.set()
        thread.join(timeout=30)


def block_ssh(host: TestHost) -> None:
    """Stop `host`'s sshd (in the host's own PID namespace): a run's ssh waits for it."""
    host.run("pkill -STOP -x sshd", check=True)


def unblock_ssh(host: TestHost) -> None:
    host.run("pkill -CONT -x sshd")


def wait_for(what: str, probe: object, timeout: float = 60.0) -> object:
    """Poll `probe()` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")
