"""Only runs/ imports ansible_runner, only orchestration/ imports celery (DESIGN.md), and
the HTTP layers and the CLI reach both only through services (cli/setup.py starts the
worker and beat processes)."""

from __future__ import annotations

import ast
from pathlib import Path

import infracms

ROOT = Path(infracms.__file__).resolve().parent
CONFINED = {"ansible_runner": "runs", "celery": "orchestration"}
FACES = ("api", "web", "cli")
PROCESS_STARTERS = {
    "cli/setup.py": {"infracms.orchestration.worker", "infracms.orchestration.beat"}
}


def imported(path: Path, *, depth: int = 1) -> set[str]:
    """The packages a source file imports, anywhere in it (lazy imports too), cut to
    `depth` dotted parts."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(".".join(alias.name.split(".")[:depth]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(".".join(node.module.split(".")[:depth]))
    return names


def test_ansible_runner_and_celery_are_imported_only_in_their_package() -> None:
    offenders = {}
    for path in ROOT.rglob("*.py"):
        home = path.relative_to(ROOT).parts[0]
        found = {name for name, owner in CONFINED.items() if owner != home} & imported(path)
        if found:
            offenders[str(path.relative_to(ROOT))] = sorted(found)
    assert offenders == {}


def test_their_packages_do_import_them() -> None:
    """The check above looks at the right files: this is where they are used."""
    for name, owner in CONFINED.items():
        used = set().union(*(imported(path) for path in (ROOT / owner).rglob("*.py")))
        assert name in used, f"{name} is not imported under {owner}/"


def test_faces_reach_runs_and_orchestration_only_through_services() -> None:
    offenders = {}
    for face in FACES:
        for path in (ROOT / face).rglob("*.py"):
            where = str(path.relative_to(ROOT))
            names = imported(path, depth=3) - PROCESS_STARTERS.get(where, set())
            found = sorted(
                n for n in names if n.startswith(("infracms.runs", "infracms.orchestration"))
            )
            if found:
                offenders[where] = found
    assert offenders == {}, "api/web/cli import the engine or orchestration directly"


def test_the_engine_calls_no_service() -> None:
    """runs/ is below services: it never reads the database through them or orchestrates."""
    names = set().union(*(imported(p, depth=2) for p in (ROOT / "runs").rglob("*.py")))
    assert not names & {"infracms.services", "infracms.orchestration", "infracms.db"}
