"""The one place that calls ansible-runner: a frozen run spec in, a result out.

``cancel_callback`` is always passed (without it ansible-runner installs its own signal
handlers). The ``starting`` status payload carries the environment: it is never logged.
Events go to ``on_event`` as ansible-runner produces them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ansible_runner

from infracms.runs.render import WRAPPER, RunSpec


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
    binary = _wrapper(spec)
    runner = ansible_runner.run(
        private_data_dir=str(spec.private_data_dir),
        playbook=spec.playbook,
        binary=str(binary),
        ssh_key=spec.ssh_key,
        event_handler=_keep_nothing(on_event),
        cancel_callback=should_cancel,
        status_handler=lambda data, runner_config: None,
        quiet=True,
        timeout=spec.timeout_seconds,
        envvars={"PATH": _path(), "INFRACMS_RUNNER_PID": str(os.getpid())},
    )
    return RunResult(status=str(runner.status), rc=int(runner.rc or 0))


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
