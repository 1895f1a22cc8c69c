"""The one place that calls ansible-runner: a frozen run spec in, a result out.

ansible-runner is driven through ``RunnerConfig`` and ``Runner`` rather than ``run()``:
that way nothing goes to ``env/`` files, and the environment it gives ansible-playbook
(and writes to ``artifacts/<id>/command``) is replaced, after ``prepare()``, by an
explicit one: the run's own settings, ansible-runner's callback, and a few harmless
names of the server's (PATH, HOME, locale), never the rest of the server's environment
(``INFRACMS_SECRET_KEY`` and whatever else it holds). The inventory, which holds the
run's credentials, is served through a named pipe: it is never a file.

``cancel_callback`` is always passed (without it ansible-runner installs its own signal
handlers). The ``starting`` status payload carries the environment: it is never logged.
Events go to ``on_event`` as ansible-runner produces them.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible_runner import Runner, RunnerConfig
from ansible_runner.utils import get_callback_dir

from infracms.runs.playbook_wrapper import RUN_DIR
from infracms.runs.render import WRAPPER, RunSpec

FROM_SERVER = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
FROM_RUNNER = ("AWX_ISOLATED_DATA_DIR", "RUNNER_OMIT_EVENTS", "RUNNER_ONLY_FAILED_EVENTS")
INVENTORY = Path("inventory") / "hosts.json"


@dataclass(frozen=True)
class RunResult:
    """How ansible-playbook ended."""

    status: str  # successful, failed, canceled, timeout
    rc: int


def run_playbook(
    spec: RunSpec,
    *,
    on_event: Callable[[dict[str, Any]], None],
    should_cancel: Callable[[], bool],
) -> RunResult:
    """Run the rendered playbook; blocks until it ends."""
    ours = {
        **spec.envvars,
        "PATH": _path(),
        "INFRACMS_RUNNER_PID": str(os.getpid()),
        RUN_DIR: str(spec.private_data_dir),
    }
    config = RunnerConfig(
        private_data_dir=str(spec.private_data_dir),
        playbook=spec.playbook,
        binary=str(_wrapper(spec)),
        envvars=ours,
        settings=dict(spec.settings),
        cmdline=spec.cmdline,
        quiet=True,
        timeout=spec.timeout_seconds,
        suppress_env_files=True,
    )
    with InventoryPipe(spec.private_data_dir / INVENTORY, spec.inventory.encode()):
        config.prepare()
        config.env = minimal_env(config.env, ours)
        runner = Runner(
            config,
            event_handler=_keep_nothing(on_event),
            cancel_callback=should_cancel,
            status_handler=lambda data, runner_config: None,
        )
        runner.run()
    return RunResult(status=str(runner.status), rc=int(runner.rc or 0))


def minimal_env(prepared: dict[str, str], ours: dict[str, str]) -> dict[str, str]:
    """The environment ansible-playbook gets: ours, the runner's own callback, and a few
    harmless names of the server's; `prepared` (the server's, copied by ansible-runner)
    gives nothing else."""
    env = {name: os.environ[name] for name in FROM_SERVER if name in os.environ}
    env.setdefault("LANG", "C.UTF-8")  # ansible-core refuses a locale that is not UTF-8
    env.update({name: prepared[name] for name in FROM_RUNNER if name in prepared})
    env["ANSIBLE_CALLBACK_PLUGINS"] = get_callback_dir()
    env["ANSIBLE_STDOUT_CALLBACK"] = "awx_display"
    env.update(ours)
    return env


class InventoryPipe:
    """A named pipe that hands `data` from memory to the first reader that opens it.

    Only once: opening the pipe again while that reader still reads would hand it the
    inventory twice. ansible-playbook reads its inventory once.
    """

    def __init__(self, path: Path, data: bytes) -> None:
        self.path, self.data = path, data
        self.closed = False
        self.thread = threading.Thread(target=self._serve, name="inventory-pipe", daemon=True)

    def __enter__(self) -> InventoryPipe:
        os.mkfifo(self.path, 0o600)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True
        # a writer waiting for a reader wakes up, sees `closed` and stops; again until it
        # has, since a writer thread not yet in its open() would miss a single wake-up
        deadline = time.monotonic() + 5
        while self.thread.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                os.close(os.open(self.path, os.O_RDONLY | os.O_NONBLOCK))
            self.thread.join(timeout=0.05)
        # a reader waiting for a writer (a second one) gets an end of file, not a hang
        with contextlib.suppress(OSError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
        self.path.unlink(missing_ok=True)

    def _serve(self) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY)  # blocks until a reader opens it
        except OSError:
            return
        try:
            view = memoryview(self.data)
            while view and not self.closed:
                view = view[os.write(fd, view) :]
        except OSError:  # the reader went away
            pass
        finally:
            os.close(fd)


def _wrapper(spec: RunSpec) -> os.PathLike[str]:
    """A script that starts our parent-death wrapper with this Python."""
    path = spec.private_data_dir / "ansible-playbook"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{WRAPPER}" "$@"\n')
    path.chmod(0o700)
    return path


def _path() -> str:
    here = os.path.dirname(sys.executable)
    return here + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin")


def _keep_nothing(on_event: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], bool]:
    def handler(event: dict[str, Any]) -> bool:
        on_event(event)
        return False  # we store events ourselves; ansible-runner need not keep them

    return handler
