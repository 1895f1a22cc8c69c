"""An auditor is handed a --trusted file that is not text (a foreign or corrupted
checkpoint file): the verifier refuses it with a usage error naming the file, not a
traceback, and verifies nothing against it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from infracms.cli import app

pytestmark = pytest.mark.security


def test_a_binary_trusted_file_is_a_usage_error(tmp_path: Path) -> None:
    export = tmp_path / "audit.jsonl"
    export.write_text("{}\n")
    saved = tmp_path / "saved.txt"
    saved.write_bytes(b"\xff\xfe\x00garbage\x80")
    result = CliRunner().invoke(
        app, ["audit", "verify", str(export), "--key", "k", "--trusted", str(saved)]
    )
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "not a saved checkpoint" in result.output
