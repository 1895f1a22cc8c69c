#!/usr/bin/env python3
"""Start ansible-playbook so that nothing of it outlives the run that started it.

A supervisor process (in a session of its own, so that neither the pty hangup nor
ansible-runner's SIGKILL to the playbook's process group reaches it) watches the
worker that started the run (INFRACMS_RUNNER_PID) and the playbook. When the worker
dies it sends SIGTERM to ansible-playbook (which passes it on to its forks, which end
their ssh); when the playbook ends, however it ends, it ends whatever still carries the
run's token in its environment (ansible's forks run in sessions of their own).
"""

import os
import secrets
import select
import shutil
import signal
import sys
import time

TOKEN = "INFRACMS_PLAYBOOK_TOKEN"
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
    me = os.getpid()
    if os.fork() == 0:
        _supervise(me, runner, token)
        os._exit(0)
    os.execv(playbook, [playbook, *sys.argv[1:]])  # noqa: S606


def _supervise(playbook: int, runner: int, token: str) -> None:
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
    if worker_gone or ended not in ready:  # the worker died: ansible-playbook ends its forks
        os.kill(playbook, signal.SIGTERM)
        select.select([ended], [], [], GRACE_SECONDS)
    _end_all(token, signal.SIGTERM)
    time.sleep(1.0)
    _end_all(token, signal.SIGKILL)


def _end_all(token: str, sig: int) -> None:
    """Signal every process carrying the run's token (its ssh masters too: their control
    sockets live in the run's own directory)."""
    marker = f"{TOKEN}={token}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if marker in handle.read().split(b"\0"):
                    os.kill(int(entry), sig)
        except OSError:
            continue


if __name__ == "__main__":
    main()
