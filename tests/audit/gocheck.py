"""Build and run tests/audit/go/auditcheck, the Go checker over golang.org/x/mod/sumdb.

Run as ``.venv/bin/python -m tests.audit.gocheck`` to rewrite the static vectors in
``tests/audit/vectors/`` from what Go makes now.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from infracms.audit.entry import entry_bytes
from tests.audit.builders import entry_fields

HERE = Path(__file__).parent
SOURCE = HERE / "go" / "auditcheck"
SUMDB = Path("/usr/share/gocode/src/golang.org/x/mod/sumdb")
VECTORS = HERE / "vectors" / "go_sumdb.json"

VECTOR_REQUEST: dict[str, Any] = {
    "op": "vectors",
    "seed": "696e667261636d732061756469742074657374206b65792c206e6f7420736563",
    "name": "infracms.test/audit",
    "origin": "infracms.test/audit",
    "text": "An infracms interop note,\nsigned by Go's note.Sign.\n",
    "checkpoint_sizes": [1, 8, 13, 21],
}


def vector_records() -> list[bytes]:
    """The records of the static vectors: 21 canonical v1 entries."""
    return [entry_bytes(entry_fields(i)) for i in range(21)]


def build(workdir: Path) -> Path:
    """Build the checker in ``workdir`` (GOPATH mode, Debian's x/mod); fail loudly without Go."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError(
            "the interop tests need Go: `apt-get install golang-go golang-golang-x-mod-dev` "
            "(the Makefile's test target installs them)"
        )
    if not (SUMDB / "note" / "note.go").is_file():
        raise RuntimeError(
            f"{SUMDB} is missing: `apt-get install golang-golang-x-mod-dev` provides "
            "golang.org/x/mod/sumdb/{note,tlog}"
        )
    shutil.copytree(SOURCE, workdir / "src" / "auditcheck")
    binary = workdir / "auditcheck"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": f"/usr/share/gocode:{workdir}",
        "GOCACHE": str(workdir / "cache"),
        "GOFLAGS": "",
    }
    result = subprocess.run(
        [go, "build", "-o", str(binary), "auditcheck"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"go build of the interop checker failed:\n{result.stderr}")
    return binary


def run(binary: Path, request: dict[str, Any]) -> Any:
    """Send one request to the checker and return its JSON answer."""
    result = subprocess.run(
        [str(binary)], input=json.dumps(request), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"auditcheck {request.get('op')} failed: {result.stderr}")
    return json.loads(result.stdout)


def make_vectors(binary: Path) -> Any:
    """What Go makes for :data:`VECTOR_REQUEST` over :func:`vector_records`."""
    records = [base64.b64encode(r).decode() for r in vector_records()]
    return run(binary, {**VECTOR_REQUEST, "records": records})


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        vectors = make_vectors(build(Path(tmp)))
    VECTORS.parent.mkdir(exist_ok=True)
    VECTORS.write_text(json.dumps(vectors, indent=1) + "\n")
    print(f"wrote {VECTORS}")
