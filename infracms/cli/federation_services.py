"""`infracms offering …`, `provision …`, `service …`, `usage …`, `broker …`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import typer

from infracms.cli.common import cli_actor, emit, read_session, settings, write_session
from infracms.keys import load_keyring
from infracms.models.federation import InstanceStatus
from infracms.plugins import Plugins
from infracms.services import execution
from infracms.services.federation import (
    broker_clients,
    consumer,
    instances,
    offerings,
    provisioning,
    usage,
)
from infracms.services.federation.node import FederationContext

offering_app = typer.Typer(help="Offerings this node publishes to peers.", no_args_is_help=True)
provision_app = typer.Typer(help="Provision requests from peers.", no_args_is_help=True)
service_app = typer.Typer(help="Services requested from peers.", no_args_is_help=True)
usage_app = typer.Typer(help="Usage records, per peer.", no_args_is_help=True)
broker_app = typer.Typer(help="OSB platforms' credentials for /v2.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="print JSON")


def register(app: typer.Typer) -> None:
    """Add these command groups to the main app."""
    app.add_typer(offering_app, name="offering")
    app.add_typer(provision_app, name="provision")
    app.add_typer(service_app, name="service")
    app.add_typer(usage_app, name="usage")
    app.add_typer(broker_app, name="broker")


def _json(text: str | None, path: Path | None) -> dict[str, object]:
    raw = path.read_text() if path else (text or "{}")
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise typer.BadParameter("expected a JSON object")
    return value


@offering_app.command("publish")
def offering_publish(
    organisation: str,
    module: str,
    offering: str,
    group: str = typer.Option(..., help="the host pool instances go on"),
    plan: list[str] = typer.Option(..., help="a plan to enable (repeatable)"),
    spec: Path | None = typer.Option(None, help="JSON with the other fields (price, policy…)"),
) -> None:
    """Publish MODULE's OFFERING for ORGANISATION (more terms in --spec JSON)."""
    data = {"module": module, "offering": offering, "group": group, **_json(None, spec)}
    data.setdefault("plans", [{"name": name} for name in plan])
    with write_session() as session:
        public = offerings.publish_offering(
            session=session,
            actor=cli_actor(),
            plugins=Plugins.load(),
            organisation=organisation,
            data=data,
        )
    typer.echo(f"published {public.offering_id}: {', '.join(p['id'] for p in public.plans)}")


@offering_app.command("list")
def offering_list(organisation: str, as_json: bool = JSON) -> None:
    """ORGANISATION's published offerings."""
    with read_session() as session:
        found = offerings.list_publications(
            session=session, actor=cli_actor(), organisation=organisation
        )
    emit(list(found), as_json=as_json)


@offering_app.command("withdraw")
def offering_withdraw(organisation: str, offering_id: str) -> None:
    """Take an offering out of the catalog."""
    with write_session() as session:
        offerings.withdraw_offering(
            session=session, actor=cli_actor(), organisation=organisation, offering_id=offering_id
        )
    typer.echo(f"withdrew {offering_id}")


@provision_app.command("list")
def provision_list(
    organisation: str, status: InstanceStatus | None = typer.Option(None), as_json: bool = JSON
) -> None:
    """Provision requests and instances of ORGANISATION's offerings."""
    with read_session() as session:
        found = instances.list_requests(
            session=session, actor=cli_actor(), organisation=organisation, status=status
        )
    if as_json:
        emit(list(found), as_json=True)
        return
    for row in found:
        typer.echo(f"{row.id}  {row.status}  {row.client}  {row.plan_id}  {row.description}")


@provision_app.command("approve")
def provision_approve(organisation: str, request: uuid.UUID) -> None:
    """Approve a pending request: create the definition and apply it."""
    plugins = Plugins.load()
    with write_session() as session:
        done = provisioning.approve(
            session=session,
            actor=cli_actor(),
            plugins=plugins,
            organisation=organisation,
            instance=request,
            keyring=load_keyring(settings()),  # a secret the module generates is sealed with it
        )
    typer.echo(f"approved {request}: run {done.run_id}")
    if done.run_id is not None and not settings().broker_url:
        from infracms.cli.common import engine

        try:
            execution.execute_here(
                settings=settings(), engine=engine(), plugins=plugins, run_id=done.run_id
            )
        except Exception as exc:  # the run records its own failure
            typer.echo(f"run {done.run_id} failed: {exc}", err=True)
    elif done.run_id is not None:
        from infracms.cli.common import engine

        execution.dispatch_run(
            settings=settings(), engine=engine(), plugins=plugins, run_id=done.run_id
        )


@provision_app.command("decline")
def provision_decline(
    organisation: str, request: uuid.UUID, reason: str = typer.Option("", help="why")
) -> None:
    """Decline a pending request."""
    with write_session() as session:
        provisioning.decline(
            session=session,
            actor=cli_actor(),
            organisation=organisation,
            instance=request,
            reason=reason,
        )
    typer.echo(f"declined {request}")


