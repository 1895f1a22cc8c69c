"""Commands loaded when they run: `infracms --help` and `infracms audit verify` import
only what they use, not every command module (and the services, models and database
code behind them).

`COMMANDS` names each top-level command, the module that defines it and its one-line
help (shown by ``infracms --help`` without importing the module); a test checks that the
line matches the command's own help and that every command is here.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import typer
from typer import _click as click  # typer 0.29 carries its own click: its classes, not click's
from typer.core import TyperCommand, TyperGroup


class Source(NamedTuple):
    """Where a command is: a module, and its Typer app's name there (or `register`)."""

    module: str
    attribute: str  # a typer.Typer in the module, or "register": register(app) adds it
    help: str


SETUP, FEDERATION, SERVICES = (
    "infracms.cli.setup",
    "infracms.cli.federation",
    "infracms.cli.federation_services",
)
COMMANDS: dict[str, Source] = {
    "init": Source(
        SETUP,
        "register",
        "Create the data directory, key files, database and first admin; reuse what exists.",
    ),
    "serve": Source(SETUP, "register", "Serve the web UI and API."),
    "worker": Source(
        SETUP,
        "register",
        "Run a Celery worker for queued runs (needs INFRACMS_BROKER_URL); SIGTERM lets runs end.",
    ),
    "beat": Source(
        SETUP,
        "register",
        "Run the periodic jobs: fail runs of lost workers, resend lost runs (needs a broker).",
    ),
    "db": Source(SETUP, "register", "The database."),
    "secrets": Source(SETUP, "register", "Secrets at rest."),
    "user": Source("infracms.cli.people", "user_app", "Accounts."),
    "org": Source("infracms.cli.people", "org_app", "Organisations."),
    "member": Source("infracms.cli.people", "member_app", "Roles of people in organisations."),
    "token": Source("infracms.cli.tokens", "token_app", "API tokens (shown once, revocable)."),
    "host": Source("infracms.cli.inventory", "host_app", "Hosts."),
    "group": Source("infracms.cli.groups", "group_app", "Host groups (they nest)."),
    "credential": Source(
        "infracms.cli.inventory", "credential_app", "Credentials (SSH keys, passwords)."
    ),
    "module": Source(
        "infracms.cli.content", "module_app", "Modules: list, make available, enable, disable."
    ),
    "definition": Source(
        "infracms.cli.content", "definition_app", "Definitions and their revisions."
    ),
    "run": Source("infracms.cli.runs", "run_app", "Plan and apply definitions on hosts."),
    "schedule": Source(
        "infracms.cli.schedules", "schedule_app", "Scheduled drift checks, and hosts' drift."
    ),
    "audit": Source("infracms.cli.audit", "audit_app", "The signed audit log."),
    "backup": Source(
        "infracms.cli.backup",
        "backup_app",
        "Encrypted backups of the node: create, verify by restoring, restore.",
    ),
    "peer": Source(FEDERATION, "register", "Peer nodes: invitations, keys, suspension."),
    "catalog": Source(FEDERATION, "register", "Peers' catalogs: sync and search."),
    "offering": Source(SERVICES, "register", "Offerings this node publishes to peers."),
    "provision": Source(SERVICES, "register", "Provision requests from peers."),
    "service": Source(SERVICES, "register", "Services requested from peers."),
    "usage": Source(SERVICES, "register", "Usage records, per peer."),
    "broker": Source(SERVICES, "register", "OSB platforms' credentials for /v2."),
    "notify": Source(
        "infracms.cli.notify", "notify_app", "Notifications: channels, rules, deliveries."
    ),
}


class LazyGroup(TyperGroup):
    """The top-level group: lists every command from `COMMANDS`, imports one when it runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        return _Listed(cmd_name, COMMANDS[cmd_name].help)  # for help: no import

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in COMMANDS and args[0] not in self.commands:
            self.add_command(load(args[0]), args[0])
        return super().resolve_command(ctx, args)


class _Listed(TyperCommand):
    """A command as `infracms --help` lists it, before its module is imported."""

    def __init__(self, name: str, help: str) -> None:
        super().__init__(name, help=help, short_help=help)


def load(name: str) -> click.Command:
    """The command `name`, its module imported now."""
    source = COMMANDS[name]
    module = importlib.import_module(source.module)
    if source.attribute != "register":
        app: Any = getattr(module, source.attribute)
        if name == "org":
            _with_secret_grants(app)
        return typer.main.get_command(app)
    holder = typer.Typer()
    module.register(holder)
    group = typer.main.get_group(holder)
    command = group.get_command(click.Context(group), name)
    if command is None:
        raise LookupError(f"{source.module}.register adds no command {name!r}")
    return command


def _with_secret_grants(org_app: typer.Typer) -> None:
    from infracms.cli import secret_grants

    if not any(c.name == "grant-secret" for c in org_app.registered_commands):
        secret_grants.register(org_app)
