"""`infracms notify`: notification channels, rules and deliveries; deliver now.

Without ``--org`` a command works on the node's own channels (node events: the audit
self check and the like), which are for node administrators.
"""

from __future__ import annotations

import typer

from infracms.cli.common import cli_actor, emit, engine, read_session, settings, write_session
from infracms.models.notification import DeliveryPublic, DeliveryState, NotificationKind
from infracms.services import notification_delivery
from infracms.services import notification_settings as service

notify_app = typer.Typer(help="Notifications: channels, rules, deliveries.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="print JSON")
ORG = typer.Option(None, "--org", help="the organisation (default: the node's own channels)")
SECRET = typer.Option(
    None,
    "--hmac-secret",
    envvar="INFRACMS_NOTIFY_HMAC_SECRET",
    help="a shared secret for an HMAC-SHA256 header (better from the environment variable)",
)


@notify_app.command("channels")
def channels(org: str | None = ORG, as_json: bool = JSON) -> None:
    """List the channels (never their secrets)."""
    with read_session() as session:
        found = service.list_channels(session=session, actor=cli_actor(), organisation=org)
    emit(found, as_json=as_json)


@notify_app.command("add-webhook")
def add_webhook(
    name: str,
    url: str,
    org: str | None = ORG,
    slack: bool = typer.Option(False, "--slack", help="a Slack/Mattermost body"),
    sign: bool = typer.Option(True, "--sign/--no-sign", help="sign with the node's key"),
    hmac_secret: str | None = SECRET,
) -> None:
    """Add a webhook channel NAME that posts to URL."""
    data = {
        "name": name,
        "kind": "webhook",
        "url": url,
        "body_format": "slack" if slack else "json",
        "sign_with_node_key": sign,
        "hmac_secret": hmac_secret,
    }
    with write_session() as session:
        service.create_channel(
            session=session, actor=cli_actor(), settings=settings(), organisation=org, data=data
        )
    typer.echo(f"added webhook {name}")


@notify_app.command("add-email")
def add_email(name: str, recipients: list[str], org: str | None = ORG) -> None:
    """Add an email channel NAME that mails RECIPIENTS (over the node's SMTP server)."""
    data = {"name": name, "kind": "email", "recipients": recipients}
    with write_session() as session:
        service.create_channel(
            session=session, actor=cli_actor(), settings=settings(), organisation=org, data=data
        )
    typer.echo(f"added email channel {name}")


@notify_app.command("remove-channel")
def remove_channel(name: str, org: str | None = ORG) -> None:
    """Remove channel NAME with its rules and deliveries."""
    with write_session() as session:
        service.delete_channel(session=session, actor=cli_actor(), organisation=org, name=name)
    typer.echo(f"removed {name}")


@notify_app.command("rule")
def add_rule(channel: str, kind: NotificationKind, org: str | None = ORG) -> None:
    """Send events of KIND to CHANNEL."""
    with write_session() as session:
        service.add_rule(
            session=session,
            actor=cli_actor(),
            organisation=org,
            data={"channel": channel, "kind": kind},
        )
    typer.echo(f"{kind} goes to {channel}")


@notify_app.command("unrule")
def remove_rule(channel: str, kind: NotificationKind, org: str | None = ORG) -> None:
    """Stop sending events of KIND to CHANNEL."""
    with write_session() as session:
        service.remove_rule(
            session=session, actor=cli_actor(), organisation=org, channel=channel, kind=kind
        )
    typer.echo(f"{kind} no longer goes to {channel}")


@notify_app.command("rules")
def rules(org: str | None = ORG, as_json: bool = JSON) -> None:
    """List which kinds go to which channel."""
    with read_session() as session:
        found = service.list_rules(session=session, actor=cli_actor(), organisation=org)
    emit(found, as_json=as_json)


@notify_app.command("deliveries")
def deliveries(
    org: str | None = ORG,
    state: DeliveryState | None = typer.Option(None, "--state"),
    limit: int = typer.Option(50, "--limit", min=1, max=500),
    as_json: bool = JSON,
) -> None:
    """List deliveries, newest first: state, attempts, last error."""
    with read_session() as session:
        page = service.list_deliveries(
            session=session, actor=cli_actor(), organisation=org, state=state, limit=limit
        )
    emit([DeliveryPublic.model_validate(row) for row in page.items], as_json=as_json)


@notify_app.command("deliver")
def deliver() -> None:
    """Send what is due now (the server and `infracms beat` do it every second)."""
    attempted = notification_delivery.deliver_due(settings(), engine())
    typer.echo(f"{attempted} attempted")
