"""Bootstrapping a host: learn and pin its SSH key, then install the node's SSH key.

The host key is scanned with ``ssh-keyscan`` and shown as a fingerprint; it is pinned
only when the caller confirms that fingerprint (or the host already has that key
pinned). Then a one-time run of ``playbooks/bootstrap.yml`` with the password or key
the sysadmin gives installs the node's public key; the one-time secret is never stored.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import Conflict, InvalidInput
from infracms.keys import load_node_ssh_key
from infracms.models.host import HostPublic
from infracms.runs import workdir
from infracms.runs.adapter import run_playbook
from infracms.runs.events import Redactor
from infracms.runs.render import CredentialInput, HostInput, RenderInput, render
from infracms.services import inventory
from infracms.services.authz import Action, authorize
from infracms.services.context import Actor
from infracms.services.targets import refuse_node_target
from infracms.sshkeys import host_key_fingerprint, normalise_host_key

KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa")
ONE_TIME = "one-time"


@dataclass(frozen=True)
class ScannedKey:
    """The key a host presents, and its fingerprint."""

    host_key: str
    fingerprint: str


def scan_host_key(address: str, port: int, *, timeout: int = 5) -> ScannedKey:
    """Ask the host for its SSH key (preferring Ed25519)."""
    keyscan = shutil.which("ssh-keyscan")
    if keyscan is None:
        raise InvalidInput("ssh-keyscan is not installed on the node (Debian: openssh-client)")
    try:
        # the address was validated as an IP address or a host name (no leading '-')
        found = subprocess.run(  # noqa: S603
            [
                keyscan,
                "-T",
                str(timeout),
                "-p",
                str(port),
                "-t",
                ",".join(("ed25519", "ecdsa", "rsa")),
                address,
            ],
            capture_output=True,
            text=True,
            timeout=timeout + 5,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InvalidInput(f"cannot scan {address}:{port}: {exc}") from exc
    keys = {}
    for line in found.splitlines():
        words = line.split()
        if len(words) >= 3 and not line.startswith("#") and words[1] in KEY_TYPES:
            keys[words[1]] = normalise_host_key(f"{words[1]} {words[2]}")
    for key_type in KEY_TYPES:
        if key_type in keys:
            return ScannedKey(keys[key_type], host_key_fingerprint(keys[key_type]))
    raise InvalidInput(f"{address}:{port} presented no SSH host key (is sshd running there?)")


def scan_host(
    *, engine: Engine, actor: Actor, organisation: str, name: str, allow_node_target: bool = False
) -> ScannedKey:
    """Scan an inventory host's key, for a sysadmin to confirm before bootstrapping."""
    host = _host(engine, actor, organisation, name, Action.host_write)
    refuse_node_target(host.address, allow=allow_node_target)
    return scan_host_key(host.address, host.ssh_port)


def _host(engine: Engine, actor: Actor, organisation: str, name: str, action: Action) -> HostPublic:
    """The host, if `actor` may do `action` to it, read in a short session of its own."""
    with session_scope(engine) as session:
        host = inventory.get_host(
            session=session, actor=actor, organisation=organisation, name=name
        )
        authorize(actor, action, host.organisation_id)
    return host


@dataclass(frozen=True)
class Rekeyed:
    """The key that was pinned and the one pinned now."""

    old_fingerprint: str | None
    fingerprint: str


def rekey_host(
    *,
    engine: Engine,
    settings: Settings,
    actor: Actor,
    organisation: str,
    name: str,
    fingerprint: str,
) -> Rekeyed:
    """Replace a host's pinned key with the key it presents now, if that key's
    fingerprint is the one the caller confirmed (after a scan showed both)."""
    host = _host(engine, actor, organisation, name, Action.host_connect)
    refuse_node_target(host.address, allow=settings.allow_node_target)
    scanned = scan_host_key(host.address, host.ssh_port)  # no session is open meanwhile
    with session_scope(engine, write=True) as session:
        inventory.replace_host_key(
            session=session,
            actor=actor,
            organisation=organisation,
            name=name,
            host_key=scanned.host_key,
            confirmed=fingerprint,
            source="scan",
        )
    return Rekeyed(old_fingerprint=host.host_key_fingerprint, fingerprint=scanned.fingerprint)


@dataclass(frozen=True)
class BootstrapResult:
    """What bootstrapping did."""

    fingerprint: str
    status: str
    output: str


def bootstrap_host(
    *,
    engine: Engine,
    settings: Settings,
    actor: Actor,
    organisation: str,
    name: str,
    fingerprint: str,
    password: str | None = None,
    private_key: str | None = None,
) -> BootstrapResult:
    """Pin the host's key if it matches `fingerprint`, then install the node's SSH key."""
    if (password is None) == (private_key is None):
        raise InvalidInput(
            "give a password or a private key",
            errors={"password": "one of password or private_key"},
        )
    host = _host(engine, actor, organisation, name, Action.host_connect)
    refuse_node_target(host.address, allow=settings.allow_node_target)
    scanned = scan_host_key(host.address, host.ssh_port)
    if scanned.fingerprint != fingerprint:
        raise Conflict(
            f"{name} presents {scanned.fingerprint}, not the confirmed {fingerprint}: "
            "nothing was changed"
        )
    with session_scope(engine, write=True) as session:
        inventory.pin_host_key(
            session=session,
            actor=actor,
            organisation=organisation,
            name=name,
            host_key=scanned.host_key,
            source="bootstrap",
        )
    secret = password if password is not None else str(private_key)
    kind = "password" if password is not None else "ssh_key"
    public_key = load_node_ssh_key(settings)[1]
    data = RenderInput(
        hosts=(
            HostInput(
                name=host.name,
                address=host.address,
                port=host.ssh_port,
                user=host.ssh_user,
                host_key=scanned.host_key,
                credential=ONE_TIME,
                variables={"infracms_node_public_key": public_key},
                modules=(),
                settings={},
            ),
        ),
        credentials={ONE_TIME: CredentialInput(kind=kind, secret=secret)},
        roles={},
        check=False,
        timeout_seconds=300,
        playbook="bootstrap.yml",
    )
    lines: list[str] = []
    redactor = Redactor([secret])
    directory = workdir.new_run_dir()
    try:
        spec = render(data, directory)
        result = run_playbook(
            spec, on_event=lambda e: _collect(e, lines, redactor), should_cancel=lambda: False
        )
    finally:
        workdir.remove(directory)
    status = "succeeded" if result.status == "successful" else "failed"
    with session_scope(engine, write=True) as session:
        inventory.record_bootstrap(
            session=session,
            actor=actor,
            organisation=organisation,
            name=name,
            fingerprint=scanned.fingerprint,
            status=status,
        )
    return BootstrapResult(fingerprint=scanned.fingerprint, status=status, output="\n".join(lines))


def _collect(event: dict[str, Any], lines: list[str], redactor: Redactor) -> None:
    stdout = event.get("stdout")
    if stdout:
        lines.append(redactor.text(str(stdout)))
