"""`infracms backup create|verify|restore`: encrypted archives of the whole node.

The passphrase comes from a file (``--passphrase-file``) or an environment variable
(``--passphrase-env``), never from the command line, where ``ps`` would show it.
The format and the runbook are in docs/backup.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # the services are imported when a command runs
    from infracms.services import node_backup

backup_app = typer.Typer(
    help="Encrypted backups of the node: create, verify by restoring, restore.",
    no_args_is_help=True,
)

PASSPHRASE_FILE = typer.Option(
    None, "--passphrase-file", help="a file holding the passphrase (its first line)"
)
PASSPHRASE_ENV = typer.Option(
    None, "--passphrase-env", metavar="VAR", help="an environment variable holding it"
)


def _passphrase(file: Path | None, env: str | None) -> bytes:
    """The passphrase, from exactly one of --passphrase-file and --passphrase-env."""
    if (file is None) == (env is None):
        raise typer.BadParameter(
            "give the passphrase with one of --passphrase-file F or --passphrase-env VAR",
            param_hint="--passphrase-file",
        )
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise typer.BadParameter(f"{file}: {exc}", param_hint="--passphrase-file") from exc
        lines = text.splitlines()
        return (lines[0] if lines else "").encode()
    value = os.environ.get(env or "")
    if not value:
        raise typer.BadParameter(f"${env} is not set or empty", param_hint="--passphrase-env")
    return value.encode()


@backup_app.command("create")
def create(
    to: Path = typer.Option(..., "--to", file_okay=False, help="the folder to write it in"),
    passphrase_file: Path = PASSPHRASE_FILE,
    passphrase_env: str = PASSPHRASE_ENV,
    keep: int = typer.Option(
        None, "--keep", min=1, help="then keep only the newest N archives of this node there"
    ),
) -> None:
    """Write one encrypted archive: database snapshot, key files, data dir, manifest."""
    from infracms.cli.common import cli_actor, engine, require_current_schema, settings
    from infracms.services import node_backup

    secret = _passphrase(passphrase_file, passphrase_env)
    require_current_schema()
    report = node_backup.create(
        settings=settings(), engine=engine(), actor=cli_actor(), to=to, passphrase=secret, keep=keep
    )
    typer.echo(f"wrote {report.path} ({report.bytes:,} bytes, sha256 {report.sha256})")
    typer.echo(
        f"{report.files} files, {report.database} database, audit log of "
        f"{report.audit_size} entries at its latest signed checkpoint"
        + (f", cosigned up to {report.cosigned_size}" if report.cosigned_size else "")
    )
    for what in report.outside:
        typer.echo(f"not in the archive, keep it safe yourself: {what}", err=True)
    for path in report.pruned:
        typer.echo(f"removed older archive {path.name} (--keep {keep})")


@backup_app.command("verify")
def verify(
    archive: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    passphrase_file: Path = PASSPHRASE_FILE,
    passphrase_env: str = PASSPHRASE_ENV,
    scratch: Path = typer.Option(
        None, "--scratch", file_okay=False, help="where to restore it for the check (default: tmp)"
    ),
    database_url: str = typer.Option(
        None, "--database-url", help="a PostgreSQL server for a PostgreSQL archive's check"
    ),
) -> None:
    """Decrypt, check every file, restore into a scratch node, verify its audit log."""
    from infracms.cli.common import settings
    from infracms.services import node_backup

    secret = _passphrase(passphrase_file, passphrase_env)
    report = node_backup.verify(
        archive=archive,
        passphrase=secret,
        settings=settings(),
        scratch=scratch,
        database_url=database_url,
    )
    _print_verified(report)
    typer.echo(f"archive verified: {archive}")


@backup_app.command("restore")
def restore(
    archive: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    passphrase_file: Path = PASSPHRASE_FILE,
    passphrase_env: str = PASSPHRASE_ENV,
    data_dir: Path = typer.Option(
        None, "--data-dir", file_okay=False, help="where the node goes (INFRACMS_DATA_DIR)"
    ),
    force: bool = typer.Option(False, "--force", help="replace a node already there (same node)"),
) -> None:
    """Restore the node onto an empty data dir (and database); stop the node first."""
    from infracms.cli.common import node_shell_actor, settings
    from infracms.services import node_backup

    secret = _passphrase(passphrase_file, passphrase_env)
    current = settings()
    if data_dir is not None:
        current = current.model_copy(update={"data_dir": data_dir})
    report = node_backup.restore(
        archive=archive, passphrase=secret, settings=current, actor=node_shell_actor(), force=force
    )
    _print_verified(report.verified)
    if report.upgraded:
        typer.echo("the database was migrated to this infracms's schema")
    verb = "replaced the node in" if report.replaced else "restored into"
    typer.echo(f"{verb} {report.data_dir}: start it with `infracms serve`")


def _print_verified(report: node_backup.VerifyReport) -> None:
    proof = report.audit
    typer.echo(
        f"node {report.node}, backup of {report.created_at:%Y-%m-%d %H:%M:%S} UTC: "
        f"{report.files} files match the manifest"
    )
    typer.echo(f"{report.database} database at schema {report.schema_revision}")
    typer.echo(
        f"audit log verified offline: {proof.entries} entries, latest checkpoint of size "
        f"{proof.size}, root {proof.root}"
    )
    typer.echo(f"it extends the manifest's checkpoint of size {proof.manifest_size}")
    if proof.cosigned_size is not None:
        typer.echo(
            f"and the latest checkpoint peers cosigned (size {proof.cosigned_size}, by "
            f"{', '.join(proof.witnesses)})"
        )
    typer.echo(f"{report.secrets} sealed secrets open with the node's keyring")
