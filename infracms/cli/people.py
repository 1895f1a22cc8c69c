"""`infracms user|org|member …`."""

from __future__ import annotations

import sys

import typer

from infracms.cli.common import (
    cli_actor,
    emit,
    node_shell_actor,
    read_session,
    settings,
    write_session,
)
from infracms.models.organisation import OrganisationPublic
from infracms.models.user import Role, UserPublic
from infracms.services import organisations, totp, user_lifecycle, user_passwords, users

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
    """Create an account; asks for the password (twice) unless --password-stdin, which
    reads it from one line of standard input: `echo "$PW" | infracms user create olga
    --password-stdin`."""
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


@user_app.command("show")
def user_show(username: str, as_json: bool = JSON) -> None:
    """Show one account."""
    with read_session() as session:
        user = user_lifecycle.get_user(session=session, actor=cli_actor(), username=username)
        shown = UserPublic.model_validate(user)
    emit(shown, as_json=as_json)


@user_app.command("edit")
def user_edit(
    username: str,
    display_name: str | None = typer.Option(None, help="full name"),
    email: str | None = typer.Option(None, help="email address ('' clears it)"),
    admin: bool | None = typer.Option(None, "--admin/--no-admin", help="node administrator"),
) -> None:
    """Change an account's display name, email, or whether it is a node administrator."""
    given = {"display_name": display_name, "email": email, "is_admin": admin}
    data = {key: value for key, value in given.items() if value is not None}
    with write_session() as session:
        user_lifecycle.update_user(session=session, actor=cli_actor(), username=username, data=data)
    typer.echo(f"updated user {username}")


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable an account: its web sessions end and its API tokens are refused, at once."""
    with write_session() as session:
        user_lifecycle.disable_user(session=session, actor=cli_actor(), username=username)
    typer.echo(f"disabled user {username}")


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Enable a disabled account."""
    with write_session() as session:
        user_lifecycle.enable_user(session=session, actor=cli_actor(), username=username)
    typer.echo(f"enabled user {username}")


@user_app.command("delete")
def user_delete(
    username: str, yes: bool = typer.Option(False, "--yes", help="do not ask first")
) -> None:
    """Delete an account with its roles, sessions and tokens; audit entries keep its name."""
    if not yes:
        typer.confirm(f"delete user {username}?", abort=True)
    with write_session() as session:
        user_lifecycle.delete_user(session=session, actor=cli_actor(), username=username)
    typer.echo(f"deleted user {username}")


@user_app.command("passwd")
def user_passwd(
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="read the current, then the new password, a line each"
    ),
) -> None:
    """Change your own password (the account named like your OS user, or --as)."""
    if password_stdin:
        current = sys.stdin.readline().rstrip("\n")
        new = sys.stdin.readline().rstrip("\n")
    else:
        current = typer.prompt("current password", hide_input=True)
        new = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    data = {"current_password": current, "new_password": new}
    with write_session() as session:
        actor = cli_actor()
        user_passwords.change_password(session=session, actor=actor, settings=settings(), data=data)
    typer.echo(f"changed the password of {actor.name}")


@user_app.command("reset-password")
def user_reset_password(
    username: str,
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="read the one-time password instead of generating one"
    ),
) -> None:
    """Set a one-time password for USERNAME (generated and printed once, unless
    --password-stdin); it must be changed at the next sign-in. Run on the node, this is
    the recovery for a lost admin password: it is audited as cli:<your OS user>."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    with write_session() as session:
        issued = user_passwords.reset_password(
            session=session,
            actor=node_shell_actor(),
            settings=settings(),
            username=username,
            data={"password": password},
        )
    typer.echo(
        f"one-time password set for {issued.username}: it must be changed at the next sign-in",
        err=True,
    )
    if issued.generated:
        typer.echo(issued.password)


@user_app.command("reset-totp")
def user_reset_totp(username: str) -> None:
    """Turn USERNAME's two-factor sign-in off (a lost device and lost recovery codes);
    their sessions end. Run on the node, this is the recovery for a locked-out admin:
    it is audited as cli:<your OS user>."""
    with write_session() as session:
        totp.reset_for(session=session, actor=node_shell_actor(), username=username)
    typer.echo(f"two-factor sign-in of {username} is off: the password alone signs in")
