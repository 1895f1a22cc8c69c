"""`infracms audit export|verify|key|checkpoint`.

``verify`` needs no database, no key file and no network: it reads the export and the
key given, with ``infracms.audit.verifier`` alone (which shares no code with the
writer). The others work on the node's database and keys.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import typer

audit_app = typer.Typer(help="The signed audit log.", no_args_is_help=True)


@audit_app.command("verify")
def verify(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="an export by `infracms audit export`"
    ),
    key: str = typer.Option(..., "--key", help="the trusted verifier key, name+id+key"),
    origin: str = typer.Option(None, help="the log origin expected (default: the key's name)"),
) -> None:
    """Verify an export offline against a public key; name the first bad entry if any."""
    from infracms.audit.verifier import verify_export_file

    report = verify_export_file(file, key.strip(), origin=origin)
    typer.echo(
        f"verified {report.entries} entries and {report.checkpoints} checkpoints of {report.origin}"
    )
    typer.echo(f"tree size {report.size}, root {report.root_b64}")


@audit_app.command("export")
def export(
    file: Path = typer.Argument(..., help="where to write the export ('-' for stdout)"),
) -> None:
    """Integrate new entries, sign a checkpoint if needed, and write the whole log."""
    from infracms.cli.common import cli_actor, engine, read_session, settings
    from infracms.services import audit

    current = settings()
    signed = audit.sign_checkpoint(engine=engine(), settings=current)
    with read_session() as session, _output(file) as out:
        for line in audit.export_lines(session=session, actor=cli_actor(), settings=current):
            out.write(line)
    if str(file) != "-":
        typer.echo(f"wrote {signed.size} entries and their checkpoints to {file}")
        typer.echo(f"verify with: infracms audit verify {file} --key {audit.verifier_key(current)}")


@contextlib.contextmanager
def _output(file: Path) -> Iterator[BinaryIO]:
    """The file to write (atomically: a failed export leaves nothing), or stdout for '-'."""
    if str(file) == "-":
        yield sys.stdout.buffer
        return
    partial = file.with_name(f".{file.name}.partial")
    try:
        with partial.open("wb") as out:
            yield out
        os.replace(partial, file)
    finally:
        partial.unlink(missing_ok=True)


@audit_app.command("key")
def key() -> None:
    """Print the verifier key auditors and peers check checkpoints with."""
    from infracms.cli.common import settings
    from infracms.services import audit

    typer.echo(audit.verifier_key(settings()))


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Integrate new entries and print the latest signed checkpoint."""
    from infracms.cli.common import engine, require_current_schema, settings
    from infracms.services import audit

    require_current_schema()
    typer.echo(audit.sign_checkpoint(engine=engine(), settings=settings()).note, nl=False)
