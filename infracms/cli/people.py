"""`infracms user|org|member …`."""

from __future__ import annotations

import sys

import typer

from infracms.cli.common import cli_actor, emit, read_session, settings, write_session
from infracms.models.organisation import OrganisationPublic
from infracms.models.user import Role, UserPublic
from infracms.services import organisations, users

user_app = typer.Typer(help="Accounts.", no_args_is_help=True)
org_app = typer.Typer(help="Organisations.", no_args_is_help=True)
member_app = typer.Typer(help="Roles of people in organisations.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="print JSON")


@user_app.command("create")
def user_create(
    username: str,
    admin: bool = typer.Option(False, "--admin", help="make a node administrator"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password"),
    display_name: str = typer.Option("", help="full name"),
) -> None:
    """Create an account; asks for the password unless --password-stdin."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with write_session() as session:
        user = users.create_user(
            session=session,
            actor=cli_actor(),
            settings=settings(),
            data={
                "username": username,
                "password": password,
                "is_admin": admin,
                "display_name": display_name,
            },
        )
    typer.echo(f"created user {user.username}" + (" (admin)" if user.is_admin else ""))


@user_app.command("list")
def user_list(as_json: bool = JSON) -> None:
    """List accounts."""
    with read_session() as session:
        found = users.list_users(session=session, actor=cli_actor())
    emit([UserPublic.model_validate(u) for u in found], as_json=as_json)


@org_app.command("create")
def org_create(name: str, title: str = typer.Option("", help="full name")) -> None:
    """Create an organisation."""
    with write_session() as session:
        org = organisations.create_organisation(
            session=session, actor=cli_actor(), data={"name": name, "title": title}
        )
    typer.echo(f"created organisation {org.name}")


@org_app.command("list")
def org_list(as_json: bool = JSON) -> None:
    """List organisations."""
    with read_session() as session:
        found = organisations.list_organisations(session=session, actor=cli_actor())
    emit([OrganisationPublic.model_validate(o) for o in found], as_json=as_json)


@member_app.command("set")
def member_set(organisation: str, username: str, role: Role) -> None:
    """Give USERNAME the ROLE in ORGANISATION."""
    with write_session() as session:
        users.set_membership(
            session=session,
            actor=cli_actor(),
            organisation=organisation,
            data={"username": username, "role": role},
        )
    typer.echo(f"{username} is {role} in {organisation}")


@member_app.command("list")
def member_list(organisation: str, as_json: bool = JSON) -> None:
    """List the people of ORGANISATION."""
    with read_session() as session:
        found = users.list_members(session=session, actor=cli_actor(), organisation=organisation)
    emit(found, as_json=as_json)
