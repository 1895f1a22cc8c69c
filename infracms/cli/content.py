"""`infracms module …` and `infracms definition …`: the CMS content from the command line."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from infracms.cli.common import cli_actor, emit, read_session, settings, write_session
from infracms.plugins import Plugins
from infracms.services import definitions, definitions_io, modules

module_app = typer.Typer(
    help="Modules: list, make available, enable, disable.", no_args_is_help=True
)
definition_app = typer.Typer(help="Definitions and their revisions.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="print JSON")


def _plugins() -> Plugins:
    return Plugins.load()


@module_app.command("list")
def module_list(
    organisation: str | None = typer.Option(
        None, "--org", help="show what this organisation enabled"
    ),
    as_json: bool = JSON,
) -> None:
    """List the modules this node knows, and any that were skipped (with why)."""
    plugins = _plugins()
    with read_session() as session:
        found = modules.list_modules(
            session=session, actor=cli_actor(), plugins=plugins, organisation=organisation
        )
    if as_json:
        typer.echo(json.dumps([asdict(m) | {"settings_schema": None} for m in found], indent=2))
    for info in [] if as_json else found:
        flags = ("available" if info.available else "unavailable") + (
            ", enabled" if info.enabled else ""
        )
        needs = ", ".join(f"{d['name']} {d['versions']}".strip() for d in info.requires)
        typer.echo(
            f"{info.name}\t{info.version}\t{flags}\t{info.title}"
            + (f"\t(needs {needs})" if needs else "")
        )
    for problem in plugins.registry.problems:
        typer.echo(f"skipped {problem.source}: {problem.reason}", err=True)


@module_app.command("available")
def module_available(
    name: str, off: bool = typer.Option(False, "--off", help="withdraw it")
) -> None:
    """Make a module available to organisations (or --off to withdraw it)."""
    with write_session() as session:
        changed = modules.set_available(
            session=session, actor=cli_actor(), plugins=_plugins(), name=name, available=not off
        )
    typer.echo(f"{name} is {'unavailable' if off else 'available'}")
    required = [other for other in changed if other != name]
    if required:
        typer.echo(f"also made available, as {name} requires them: {', '.join(required)}")


@module_app.command("enable")
def module_enable(organisation: str, name: str) -> None:
    """Enable a module (and what it requires) in ORGANISATION."""
    with write_session() as session:
        enabled = modules.enable_module(
            session=session,
            actor=cli_actor(),
            plugins=_plugins(),
            organisation=organisation,
            name=name,
        )
    typer.echo(f"enabled {', '.join(enabled) or 'nothing new'} in {organisation}")


@module_app.command("disable")
def module_disable(organisation: str, name: str) -> None:
    """Disable a module in ORGANISATION (refused while definitions use it)."""
    with write_session() as session:
        modules.disable_module(
            session=session,
            actor=cli_actor(),
            plugins=_plugins(),
            organisation=organisation,
            name=name,
        )
    typer.echo(f"disabled {name} in {organisation}")


@definition_app.command("list")
def definition_list(organisation: str, as_json: bool = JSON) -> None:
    """List the definitions of ORGANISATION."""
    with read_session() as session:
        found = definitions.list_definitions(
            session=session, actor=cli_actor(), organisation=organisation
        )
    if as_json:
        emit(found, as_json=True)
        return
    for d in found:
        typer.echo(
            f"{d.name}\t{d.module}\t{d.target.kind}:{d.target.name}\tr{d.published}/{d.latest}"
        )


@definition_app.command("show")
def definition_show(organisation: str, name: str) -> None:
    """Show a definition and its published settings."""
    with read_session() as session:
        found = definitions.get_definition(
            session=session, actor=cli_actor(), organisation=organisation, name=name
        )
    emit(found, as_json=True)


@definition_app.command("history")
def definition_history(organisation: str, name: str) -> None:
    """List a definition's revisions, newest first."""
    with read_session() as session:
        found = definitions.history(
            session=session, actor=cli_actor(), organisation=organisation, name=name
        )
    for r in found:
        mark = "*" if r.published else " "
        typer.echo(f"{mark} {r.number}\t{r.created_at:%Y-%m-%d %H:%M}\t{r.author}\t{r.message}")


@definition_app.command("diff")
def definition_diff(organisation: str, name: str, old: int, new: int) -> None:
    """Show what changed between revisions OLD and NEW."""
    with read_session() as session:
        found = definitions.diff(
            session=session,
            actor=cli_actor(),
            organisation=organisation,
            name=name,
            old=old,
            new=new,
        )
    typer.echo(found["text"] or "(no difference)", nl=False)


@definition_app.command("rollback")
def definition_rollback(
    organisation: str, name: str, revision: int, message: str = typer.Option("", help="why")
) -> None:
    """Publish REVISION's settings again, as a new revision."""
    with write_session() as session:
        found = definitions.rollback(
            session=session,
            actor=cli_actor(),
            plugins=_plugins(),
            organisation=organisation,
            name=name,
            data={"revision": revision, "message": message},
        )
    typer.echo(f"{name}: revision {found.published} published (settings of revision {revision})")


@definition_app.command("export")
def definition_export(organisation: str, directory: Path) -> None:
    """Write ORGANISATION's definitions as YAML files into DIRECTORY."""
    with read_session() as session:
        files = definitions_io.export_definitions(
            session=session, actor=cli_actor(), organisation=organisation
        )
    definitions_io.write_export(files, directory)
    typer.echo(f"wrote {len(files)} definition(s) to {directory}")


@definition_app.command("import")
def definition_import(
    organisation: str,
    directory: Path,
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would change; write nothing"),
    message: str = typer.Option("imported", help="revision message"),
) -> None:
    """Create or update definitions from the YAML files in DIRECTORY (all or nothing)."""
    files = definitions_io.read_directory(directory, max_bytes=settings().import_max_bytes)
    with write_session() as session:
        report = definitions_io.import_definitions(
            session=session,
            actor=cli_actor(),
            plugins=_plugins(),
            organisation=organisation,
            files=files,
            dry_run=dry_run,
            message=message,
        )
    verb = "would " if dry_run else ""
    for name in report.created:
        typer.echo(f"{verb}create {name}")
    for name, changes in report.updated.items():
        typer.echo(f"{verb}update {name}: " + ", ".join(c["field"] for c in changes))
    typer.echo(f"{len(report.unchanged)} unchanged")
