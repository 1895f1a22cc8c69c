"""`live_server`: the real ``infracms serve`` in a subprocess on a free loopback port.

    with live_server(settings) as base_url:
        page.goto(f"{base_url}/login")

The child gets the settings as ``INFRACMS_*`` environment variables (those of the
calling environment are dropped, so only `settings` configure it), runs in its own
process group, and the whole group is ended when the block exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretBytes, SecretStr

from tests.support import tiers

ENV_PREFIX = "INFRACMS_"
KEPT_PREFIX = "INFRACMS_TEST_"
HOST = "127.0.0.1"
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
REPO_ROOT = Path(__file__).resolve().parents[2]


class LiveServerError(RuntimeError):
    """The server exited or did not answer /healthz in time."""


def settings_env(settings: Any) -> dict[str, str]:
    """Turn a pydantic Settings object, or a mapping of variables, into environment variables."""
    if isinstance(settings, Mapping):
        return {str(name): str(value) for name, value in settings.items()}
    prefix = settings.model_config.get("env_prefix", ENV_PREFIX)
    env = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is not None:
            env[f"{prefix}{name}".upper()] = _env_value(value)
    return env


@contextlib.contextmanager
def live_server(
    settings: Any,
    *,
    env: Mapping[str, str] | None = None,
    module: str = "infracms",
    timeout: float = READY_TIMEOUT,
    extra_args: Sequence[str] = (),
) -> Iterator[str]:
    """Serve `settings` with ``python -m <module> serve`` and yield its base URL."""
    tiers.needs("a served node", "integration")
    port = free_port()
    base_url = f"http://{HOST}:{port}"
    child_env = _child_env(settings, env or {}, port, base_url)
    command = [sys.executable, "-m", module, "serve", "--host", HOST, "--port", str(port)]
    command.extend(extra_args)
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            env=child_env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_for_health(process, base_url, timeout, log)
            yield base_url
        finally:
            _end_group(process)


def _child_env(settings: Any, extra: Mapping[str, str], port: int, base_url: str) -> dict[str, str]:
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(ENV_PREFIX) or name.startswith(KEPT_PREFIX)
    }
    configured = settings_env(settings)
    explicit_base_url = f"{ENV_PREFIX}BASE_URL" in configured and (
        isinstance(settings, Mapping) or "base_url" in settings.model_fields_set
    )
    listen = {f"{ENV_PREFIX}LISTEN_HOST": HOST, f"{ENV_PREFIX}LISTEN_PORT": str(port)}
    if not explicit_base_url:
        listen[f"{ENV_PREFIX}BASE_URL"] = base_url
    return {**inherited, **configured, **listen, **extra}


def _wait_for_health(
    process: subprocess.Popen[bytes], base_url: str, timeout: float, log: Any
) -> None:
    # No proxy: a proxy from the environment must not see loopback requests.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LiveServerError(
                f"server exited with {process.returncode} before answering:\n{_tail(log)}"
            )
        try:
            with opener.open(f"{base_url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise LiveServerError(
        f"{base_url}/healthz did not answer 200 in {timeout:.0f} s:\n{_tail(log)}"
    )


def _end_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it if the leader lingers, and kill any stragglers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _env_value(value: Any) -> str:
    if isinstance(value, SecretStr | SecretBytes):
        value = value.get_secret_value()
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return str(value.absolute())
    if isinstance(value, dict | list | tuple | set):
        return json.dumps(value, default=str)
    return str(value)


def _tail(log: Any, size: int = 4000) -> str:
    log.flush()
    log.seek(0, os.SEEK_END)
    log.seek(max(0, log.tell() - size))
    return str(log.read().decode(errors="replace"))


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])
