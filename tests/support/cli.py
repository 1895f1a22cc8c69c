"""`infracms ARGS` run in the test's own process, answering like the subprocess would.

    done = run_infracms(["host", "list", "clinic"], env={"INFRACMS_DATA_DIR": ...})
    assert done.returncode == 0, done.stderr

A subprocess costs a Python start and the import of the whole command line (about a
second on a loaded 2-core machine); most CLI tests check what a command does, not how a
process starts, so they run ``infracms.cli.main`` here instead: the same entry point,
its exit codes and messages, with ``INFRACMS_*`` taken from `env` only (as the
subprocess tests give them) and stdin, stdout and stderr captured by click's runner.
The per-command caches (settings, engine, acting identity) are cleared around each call,
as a new process would start without them. Tests whose point is a fresh process (entry
points found on ``PYTHONPATH``, imports, signals, a served node) keep the subprocess.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from click.testing import CliRunner

ENV_PREFIX = "INFRACMS_"


def run_infracms(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    input: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``infracms ARGS`` in this process; `env`'s ``INFRACMS_*`` are its settings."""
    from infracms.cli import main

    argv = ["infracms", *args]
    runner = CliRunner()
    with _fresh_command(), _chdir(cwd), runner.isolation(input, _settings_env(env)) as out:
        saved_argv, sys.argv = sys.argv, argv
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc.code)
        except Exception:  # uncaught: Python prints the traceback and exits 1
            traceback.print_exc()
            code = 1
        finally:
            sys.argv = saved_argv
            sys.stdout.flush()  # the runner's text wrappers hold what was not flushed
            sys.stderr.flush()
        stdout, stderr = out[0].getvalue(), out[1].getvalue()
    return subprocess.CompletedProcess(argv, code, stdout.decode(), stderr.decode())


def _settings_env(env: Mapping[str, str]) -> dict[str, str | None]:
    """Click's runner sets these (None unsets): `env`'s ``INFRACMS_*``, and no other."""
    dropped: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith(ENV_PREFIX)
    }
    given = {name: value for name, value in env.items() if name.startswith(ENV_PREFIX)}
    return {**dropped, **given}


def _exit_code(code: object) -> int:
    """What a process exiting with `code` (``sys.exit``'s argument) returns."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message") prints it and exits 1
    return 1


@contextlib.contextmanager
def _fresh_command() -> Iterator[None]:
    """Clear the caches a command fills once per process, before and after it runs."""
    _clear()
    try:
        yield
    finally:
        _clear()


def _clear() -> None:
    from infracms.cli import common
    from infracms.config import get_settings

    if common.engine.cache_info().currsize:
        common.engine().dispose()
    common.engine.cache_clear()
    common.act_as(None)
    get_settings.cache_clear()


@contextlib.contextmanager
def _chdir(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    with contextlib.chdir(path):
        yield
