"""`infracms definition import` refuses hostile files with a clear error and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services.test_definition_import_bounds import alias_bomb
from tests.test_cli import cli  # noqa: F401 (the fixture)


@pytest.mark.slow
def test_import_refuses_a_link_out_a_bomb_and_a_big_file_naming_file_and_line(  # type: ignore[no-untyped-def]
    cli,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    assert cli("init").returncode == 0
    assert cli("org", "create", "clinic").returncode == 0
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "bomb.yaml").write_text(alias_bomb())
    (tmp_path / "secret").write_text("root:TOPSECRET\n")
    (folder / "out.yaml").symlink_to(tmp_path / "secret")
    out = cli("definition", "import", "clinic", str(folder))
    assert out.returncode == 2, out.stderr
    assert "out.yaml" in out.stderr and "a link out of the directory: not followed" in out.stderr
    assert "TOPSECRET" not in out.stdout + out.stderr
    (folder / "out.yaml").unlink()
    bomb = cli("definition", "import", "clinic", str(folder))
    assert bomb.returncode == 2, bomb.stderr
    assert "bomb.yaml:5" in bomb.stderr and "aliases (*name) are not allowed" in bomb.stderr
    assert "Traceback" not in bomb.stderr
    (folder / "bomb.yaml").write_text("module: motd\nsettings:\n  message: " + "x" * 3000 + "\n")
    limit = {"INFRACMS_IMPORT_MAX_BYTES": "2048"}
    big = cli("definition", "import", "clinic", str(folder), extra=limit)
    assert big.returncode == 2, big.stderr
    assert "bomb.yaml takes the import over 2048 bytes (INFRACMS_IMPORT_MAX_BYTES)" in big.stderr
