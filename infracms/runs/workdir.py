"""Where runs keep their private data dirs: one well-known directory per user, in memory.

    $XDG_RUNTIME_DIR/icms-<uid>/ (else /dev/shm/icms-<uid>/, else $TMPDIR or /tmp), 0700
        <pid>.<start>-<random>/   one run, 0700: <pid> is the process running it and
                                  <start> that process's start time (so that a reused pid
                                  does not keep a dead run's directory)

A run's directory is removed when the run ends. A process that dies mid-run leaves its
directory to the supervisor (playbook_wrapper.py) and, if that died too, to ``sweep``,
which a server or worker calls when it starts: the directories of processes that are
gone are removed, after their ssh masters, ssh-agent and ansible processes are ended.
Paths stay short: ssh's control sockets must fit in 108 bytes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import stat
from pathlib import Path

from infracms.errors import ConfigurationError
from infracms.runs.playbook_wrapper import _places, end_processes

log = logging.getLogger(__name__)


def root() -> Path:
    """This user's directory of runs, made 0700 if need be; refused if anyone else can use it."""
    path = _parent() / f"icms-{os.geteuid()}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    status = path.lstat()
    if (
        not stat.S_ISDIR(status.st_mode)
        or status.st_uid != os.geteuid()
        or stat.S_IMODE(status.st_mode) & 0o077
    ):
        raise ConfigurationError(
            f"{path} must be a directory of this user with mode 0700: remove it or fix it"
        )
    return path


def _parent() -> Path:
    """A memory file system when there is one: the run's files never reach a disk."""
    # a per-user 0700 directory is made inside: the shared parent is only where it sits
    for candidate in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):  # noqa: S108
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK):
            return Path(candidate)
    return Path(os.environ.get("TMPDIR") or "/tmp")  # noqa: S108


def new_run_dir() -> Path:
    """A path for a new run's directory (not created: the renderer makes it 0700)."""
    return root() / f"{os.getpid()}.{_start_time(os.getpid())}-{secrets.token_hex(3)}"


def remove(directory: Path) -> None:
    """End the run's ssh masters and agent, then remove its directory."""
    end_processes(_places(str(directory)))
    shutil.rmtree(directory, ignore_errors=True)


def sweep() -> int:
    """Remove what runs of processes that are gone left behind; how many directories."""
    base = root()
    removed = 0
    for entry in base.iterdir():
        owner = _owner(entry.name)
        if owner is None or _running(*owner) or entry.is_symlink():
            continue
        log.warning("removing %s, left by a run whose process is gone", entry)
        end_processes((str(entry) + os.sep,))
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
    return removed


def _owner(name: str) -> tuple[int, int] | None:
    pid, _, rest = name.partition(".")
    start = rest.split("-", 1)[0]
    return (int(pid), int(start)) if pid.isdigit() and start.isdigit() else None


def _running(pid: int, start: int) -> bool:
    """Whether the process that made a directory still runs (not merely its pid, reused)."""
    return _start_time(pid) == start


def _start_time(pid: int) -> int:
    """The process's start time in clock ticks since boot; -1 if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return -1
