"""`infracms schedule …`: scheduled drift checks of an organisation, and its hosts' drift."""

from __future__ import annotations

import typer

from infracms.cli.common import cli_actor, emit, read_session, write_session
from infracms.models.schedule import SchedulePublic
from infracms.services import drift, schedules

schedule_app = typer.Typer(help="Scheduled drift checks, and hosts' drift.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="print JSON")


@schedule_app.command("add")
def schedule_add(
    organisation: str,
    name: str,
    cron: str = typer.Option(..., help="five fields: minute hour day month weekday"),
    time_zone: str = typer.Option("UTC", "--tz", help="an IANA time zone, e.g. Europe/Paris"),
    reconcile: bool = typer.Option(False, help="apply what the check finds drifted"),
    group: str | None = typer.Option(None, help="only the hosts of this group"),
    definition: list[str] = typer.Option([], help="only this definition (repeatable)"),
    disabled: bool = typer.Option(False, help="add it switched off"),
) -> None:
    """Add schedule NAME to ORGANISATION: a plan of its hosts at each time CRON names."""
    data = {
        "name": name,
        "cron": cron,
        "time_zone": time_zone,
        "mode": "reconcile" if reconcile else "plan",
        "group": group,
        "definitions": definition or None,
        "enabled": not disabled,
    }
    with write_session() as session:
        found = schedules.create_schedule(
            session=session, actor=cli_actor(), organisation=organisation, data=data
        )
        due = found.next_due_at
    typer.echo(f"added schedule {name}; next due {due:%Y-%m-%d %H:%M} UTC" if due else name)


@schedule_app.command("list")
def schedule_list(organisation: str, as_json: bool = JSON) -> None:
    """List the schedules of ORGANISATION with when each is next due."""
    with read_session() as session:
        found = schedules.list_schedules(
            session=session, actor=cli_actor(), organisation=organisation
        )
        rows = [SchedulePublic.model_validate(s) for s in found]
    if as_json:
        emit(rows, as_json=True)
        return
    for row in rows:
        due = f"{row.next_due_at:%Y-%m-%d %H:%M}Z" if row.next_due_at and row.enabled else "off"
        typer.echo(f"{row.name}\t{row.cron}\t{row.time_zone}\t{row.mode}\tnext {due}")


@schedule_app.command("remove")
def schedule_remove(organisation: str, name: str) -> None:
    """Remove schedule NAME (its runs stay)."""
    with write_session() as session:
        schedules.remove_schedule(
            session=session, actor=cli_actor(), organisation=organisation, name=name
        )
    typer.echo(f"removed schedule {name}")


@schedule_app.command("drift")
def schedule_drift(organisation: str, as_json: bool = JSON) -> None:
    """Show where each host of ORGANISATION stands (in sync, drifted, …) and when checked."""
    with read_session() as session:
        found = drift.organisation_drift(
            session=session, actor=cli_actor(), organisation=organisation
        )
    if as_json:
        emit(found, as_json=True)
        return
    for host in found:
        checked = f"{host.checked_at:%Y-%m-%d %H:%M}Z" if host.checked_at else "never checked"
        typer.echo(f"{host.host}\t{host.state}\t{checked}\t{', '.join(host.definitions)}")
