"""Only infracms/runs/ imports ansible_runner and celery (DESIGN.md: one typed adapter)."""

from __future__ import annotations

import ast
from pathlib import Path

import infracms

ROOT = Path(infracms.__file__).resolve().parent
CONFINED = ("ansible_runner", "celery")


def imported(path: Path) -> set[str]:
    """The top-level packages a source file imports, anywhere in it (lazy imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_ansible_runner_and_celery_are_imported_only_under_runs() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported(path) & set(CONFINED))
        for path in ROOT.rglob("*.py")
        if path.parent.name != "runs" or path.parent.parent != ROOT
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_runs_package_does_import_them() -> None:
    """The check above looks at the right files: runs/ is where they are used."""
    used = set().union(*(imported(path) for path in (ROOT / "runs").glob("*.py")))
    assert set(CONFINED) <= used
