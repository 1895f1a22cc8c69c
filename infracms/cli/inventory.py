"""`infracms host …` and `infracms credential …`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, cast, get_args

import typer

from infracms.cli.common import (
    cli_actor,
    emit,
    engine,
    read_session,
    require_current_schema,
    settings,
    write_session,
)
from infracms.errors import InvalidInput
from infracms.keys import load_keyring
from infracms.models.credential import CredentialKind
from infracms.models.host import HostSort
from infracms.services import bootstrap, credentials, inventory

host_app = typer.Typer(help="Hosts.", no_args_is_help=True)
credential_app = typer.Typer(help="Credentials (SSH keys, passwords).", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="print JSON")
SCOPE_HOSTS = typer.Option([], "--host", help="a host it may be sent to (repeat)")
SCOPE_GROUPS = typer.Option([], "--group", help="a group whose hosts it may be sent to (repeat)")
SORTS: tuple[str, ...] = get_args(HostSort)
ASK_PASSPHRASE = typer.Option(
    False, help="the key is encrypted: ask its passphrase (it is stored decrypted, sealed)"
)


def parse_variables(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs as a dict; values that parse as JSON are taken as JSON."""
    variables: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"{pair!r} is not key=value", errors={"var": "expected key=value"})
        try:
            variables[key] = json.loads(value)
        except ValueError:
            variables[key] = value
    return variables


@host_app.command("add")
def host_add(
    organisation: str,
    name: str,
    address: str,
    port: int = typer.Option(22, help="SSH port"),
    user: str = typer.Option("root", help="SSH user"),
    group: list[str] = typer.Option([], help="group name (repeatable)"),
    var: list[str] = typer.Option([], help="host variable key=value (repeatable)"),
    credential: str | None = typer.Option(None, help="credential name"),
    host_key: str | None = typer.Option(None, help="pinned host key, e.g. 'ssh-ed25519 AAAA…'"),
) -> None:
    """Add a host to ORGANISATION."""
    data = {
        "name": name,
        "address": address,
        "ssh_port": port,
        "ssh_user": user,
        "groups": group,
        "variables": parse_variables(var),
        "credential": credential,
        "host_key": host_key,
    }
    with write_session() as session:
        host = inventory.create_host(
            session=session,
            actor=cli_actor(),
            organisation=organisation,
            data=data,
            allow_node_target=settings().allow_node_target,
        )
    typer.echo(f"added host {host.name} ({host.address}:{host.ssh_port})")


@host_app.command("list")
def host_list(
    organisation: str,
    as_json: bool = JSON,
    limit: int = typer.Option(500, help="at most this many"),
    offset: int = typer.Option(0, help="skip this many"),
    sort: str = typer.Option(
        "name", help=f"order by one of: {', '.join(SORTS)} (a leading - for descending)"
    ),
) -> None:
    """List the hosts of ORGANISATION."""
    if sort not in SORTS:
        raise InvalidInput(
            f"cannot sort hosts by {sort!r}: choose one of {', '.join(SORTS)}",
            errors={"sort": "not a known order"},
        )
    with read_session() as session:
        found = inventory.list_hosts(
            session=session,
            actor=cli_actor(),
            organisation=organisation,
            limit=limit,
            offset=offset,
            sort=cast(HostSort, sort),
        )
    if as_json:
        emit(found.items, as_json=True)
        return
    for host in found.items:
        typer.echo(f"{host.name}\t{host.address}:{host.ssh_port}\t{','.join(host.groups)}")
    typer.echo(f"({len(found.items)} of {found.total})", err=True)


@host_app.command("show")
def host_show(organisation: str, name: str, as_json: bool = JSON) -> None:
    """Show one host."""
    with read_session() as session:
        host = inventory.get_host(
            session=session, actor=cli_actor(), organisation=organisation, name=name
        )
    emit(host, as_json=as_json)


@host_app.command("remove")
def host_remove(organisation: str, name: str) -> None:
    """Remove a host from the inventory (nothing is done to the machine)."""
    with write_session() as session:
        inventory.delete_host(
            session=session, actor=cli_actor(), organisation=organisation, name=name
        )
    typer.echo(f"removed host {name}")


@host_app.command("scan")
def host_scan(organisation: str, name: str) -> None:
    """Show the SSH key fingerprint a host presents."""
    found = _scan(organisation, name)
    typer.echo(f"{name} presents {found.host_key.split()[0]} {found.fingerprint}")


def _scan(organisation: str, name: str) -> bootstrap.ScannedKey:
    return bootstrap.scan_host(
        engine=engine(),
        actor=cli_actor(),
        organisation=organisation,
        name=name,
        allow_node_target=settings().allow_node_target,
    )


@host_app.command("rekey")
def host_rekey(
    organisation: str,
    name: str,
    fingerprint: str | None = typer.Option(
        None, help="the new key's fingerprint, as you confirmed it (else shown and asked)"
    ),
) -> None:
    """Replace NAME's pinned host key with the key it presents now (after a rebuild)."""
    require_current_schema()
    if fingerprint is None:
        with read_session() as session:
            pinned = inventory.get_host(
                session=session, actor=cli_actor(), organisation=organisation, name=name
            ).host_key_fingerprint
        found = _scan(organisation, name)
        typer.echo(f"{name} has pinned {pinned or '(nothing)'} and presents {found.fingerprint}")
        if not typer.confirm("Is the presented key the host's real key?"):
            raise typer.Abort()
        fingerprint = found.fingerprint
    done = bootstrap.rekey_host(
        engine=engine(),
        settings=settings(),
        actor=cli_actor(),
        organisation=organisation,
        name=name,
        fingerprint=fingerprint,
    )
    old = done.old_fingerprint or "(none)"
    typer.echo(f"{name}: pinned key {old} replaced by {done.fingerprint}")


