"""Fixtures of the browser tests: an initialised node served by the real `infracms serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infracms.config import Settings
from tests.support.server import ENV_PREFIX, REPO_ROOT, live_server, settings_env

ADMIN_PASSWORD = "correct horse battery staple"


@pytest.fixture
def node_settings(tmp_path: Path) -> Settings:
    """A node with fast password hashing and a known admin password."""
    return Settings(
        data_dir=tmp_path / "data",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        admin_password=ADMIN_PASSWORD,
    )


def init_node(settings: Settings) -> str:
    """Run `infracms init` with the same environment the server will get; what it printed."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)}
    env.update(settings_env(settings))
    done = subprocess.run(
        [sys.executable, "-m", "infracms", "init"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"infracms init failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def base_url(node_settings: Settings) -> Iterator[str]:
    """The URL of a freshly initialised node, served in a subprocess."""
    init_node(node_settings)
    with live_server(node_settings) as url:
        yield url
