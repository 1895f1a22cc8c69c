"""`infracms token …`: API tokens of the account running the command (or --as)."""

from __future__ import annotations

import uuid
from datetime import datetime

import typer

from infracms.cli.common import cli_actor, emit, read_session, write_session
from infracms.models.user import ApiTokenPublic, Role, TokenScope
from infracms.services import auth

token_app = typer.Typer(help="API tokens (shown once, revocable).", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="print JSON")


@token_app.command("issue")
def token_issue(
    name: str,
    organisation: str | None = typer.Option(None, "--org", help="the organisation it acts in"),
    role: Role | None = typer.Option(None, help="its role there (no more than yours)"),
    node: bool = typer.Option(False, "--node", help="a node token: node-level actions only"),
    expires: datetime | None = typer.Option(None, help="when it stops working (UTC)"),
) -> None:
    """Issue a token NAME and print it, this once: --org ORG --role ROLE, or --node."""
    data = {
        "name": name,
        "scope": TokenScope.node if node else TokenScope.organisation,
        "organisation": organisation,
        "role": role,
        "expires_at": expires.astimezone() if expires else None,
    }
    with write_session() as session:
        issued = auth.issue_token(session=session, actor=cli_actor(), data=data)
    reach = "node-level actions" if node else f"{organisation} as {role}"
    typer.echo(f"token {issued.name} ({issued.prefix}…) for {reach}; shown once:", err=True)
    typer.echo(issued.token)


@token_app.command("list")
def token_list(as_json: bool = JSON) -> None:
    """Your tokens (a node admin's: everyone's), without their secrets."""
    with read_session() as session:
        found = auth.list_tokens(session=session, actor=cli_actor())
        shown = [ApiTokenPublic.model_validate(token) for token in found]
    if as_json:
        emit(shown, as_json=True)
        return
    for token in shown:
        reach = (
            "node" if token.scope is TokenScope.node else f"{token.organisation_id} {token.role}"
        )
        state = "revoked" if token.revoked_at else "active"
        typer.echo(f"{token.id}\t{token.prefix}…\t{token.name}\t{reach}\t{state}")


@token_app.command("revoke")
def token_revoke(token_id: uuid.UUID) -> None:
    """Revoke a token: it stops working at once."""
    with write_session() as session:
        token = auth.revoke_token(session=session, actor=cli_actor(), token_id=token_id)
    typer.echo(f"revoked token {token.name} ({token.prefix}…)")