@host_app.command("bootstrap")
def host_bootstrap(
    organisation: str,
    name: str,
    fingerprint: str | None = typer.Option(None, help="the fingerprint you confirmed (else asked)"),
    key_file: Path | None = typer.Option(None, help="a private key that reaches the host once"),
) -> None:
    """Pin NAME's host key and install the node's SSH key (password read from stdin)."""
    require_current_schema()
    if fingerprint is None:
        found = _scan(organisation, name)
        typer.echo(f"{name} presents {found.fingerprint}")
        if not typer.confirm("Is that the host's key?"):
            raise typer.Abort()
        fingerprint = found.fingerprint
    secret = key_file.read_text() if key_file else None
    password = None if key_file else sys.stdin.readline().rstrip("\n")
    result = bootstrap.bootstrap_host(
        engine=engine(),
        settings=settings(),
        actor=cli_actor(),
        organisation=organisation,
        name=name,
        fingerprint=fingerprint,
        password=password,
        private_key=secret,
    )
    typer.echo(f"{name}: host key {result.fingerprint} pinned; node key install {result.status}")
    if result.status != "succeeded":
        typer.echo(result.output, err=True)
        raise typer.Exit(1)


@credential_app.command("add")
def credential_add(
    organisation: str,
    name: str,
    kind: CredentialKind = typer.Option(..., help="ssh_key or password"),
    key_file: Path | None = typer.Option(None, help="private key file (for ssh_key)"),
    username: str | None = typer.Option(None, help="login name the credential is for"),
    host: list[str] = SCOPE_HOSTS,
    group: list[str] = SCOPE_GROUPS,
    ask_passphrase: bool = ASK_PASSPHRASE,
) -> None:
    """Store a credential; a password is read from standard input. With --host/--group it
    is sent only to those hosts and the hosts in those groups; without, to any host."""
    secret = key_file.read_text() if key_file else sys.stdin.read().rstrip("\n")
    passphrase = typer.prompt("Passphrase", hide_input=True) if ask_passphrase else None
    scope = {"hosts": host, "groups": group} if host or group else None
    with write_session() as session:
        credential = credentials.create_credential(
            session=session,
            actor=cli_actor(),
            keyring=load_keyring(settings()),
            organisation=organisation,
            data={
                "name": name,
                "kind": kind,
                "username": username,
                "secret": secret,
                "passphrase": passphrase,
                "scope": scope,
            },
        )
    typer.echo(
        f"stored credential {credential.name}"
        + (f" ({credential.fingerprint})" if credential.fingerprint else "")
    )


@credential_app.command("replace")
def credential_replace(
    organisation: str,
    name: str,
    key_file: Path | None = typer.Option(None, help="the new private key file (for ssh_key)"),
    ask_passphrase: bool = ASK_PASSPHRASE,
) -> None:
    """Give credential NAME a new secret (same name, scope and hosts); a password is read
    from standard input. Audited with the old and new fingerprints."""
    secret = key_file.read_text() if key_file else sys.stdin.read().rstrip("\n")
    passphrase = typer.prompt("Passphrase", hide_input=True) if ask_passphrase else None
    with write_session() as session:
        credential = credentials.replace_credential(
            session=session,
            actor=cli_actor(),
            keyring=load_keyring(settings()),
            organisation=organisation,
            name=name,
            data={"secret": secret, "passphrase": passphrase},
        )
    typer.echo(
        f"replaced the secret of credential {credential.name}"
        + (f" ({credential.fingerprint})" if credential.fingerprint else "")
    )


@credential_app.command("scope")
def credential_scope(
    organisation: str,
    name: str,
    host: list[str] = SCOPE_HOSTS,
    group: list[str] = SCOPE_GROUPS,
    anywhere: bool = typer.Option(False, "--anywhere", help="any host of the organisation"),
) -> None:
    """Set where credential NAME may be sent: --host/--group (replacing what was set), or
    --anywhere."""
    if anywhere == bool(host or group):
        raise InvalidInput(
            "give --host/--group, or --anywhere", errors={"--host/--group": "or --anywhere"}
        )
    scope = None if anywhere else {"hosts": host, "groups": group}
    with write_session() as session:
        credentials.update_credential(
            session=session,
            actor=cli_actor(),
            organisation=organisation,
            name=name,
            data={"scope": scope},
        )
    typer.echo(f"credential {name} may be sent to " + _scope_text(scope))


def _scope_text(scope: dict[str, list[str]] | None) -> str:
    if scope is None:
        return "any host of the organisation"
    named = [f"host {h}" for h in scope["hosts"]] + [f"group {g}" for g in scope["groups"]]
    return ", ".join(named)


@credential_app.command("list")
def credential_list(organisation: str, as_json: bool = JSON) -> None:
    """List the credentials of ORGANISATION (metadata only)."""
    with read_session() as session:
        found = credentials.list_credentials(
            session=session, actor=cli_actor(), organisation=organisation
        )
        shown = [credentials.describe(session, c) for c in found]
    emit(shown, as_json=as_json)
