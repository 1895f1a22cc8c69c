"""`infracms org grant-secret|revoke-secret|secret-grants`: $env/$file sources per organisation."""

from __future__ import annotations

from typing import Any

import typer

from infracms.cli.common import cli_actor, emit, read_session, settings, write_session
from infracms.errors import InvalidInput
from infracms.models.organisation import SecretGrantPublic, SecretSourceKind
from infracms.services import secret_sources

JSON = typer.Option(False, "--json", help="print JSON")
ENV = typer.Option(None, "--env", help="an INFRACMS_VAR_* variable of the workers")
FILE = typer.Option(
    None, "--file", help="a file under the node's secrets/ (a directory ending in / for all in it)"
)


def register(org_app: typer.Typer) -> None:
    """Add the grant commands to `infracms org`."""
    org_app.command("grant-secret")(grant_secret)
    org_app.command("revoke-secret")(revoke_secret)
    org_app.command("secret-grants")(secret_grants)


def grant_secret(organisation: str, env: str | None = ENV, file: str | None = FILE) -> None:
    """Let ORGANISATION's definitions refer to a variable ($env) or file ($file)."""
    with write_session() as session:
        row = secret_sources.grant_source(
            session=session,
            actor=cli_actor(),
            settings=settings(),
            organisation=organisation,
            data=_one(env, file),
        )
    typer.echo(f"granted {row.kind} {row.name} to {organisation}")


def revoke_secret(organisation: str, env: str | None = ENV, file: str | None = FILE) -> None:
    """Take a grant back: runs that refer to it are refused from now on."""
    data = _one(env, file)
    with write_session() as session:
        secret_sources.revoke_source(
            session=session,
            actor=cli_actor(),
            settings=settings(),
            organisation=organisation,
            data=data,
        )
    typer.echo(f"revoked {data['kind']} {data['name']} from {organisation}")


def secret_grants(organisation: str, as_json: bool = JSON) -> None:
    """List what ORGANISATION's definitions may refer to."""
    with read_session() as session:
        found = secret_sources.list_sources(
            session=session, actor=cli_actor(), organisation=organisation
        )
    emit([SecretGrantPublic.model_validate(row) for row in found], as_json=as_json)


def _one(env: str | None, file: str | None) -> dict[str, Any]:
    if (env is None) == (file is None):
        raise InvalidInput("give one of --env or --file", errors={"--env/--file": "give one"})
    if env is not None:
        return {"kind": SecretSourceKind.env, "name": env}
    return {"kind": SecretSourceKind.file, "name": file}
