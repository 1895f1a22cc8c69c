"""`make deps` on a clean copy of the tree, with the machine's own Python: what CI does first.

A venv of Python 3.11 starts with setuptools 65, and infracms is installed with
``--no-build-isolation`` from what the lock put in the venv: a build requirement missing
from requirements.lock broke CI's clean clone once, while every developer's older venv
still worked. This test installs into a new venv (pip's cache makes it quick) and runs
the installed command.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tiers import needs

REPO_ROOT = Path(__file__).resolve().parents[1]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [name for name in listed.stdout.splitlines() if (REPO_ROOT / name).is_file()]


@pytest.mark.slow
def test_make_deps_installs_from_the_lock_into_a_new_venv(tmp_path: Path) -> None:
    needs("a new venv and pip", "slow")
    tree = tmp_path / "tree"
    for name in _tracked_files():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, tree / name)
    python = shutil.which("python3") or sys.executable
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    made = subprocess.run(
        ["make", "deps", f"PYTHON={python}"],
        cwd=tree,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]

    helped = subprocess.run(
        [str(tree / ".venv" / "bin" / "infracms"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert helped.returncode == 0, helped.stderr
    assert "Usage" in helped.stdout
    installed = subprocess.run(
        [str(tree / ".venv" / "bin" / "pip"), "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    locked = {
        _canonical(line.split("==")[0])
        for line in (REPO_ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    }
    frozen = {_canonical(line.split("==")[0]) for line in installed.splitlines() if "==" in line}
    assert frozen - {"pip"} <= locked | {"setuptools", "wheel"}, frozen - locked
