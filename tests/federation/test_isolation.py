"""federation/ imports nothing from infracms (DESIGN.md: the protocol as a library)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import federation

ROOT = Path(federation.__file__).resolve().parent


def test_importing_every_federation_module_loads_no_infracms_module() -> None:
    modules = sorted(info.name for info in pkgutil.walk_packages([str(ROOT)], prefix="federation."))
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'infracms' or m.startswith('infracms.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]", f"federation imported infracms modules: {result.stdout}"
    assert "federation.client" in modules and "federation.models.catalog" in modules


def test_no_federation_source_mentions_infracms_imports() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*.py")
        if any(
            line.lstrip().startswith(("import infracms", "from infracms"))
            for line in path.read_text().splitlines()
        )
    ]
    assert offenders == [], f"these federation files import infracms: {offenders}"
