"""`infracms group …`: an organisation's nested host groups and the hosts in them."""

from __future__ import annotations

from collections.abc import Callable

import typer

from infracms.cli.common import cli_actor, emit, read_session, write_session
from infracms.cli.inventory import parse_variables
from infracms.services import group_hosts, inventory

group_app = typer.Typer(help="Host groups (they nest).", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="print JSON")


@group_app.command("add")
def group_add(
    organisation: str,
    name: str,
    parent: str | None = typer.Option(None, help="the group it is inside"),
    description: str = typer.Option("", help="what the group is for"),
    var: list[str] = typer.Option([], help="group variable key=value (repeatable)"),
) -> None:
    """Add group NAME to ORGANISATION (inside --parent, if given)."""
    data = {
        "name": name,
        "parent": parent,
        "description": description,
        "variables": parse_variables(var),
    }
    with write_session() as session:
        group = inventory.create_group(
            session=session, actor=cli_actor(), organisation=organisation, data=data
        )
    typer.echo(f"added group {group.name}" + (f" inside {group.parent}" if group.parent else ""))


@group_app.command("list")
def group_list(organisation: str, as_json: bool = JSON) -> None:
    """List the groups of ORGANISATION with their parent and how many hosts are in each."""
    with read_session() as session:
        found = inventory.list_groups(session=session, actor=cli_actor(), organisation=organisation)
    if as_json:
        emit(found, as_json=True)
        return
    for group in found:
        inside = f"in {group.parent}" if group.parent else "-"
        typer.echo(f"{group.name}\t{inside}\t{group.host_count} hosts")


@group_app.command("show")
def group_show(organisation: str, name: str, as_json: bool = JSON) -> None:
    """Show a group, its child groups and its hosts."""
    with read_session() as session:
        actor = cli_actor()
        group = inventory.get_group(
            session=session, actor=actor, organisation=organisation, name=name
        )
        hosts = group_hosts.group_hosts(
            session=session, actor=actor, organisation=organisation, name=name
        )
    if as_json:
        emit({**group.model_dump(mode="json"), "hosts": [h.name for h in hosts]}, as_json=True)
        return
    emit(group, as_json=False)
    typer.echo(f"hosts: {', '.join(host.name for host in hosts) or '-'}")


@group_app.command("edit")
def group_edit(
    organisation: str,
    name: str,
    parent: str | None = typer.Option(None, help="move it inside this group"),
    top: bool = typer.Option(False, "--top", help="move it to the top (no parent)"),
    description: str | None = typer.Option(None, help="what the group is for"),
    var: list[str] = typer.Option([], help="replace the variables: key=value (repeatable)"),
) -> None:
    """Change a group's parent, description or variables."""
    data: dict[str, object] = {}
    if parent is not None or top:
        data["parent"] = None if top else parent
    if description is not None:
        data["description"] = description
    if var:
        data["variables"] = parse_variables(var)
    with write_session() as session:
        inventory.update_group(
            session=session, actor=cli_actor(), organisation=organisation, name=name, data=data
        )
    typer.echo(f"updated group {name}")


@group_app.command("remove")
def group_remove(organisation: str, name: str) -> None:
    """Delete a group with no child groups; its hosts stay in the inventory."""
    with write_session() as session:
        inventory.delete_group(
            session=session, actor=cli_actor(), organisation=organisation, name=name
        )
    typer.echo(f"removed group {name}")


@group_app.command("add-hosts")
def group_add_hosts(organisation: str, name: str, hosts: list[str]) -> None:
    """Put HOSTS into group NAME."""
    added = _members(group_hosts.add_hosts, organisation, name, hosts)
    typer.echo(f"added to {name}: {', '.join(added) or 'nothing (already in it)'}")


@group_app.command("remove-hosts")
def group_remove_hosts(organisation: str, name: str, hosts: list[str]) -> None:
    """Take HOSTS out of group NAME (they stay in the inventory)."""
    removed = _members(group_hosts.remove_hosts, organisation, name, hosts)
    typer.echo(f"taken out of {name}: {', '.join(removed) or 'nothing (not in it)'}")


def _members(
    change: Callable[..., list[str]], organisation: str, name: str, hosts: list[str]
) -> list[str]:
    """Add or remove (`change`) a group's HOSTS in one transaction; the names changed."""
    with write_session() as session:
        return change(
            session=session,
            actor=cli_actor(),
            organisation=organisation,
            name=name,
            data={"hosts": hosts},
        )
