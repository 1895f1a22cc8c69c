"""The `infracms` command, run as a user would: configured by the environment.

Commands run in this process (``tests.support.cli``: the same entry point, exit codes
and output); `serve` runs as the subprocess a user starts.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.support.cli import run_infracms


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    return cli_runner(tmp_path)


def cli_runner(tmp_path: Path):  # type: ignore[no-untyped-def]
    """`infracms ARGS` on a node in `tmp_path`, configured by the environment only."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INFRACMS_")},
        "INFRACMS_DATA_DIR": str(tmp_path / "var"),
        "INFRACMS_ARGON2_TIME_COST": "1",
        "INFRACMS_ARGON2_MEMORY_KIB": "1024",
    }

    def run(
        *args: str, stdin: str | None = None, extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        if args[0] == "serve":  # it may start a server: never in the test's own process
            return subprocess.run(
                [sys.executable, "-m", "infracms", *args],
                env={**env, **(extra or {})},
                input=stdin,
                capture_output=True,
                text=True,
                timeout=60,
            )
        return run_infracms(args, env={**env, **(extra or {})}, input=stdin)

    run.env = env  # type: ignore[attr-defined]
    return run


def test_init_is_repeatable_and_prints_a_generated_password_once(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = cli("init")
    assert first.returncode == 0, first.stderr
    assert "admin account created: user 'admin', password " in first.stdout
    second = cli("init")
    assert second.returncode == 0
    assert "password" not in second.stdout and "kept" in second.stdout
    assert (tmp_path / "var" / "infracms.db").exists()


def test_init_takes_the_admin_password_from_the_environment(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("init", extra={"INFRACMS_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert result.returncode == 0
    assert ADMIN_PASSWORD not in result.stdout + result.stderr


def test_orgs_hosts_and_credentials(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("init").returncode == 0
    assert cli("org", "create", "clinic", "--title", "North clinic").returncode == 0
    added = cli("host", "add", "clinic", "web1", "10.0.0.5", "--port", "2222", "--var", "tier=1")
    assert added.returncode == 0, added.stderr
    shown = cli("host", "show", "clinic", "web1", "--json")
    host = json.loads(shown.stdout)
    assert (host["address"], host["ssh_port"], host["variables"]) == ("10.0.0.5", 2222, {"tier": 1})
    listed = cli("host", "list", "clinic")
    assert listed.stdout.startswith("web1\t10.0.0.5:2222")
    stored = cli("credential", "add", "clinic", "pw", "--kind", "password", stdin="s3cret-pass\n")
    assert stored.returncode == 0, stored.stderr
    rotated = cli("secrets", "rotate")
    assert rotated.returncode == 0 and "re-encrypted 1 secret" in rotated.stdout
    assert cli("host", "remove", "clinic", "web1").returncode == 0
    assert cli("host", "show", "clinic", "web1").returncode == 4


def test_errors_name_the_field_and_set_the_exit_code(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("init").returncode == 0
    assert cli("org", "create", "clinic").returncode == 0
    bad = cli("host", "add", "clinic", "web1", "999.1.1.1")
    assert bad.returncode == 2
    assert "address" in bad.stderr and "not a valid IP" in bad.stderr
    assert cli("host", "add", "nowhere", "web1", "10.0.0.1").returncode == 4
    assert cli("org", "create", "clinic").returncode == 5
    assert cli("host", "list", "clinic").stdout == ""
    unsorted = cli("host", "list", "clinic", "--sort", "password")
    assert unsorted.returncode == 2 and "-last_run_at" in unsorted.stderr, unsorted.stderr


def test_user_and_membership(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("init").returncode == 0
    assert cli("org", "create", "clinic").returncode == 0
    made = cli("user", "create", "olga", "--password-stdin", stdin="olga-long-password\n")
    assert made.returncode == 0, made.stderr
    short = cli("user", "create", "ivan", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "password" in short.stderr
    assert cli("member", "set", "clinic", "olga", "owner").returncode == 0
    members = cli("member", "list", "clinic", "--json")
    assert json.loads(members.stdout)[0]["role"] == "owner"


def test_serve_refuses_an_uninitialised_database(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("serve", "--port", "1")
    assert result.returncode == 78
    assert "infracms init" in result.stderr


def test_placeholder_secret_is_refused_outside_development(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("init", extra={"INFRACMS_SECRET_KEY": "changeme"})
    assert result.returncode != 0
    assert "placeholder" in result.stderr


@pytest.mark.integration  # a second process serving on a port
def test_serve_logs_what_the_app_says(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The app's own loggers reach the console, formatted like uvicorn's, not only uvicorn's."""
    assert cli("init").returncode == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "infracms", "serve", "--port", str(port)],
            env={**cli.env, "INFRACMS_LOG_LEVEL": "info"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "runs execute in" not in log.read_text() and time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "INFO:     runs execute in this process; database sqlite" in log.read_text()
