"""`infracms peer …`, `catalog …`, `offering …`, `provision …`, `service …`, `usage …`,
`broker …`: federation at the command line, as the node's administrator."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from infracms.cli.common import cli_actor, emit, read_session, settings, write_session
from infracms.models.federation import PeerStatus
from infracms.services.federation import peering, rotation, sync
from infracms.services.federation.directory import CatalogFilter, search_catalog
from infracms.services.federation.node import FederationContext
from infracms.services.federation.sync import CatalogStatus

peer_app = typer.Typer(help="Peer nodes: invitations, keys, suspension.", no_args_is_help=True)
catalog_app = typer.Typer(help="Peers' catalogs: sync and search.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="print JSON")


def context() -> FederationContext:
    """This node's federation context from its key files."""
    return FederationContext.load(settings())


def register(app: typer.Typer) -> None:
    """Add the federation command groups to the main app."""
    from infracms.cli import federation_services as services

    app.add_typer(peer_app, name="peer")
    app.add_typer(catalog_app, name="catalog")
    services.register(app)


@peer_app.command("invite")
def peer_invite(hours: int = typer.Option(72, help="hours the token stays valid")) -> None:
    """Make a one-time invitation token for another node's admin (shown once)."""
    with write_session() as session:
        issued = peering.create_invitation(
            session=session, actor=cli_actor(), ctx=context(), valid_hours=hours
        )
    typer.echo(issued.token)
    typer.echo(f"(invitation {issued.id}, valid until {issued.expires_at.isoformat()})", err=True)


@peer_app.command("invitations")
def peer_invitations(as_json: bool = JSON) -> None:
    """The invitations this node made: open, used (by which peer) or ended."""
    with read_session() as session:
        found = peering.list_invitations(session=session, actor=cli_actor())
    if as_json:
        emit(found, as_json=True)
        return
    if not found:
        typer.echo("no invitations made yet (`infracms peer invite`)", err=True)
    for inv in found:
        where = {"open": f"open until {_time(inv.expires_at)}", "used": f"used by {inv.used_by}"}
        typer.echo(f"{inv.id}  {inv.created_by}  {where.get(inv.state, 'ended')}")


@peer_app.command("revoke-invitation")
def peer_revoke_invitation(invitation_id: str) -> None:
    """End an open invitation: its token is refused from then on."""
    with write_session() as session:
        peering.revoke_invitation(session=session, actor=cli_actor(), invitation_id=invitation_id)
    typer.echo(f"invitation {invitation_id} revoked")


@peer_app.command("accept")
def peer_accept(token: str) -> None:
    """Accept another node's invitation: pin its key, and have it pin ours."""
    with write_session() as session:
        peer = peering.accept_invitation(
            session=session, actor=cli_actor(), ctx=context(), token=token
        )
    typer.echo(f"peered with {peer.name} at {peer.base_url} (key {peer.keys[0].key_id})")


@peer_app.command("list")
def peer_list(as_json: bool = JSON) -> None:
    """Every peer with its status, and how its catalog sync stands."""
    with read_session() as session:
        peers = peering.list_peers(session=session, actor=cli_actor())
        catalogs = {s.peer: s for s in sync.catalog_status(session=session, actor=cli_actor())}
    if as_json:
        listed = [
            {**peer.model_dump(mode="json"), "catalog": catalogs[peer.name].model_dump(mode="json")}
            for peer in peers
        ]
        emit(listed, as_json=True)
        return
    for peer in peers:
        catalog = _catalog_summary(catalogs[peer.name])
        typer.echo(f"{peer.name}  {peer.status}  {peer.base_url}  keys={len(peer.keys)}  {catalog}")


@peer_app.command("show")
def peer_show(name: str) -> None:
    """One peer with its pinned keys."""
    with read_session() as session:
        emit(peering.get_peer(session=session, actor=cli_actor(), name=name), as_json=True)


def _set_status(name: str, status: PeerStatus) -> None:
    with write_session() as session:
        peer = peering.set_status(session=session, actor=cli_actor(), name=name, status=status)
    typer.echo(f"{peer.name}: {peer.status}")


@peer_app.command("suspend")
def peer_suspend(name: str) -> None:
    """Stop accepting a peer's requests and fetching its catalog (until resumed)."""
    _set_status(name, PeerStatus.suspended)


@peer_app.command("resume")
def peer_resume(name: str) -> None:
    """Accept a suspended peer again."""
    _set_status(name, PeerStatus.active)


@peer_app.command("revoke")
def peer_revoke(name: str) -> None:
    """Remove a peer's keys for good."""
    _set_status(name, PeerStatus.revoked)


@peer_app.command("rotate-key")
def peer_rotate_key(
    overlap_days: int = typer.Option(7, help="days the old key stays valid"),
    resend: bool = typer.Option(False, help="only send the last rotation again"),
) -> None:
    """Replace this node's key and tell every active peer (or resend the last statement)."""
    with write_session() as session:
        if resend:
            report = rotation.send_key_rotation(session=session, actor=cli_actor(), ctx=context())
        else:
            report = rotation.rotate_own_key(
                session=session, actor=cli_actor(), ctx=context(), overlap_days=overlap_days
            )
    typer.echo(f"key {report.old_key_id} -> {report.new_key_id}")
    typer.echo(f"told: {', '.join(report.delivered) or 'nobody'}")
    for name, error in sorted(report.failed.items()):
        typer.echo(f"not told {name}: {error} (retry with --resend)", err=True)
    if report.failed:
        raise SystemExit(1)