def _ctx() -> FederationContext:
    return FederationContext.load(settings())


@service_app.command("request")
def service_request(
    organisation: str,
    peer: str,
    offering_id: str,
    plan_id: str,
    parameters: str = typer.Option("{}", help="the plan's parameters as JSON"),
) -> None:
    """Request PEER's OFFERING_ID (plan PLAN_ID) for ORGANISATION."""
    data = {
        "peer": peer,
        "offering_id": offering_id,
        "plan_id": plan_id,
        "parameters": _json(parameters, None),
    }
    with write_session() as session:
        found = consumer.request_service(
            session=session, actor=cli_actor(), ctx=_ctx(), organisation=organisation, data=data
        )
    typer.echo(f"{found.id}  {found.status}  {found.description or ''}")
    if found.status == "failed":
        raise SystemExit(1)


@service_app.command("list")
def service_list(organisation: str, as_json: bool = JSON) -> None:
    """Services ORGANISATION requested from peers."""
    with read_session() as session:
        found = consumer.list_services(
            session=session, actor=cli_actor(), organisation=organisation
        )
    if as_json:
        emit(list(found), as_json=True)
        return
    for row in found:
        typer.echo(f"{row.id}  {row.status}  {row.peer}  {row.plan_id}  {row.description or ''}")


@service_app.command("show")
def service_show(
    organisation: str, service: uuid.UUID, refresh: bool = typer.Option(True, help="ask the peer")
) -> None:
    """One requested service (asking the peer how it goes, unless --no-refresh)."""
    if refresh:
        with write_session() as session:
            found = consumer.refresh_service(
                session=session,
                actor=cli_actor(),
                ctx=_ctx(),
                organisation=organisation,
                service=service,
            )
    else:
        with read_session() as session:
            found = consumer.get_service(
                session=session, actor=cli_actor(), organisation=organisation, service=service
            )
    emit(found, as_json=True)


@service_app.command("credentials")
def service_credentials(organisation: str, service: uuid.UUID) -> None:
    """The connection details the provider handed over."""
    with read_session() as session:
        found = consumer.service_credentials(
            session=session,
            actor=cli_actor(),
            keyring=load_keyring(settings()),
            organisation=organisation,
            service=service,
        )
    typer.echo(json.dumps(found, indent=2))


@service_app.command("update")
def service_update(
    organisation: str,
    service: uuid.UUID,
    plan: str | None = typer.Option(None, "--plan", help="another plan of the offering"),
    parameters: str = typer.Option(
        "{}", help="parameters to change, as JSON (the others are kept)"
    ),
) -> None:
    """Ask the peer for another plan of SERVICE's offering, or other parameters."""
    data = {"plan_id": plan, "parameters": _json(parameters, None)}
    with write_session() as session:
        found = consumer.update_service(
            session=session,
            actor=cli_actor(),
            ctx=_ctx(),
            organisation=organisation,
            service=service,
            data=data,
        )
    typer.echo(f"{found.id}  {found.status}  {found.plan_id}  {found.description or ''}")


@service_app.command("deprovision")
def service_deprovision(organisation: str, service: uuid.UUID) -> None:
    """Ask the peer to remove the service."""
    with write_session() as session:
        found = consumer.deprovision_service(
            session=session,
            actor=cli_actor(),
            ctx=_ctx(),
            organisation=organisation,
            service=service,
        )
    typer.echo(f"{found.id}  {found.status}")


@usage_app.command("export")
def usage_export(
    peer: str | None = typer.Argument(None, help="only this peer"),
    fmt: str = typer.Option("csv", "--format", help="csv or json"),
) -> None:
    """Usage records (who used which plan from when to when), as CSV or JSON."""
    if fmt not in ("csv", "json"):
        raise typer.BadParameter("--format is csv or json")
    with read_session() as session:
        records = usage.usage_records(session=session, actor=cli_actor(), peer=peer)
    typer.echo(usage.export(records, fmt), nl=False)


@broker_app.command("add")
def broker_add(name: str) -> None:
    """Issue a credential for an OSB platform (the token is shown once)."""
    with write_session() as session:
        issued = broker_clients.issue(session=session, actor=cli_actor(), name=name)
    typer.echo(issued.token)


@broker_app.command("list")
def broker_list() -> None:
    """Every OSB platform credential."""
    with read_session() as session:
        for row in broker_clients.list_clients(session=session, actor=cli_actor()):
            typer.echo(f"{row.name}  {'revoked' if row.revoked_at else 'active'}")


@broker_app.command("revoke")
def broker_revoke(name: str) -> None:
    """Revoke an OSB platform credential."""
    with write_session() as session:
        broker_clients.revoke(session=session, actor=cli_actor(), name=name)
    typer.echo(f"revoked {name}")
