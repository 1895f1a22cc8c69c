"""Build tests/audit_store/go/tilecheck, a reader of our tlog-tiles made of Go's sumdb/tlog."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.audit import gocheck

SOURCE = Path(__file__).parent / "go" / "tilecheck"


def build(workdir: Path) -> Path:
    """Build the tile checker in GOPATH mode against Debian's x/mod, like ``gocheck``."""
    go = shutil.which("go")
    if go is None or not (gocheck.SUMDB / "tlog" / "tile.go").is_file():
        raise RuntimeError(
            "the interop tests need Go and golang.org/x/mod/sumdb: "
            "`apt-get install golang-go golang-golang-x-mod-dev`"
        )
    shutil.copytree(SOURCE, workdir / "src" / "tilecheck")
    binary = workdir / "tilecheck"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": f"/usr/share/gocode:{workdir}",
        "GOCACHE": str(workdir / "cache"),
        "GOFLAGS": "",
    }
    result = subprocess.run(
        [go, "build", "-o", str(binary), "tilecheck"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"go build of the tile checker failed:\n{result.stderr}")
    return binary


def run(binary: Path, request: dict[str, Any]) -> Any:
    """Send one request to the tile checker and return its JSON answer."""
    result = subprocess.run(
        [str(binary)], input=json.dumps(request), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"tilecheck failed: {result.stderr}")
    return json.loads(result.stdout)
