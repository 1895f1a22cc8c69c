#!/usr/bin/env python3
"""Start ansible-playbook so that nothing of it outlives the run that started it.

A supervisor process (in a session of its own, so that neither the pty hangup nor
ansible-runner's SIGKILL to the playbook's process group reaches it) watches the
worker that started the run (INFRACMS_RUNNER_PID) and the playbook. When the worker
dies it sends SIGTERM to ansible-playbook (which passes it on to its forks, which end
their ssh), ends what is left of the run and removes the run's directory
(INFRACMS_RUN_DIR): nobody else will. When the playbook ends, however it ends, it ends
whatever still carries the run's token in its environment (ansible's forks run in
sessions of their own) or names the run's directory in its command line: ssh masters
(``ssh: <dir>/cp/… [mux]``; ssh rewrites its environment, so the token is not found
there) and ansible's ssh-agent (``ssh-agent -D -a <dir>/tmp/…``).

Only the standard library: this file runs as a script; the package imports the helpers.
"""

import contextlib
import os
import secrets
import select
import shutil
import signal
import sys
import time

TOKEN = "INFRACMS_PLAYBOOK_TOKEN"
RUN_DIR = "INFRACMS_RUN_DIR"
GRACE_SECONDS = 10.0


def main() -> None:
    """Start the supervisor, then become ansible-playbook."""
    playbook = shutil.which(
        "ansible-playbook",
        path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    )
    if playbook is None:
        sys.exit("ansible-playbook not found next to this Python or on PATH")
    token = os.environ[TOKEN] = secrets.token_hex(16)
    runner = int(os.environ.get("INFRACMS_RUNNER_PID", "0"))
    run_dir = os.environ.get(RUN_DIR, "")
    me = os.getpid()
    if os.fork() == 0:
        _supervise(me, runner, token, run_dir)
        os._exit(0)
    os.execv(playbook, [playbook, *sys.argv[1:]])  # noqa: S606


def _supervise(playbook: int, runner: int, token: str, run_dir: str) -> None:
    """Wait for the playbook or the worker to end, then end everything of the run."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    ended = os.pidfd_open(playbook)
    watched = [ended]
    worker_gone = False
    if runner:
        try:
            watched.append(os.pidfd_open(runner))
        except ProcessLookupError:
            worker_gone = True
    ready = [] if worker_gone else select.select(watched, [], [])[0]
    worker_gone = worker_gone or ended not in ready
    if worker_gone:  # ansible-playbook ends its forks
        os.kill(playbook, signal.SIGTERM)
        select.select([ended], [], [], GRACE_SECONDS)
    places = _places(run_dir)
    end_processes(places, token)
    if worker_gone and run_dir:  # the worker cannot remove the run's secrets any more
        shutil.rmtree(run_dir, ignore_errors=True)


def _places(run_dir: str) -> tuple[str, ...]:
    """Where the run's ssh masters and agent live (never the supervisor's own command line)."""
    if not run_dir:
        return ()
    return (os.path.join(run_dir, "cp") + os.sep, os.path.join(run_dir, "tmp") + os.sep)


def end_processes(places: tuple[str, ...], token: str | None = None, wait: float = 1.0) -> int:
    """SIGTERM, then after `wait` seconds SIGKILL, every process whose command line names
    one of `places` or whose environment holds `token`; how many there were."""
    found = _matching(places, token)
    for pid in found:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while found and time.monotonic() < deadline:
        time.sleep(0.02)
        found = [pid for pid in found if _alive(pid)]
    for pid in found:
        _signal(pid, signal.SIGKILL)
    return len(found)


def _matching(places: tuple[str, ...], token: str | None) -> list[int]:
    wanted = [place.encode() for place in places]
    marker = f"{TOKEN}={token}".encode() if token else None
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
            if any(place in cmdline for place in wanted):
                found.append(int(entry))
                continue
            if marker is not None:
                with open(f"/proc/{entry}/environ", "rb") as handle:
                    if marker in handle.read().split(b"\0"):
                        found.append(int(entry))
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, sig)


if __name__ == "__main__":
    main()