@catalog_app.command("sync")
def catalog_sync(peer: str | None = typer.Argument(None, help="only this peer")) -> None:
    """Fetch every active peer's catalog (only changed ones are downloaded)."""
    with write_session() as session:
        results = sync.sync_catalogs(session=session, actor=cli_actor(), ctx=context(), peer=peer)
    failed = False
    for result in results:
        if result.error:
            failed = True
            typer.echo(f"{result.peer}: kept version {result.version}: {result.error}", err=True)
        else:
            state = "new version" if result.changed else "unchanged"
            typer.echo(f"{result.peer}: {state} {result.version}")
    if failed:
        raise SystemExit(1)


@catalog_app.command("status")
def catalog_status(
    peer: str | None = typer.Argument(None, help="only this peer"),
    check: bool = typer.Option(False, "--check", help="exit 1 if an active peer's copy is stale"),
    as_json: bool = JSON,
) -> None:
    """Each peer's catalog: the copy held, the last sync that succeeded, the last attempt."""
    with read_session() as session:
        found = sync.catalog_status(session=session, actor=cli_actor(), peer=peer)
    if as_json:
        emit(list(found), as_json=True)
    else:
        for status in found:
            _print_status(status)
    if check and any(status.stale for status in found):
        raise SystemExit(1)


def _print_status(status: CatalogStatus) -> None:
    """One peer's catalog sync, a line for each part."""
    held = "none"
    if status.version is not None:
        held = (
            f"version {status.version}, {_offerings(status.offerings)}, "
            f"fetched {_time(status.fetched_at)}"
        )
    attempt = "never"
    if status.outcome is not None:
        attempt = f"{_time(status.checked_at)}, {status.outcome.value}"
        if status.failure is not None:
            attempt += f": {status.failure.label} ({status.error})"
    stale = f"yes, {status.stale_reason}" if status.stale else "no"
    typer.echo(f"{status.peer} ({status.peer_status.value})")
    typer.echo(f"  held:          {held}")
    typer.echo(f"  last success:  {_time(status.synced_at) if status.synced_at else 'never'}")
    typer.echo(f"  last attempt:  {attempt}")
    typer.echo(f"  stale:         {stale}")


def _catalog_summary(status: CatalogStatus) -> str:
    """A peer's catalog sync on part of one line."""
    if status.outcome is None:
        return "catalog: never synced"
    held = (
        "no copy"
        if status.version is None
        else f"v{status.version} ({_offerings(status.offerings)})"
    )
    last = status.outcome.value
    if status.failure is not None:
        last += f": {status.failure.label}"
    return f"catalog: {held}, last sync {last}{', STALE' if status.stale else ''}"


def _offerings(count: int | None) -> str:
    return f"{count} offering{'' if count == 1 else 's'}"


def _time(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC" if value is not None else "-"


@catalog_app.command("search")
def catalog_search(
    text: str | None = typer.Argument(None),
    kind: str | None = typer.Option(None),
    region: str | None = typer.Option(None),
    min_capacity: int | None = typer.Option(None),
    max_price: str | None = typer.Option(None),
    currency: str | None = typer.Option(None),
    peer: str | None = typer.Option(None),
    as_json: bool = JSON,
) -> None:
    """Search the federated catalog (every peer's offerings)."""
    filters = CatalogFilter.model_validate(
        {
            "text": text,
            "kind": kind,
            "region": region,
            "min_capacity": min_capacity,
            "max_price": max_price,
            "currency": currency,
            "peer": peer,
        }
    )
    with read_session() as session:
        found = search_catalog(session=session, actor=cli_actor(), filters=filters)
        held = (
            []
            if found
            else search_catalog(session=session, actor=cli_actor(), filters=CatalogFilter())
        )
    if as_json:
        emit(list(found), as_json=True)
        return
    if not found:
        typer.echo(_nothing_found(held), err=True)
    for offering in found:
        plans = ", ".join(p.id for p in offering.plans)
        typer.echo(f"{offering.peer}  {offering.offering_id}  [{offering.kind}]  {plans}")


def _nothing_found(held: list[Any]) -> str:
    """Why a search found nothing: what the held catalogs do offer, to search again."""
    if not held:
        return "no offerings: no peer's catalog is held yet (`infracms catalog sync`)"
    kinds = ", ".join(sorted({offering.kind for offering in held}))
    return f"no offerings match; the {len(held)} held are of kind: {kinds}"


def read_json(path: Path | None, text: str | None) -> dict[str, Any]:
    """A JSON object from a file (`-` for stdin) or a string; {} for neither."""
    if path is not None:
        raw = typer.get_text_stream("stdin").read() if str(path) == "-" else path.read_text()
        value = json.loads(raw)
    else:
        value = json.loads(text) if text else {}
    if not isinstance(value, dict):
        raise typer.BadParameter("expected a JSON object")
    return value
