#!/usr/bin/env python3
"""Start ansible-playbook so that it dies with the worker that started it.

ansible-runner starts the playbook in a session of its own (through pexpect); if the
worker process is killed, nothing would stop the playbook. This wrapper asks the
kernel to send SIGTERM to the playbook when its parent dies (PR_SET_PDEATHSIG), then
becomes ansible-playbook.
"""

import ctypes
import os
import shutil
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    """Arm the parent-death signal and exec ansible-playbook with our arguments."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:  # the parent is already gone
        sys.exit(143)
    playbook = shutil.which(
        "ansible-playbook",
        path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    )
    if playbook is None:
        sys.exit("ansible-playbook not found next to this Python or on PATH")
    os.execv(playbook, [playbook, *sys.argv[1:]])  # noqa: S606 - becoming the playbook is the point


if __name__ == "__main__":
    main()
