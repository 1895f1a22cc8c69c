"""`infracms audit …` run as a user would, configured by the environment (in this process:
``tests.support.cli``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from infracms.audit.checkpoint import open_checkpoint
from infracms.audit.note import Signer, Verifier
from tests.support.cli import run_infracms


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INFRACMS_")},
        "INFRACMS_DATA_DIR": str(tmp_path / "var"),
        "INFRACMS_NODE_NAME": "coop.example",
        "INFRACMS_ARGON2_TIME_COST": "1",
        "INFRACMS_ARGON2_MEMORY_KIB": "1024",
    }

    def run(
        *args: str, env_extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_infracms(args, env={**env, **(env_extra or {})})

    assert run("init").returncode == 0
    assert run("org", "create", "clinic").returncode == 0
    return run


def test_key_checkpoint_export_and_verify(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key = cli("audit", "key").stdout.strip()
    verifier = Verifier.from_key_string(key)
    assert verifier.name == "coop.example"
    checkpoint = cli("audit", "checkpoint")
    assert checkpoint.returncode == 0, checkpoint.stderr
    assert open_checkpoint(checkpoint.stdout, verifier).size == 2  # admin, organisation
    export = tmp_path / "log.jsonl"
    written = cli("audit", "export", str(export))
    assert written.returncode == 0, written.stderr
    assert f"--key {key}" in written.stdout
    verified = cli("audit", "verify", str(export), "--key", key)
    assert verified.returncode == 0, verified.stderr
    assert "verified 2 entries and 1 checkpoints of coop.example" in verified.stdout
    assert "root " + open_checkpoint(checkpoint.stdout, verifier).root_b64 in verified.stdout
    to_stdout = cli("audit", "export", "-")
    assert to_stdout.stdout.encode() == export.read_bytes()


def test_verify_needs_no_database_and_refuses_another_key(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    export = tmp_path / "log.jsonl"
    assert cli("audit", "export", str(export)).returncode == 0
    other = Signer.generate("coop.example").verifier().key_string
    nowhere = {"INFRACMS_DATA_DIR": str(tmp_path / "absent"), "INFRACMS_DATABASE_URL": "x://"}
    refused = cli("audit", "verify", str(export), "--key", other, env_extra=nowhere)
    assert refused.returncode == 7
    assert "error: export is for key" in refused.stderr
    missing = cli("audit", "verify", str(tmp_path / "none.jsonl"), "--key", other)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert not (tmp_path / "absent").exists()
