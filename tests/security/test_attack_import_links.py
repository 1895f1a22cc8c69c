"""Someone hands an operator a directory of definitions to import, with symbolic links
named ``*.yaml`` to the node's files (its secret key, /etc/passwd), a FIFO that would block
the import, a directory: none is followed or read, and no byte of a target is echoed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.services.test_definition_import_bounds import Importer, importer  # noqa: F401

pytestmark = pytest.mark.security


def test_links_out_of_the_directory_are_not_followed_nor_echoed(
    importer: Importer,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:TOPSECRET:0:0\n")
    (importer.folder / "passwd.yaml").symlink_to(secret)
    (importer.folder / "up.yaml").symlink_to("../secret.txt")
    os.mkfifo(importer.folder / "pipe.yaml")
    (importer.folder / "dir.yaml").mkdir()
    errors = importer.refused()
    assert errors == {
        "dir.yaml": "not a regular file",
        "passwd.yaml": "a link out of the directory: not followed",
        "pipe.yaml": "not a regular file",
        "up.yaml": "a link out of the directory: not followed",
    }
    assert "TOPSECRET" not in repr(errors) and str(tmp_path) not in repr(errors)
