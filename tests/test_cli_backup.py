"""`infracms backup create|verify|restore` from the command line, with the real KDF cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import cli

__all__ = ["cli"]  # the fixture

pytestmark = pytest.mark.slow  # three scrypt derivations at the format's default cost


def test_backup_verify_restore_and_refusals(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("init").returncode == 0
    (tmp_path / "pass").write_text("a passphrase for the tests\n")
    made = cli("backup", "create", "--to", str(tmp_path / "backups"), "--passphrase-file",
               str(tmp_path / "pass"), "--keep", "3")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "files, sqlite database, audit log of" in made.stdout
    [archive] = (tmp_path / "backups").iterdir()

    checked = cli("backup", "verify", str(archive), "--passphrase-env", "INFRACMS_BACKUP_PASSPHRASE",
                  extra={"INFRACMS_BACKUP_PASSPHRASE": "a passphrase for the tests"})  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "audit log verified offline" in checked.stdout
    assert f"archive verified: {archive}" in checked.stdout

    wrong = cli("backup", "verify", str(archive), "--passphrase-env", "INFRACMS_BACKUP_PASSPHRASE",
                extra={"INFRACMS_BACKUP_PASSPHRASE": "not the passphrase"})  # fmt: skip
    assert wrong.returncode == 6 and "wrong passphrase" in wrong.stderr

    elsewhere = str(tmp_path / "elsewhere")
    restored = cli("backup", "restore", str(archive), "--passphrase-file", str(tmp_path / "pass"),
                   "--data-dir", elsewhere)  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    assert f"restored into {elsewhere}" in restored.stdout
    assert (tmp_path / "elsewhere" / "node_ed25519.pem").read_bytes() == (
        tmp_path / "var" / "node_ed25519.pem"
    ).read_bytes()

    occupied = cli("backup", "restore", str(archive), "--passphrase-file", str(tmp_path / "pass"))
    assert occupied.returncode == 5 and "give --force" in occupied.stderr

    neither = cli("backup", "create", "--to", str(tmp_path / "backups"))
    assert neither.returncode == 2 and "--passphrase-file" in neither.stderr
