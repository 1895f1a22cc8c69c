"""Bootstrapping a host: learn and pin its SSH key, then install the node's SSH key.

The host key is scanned with ``ssh-keyscan`` and shown as a fingerprint; it is pinned
only when the caller confirms that fingerprint (or the host already has that key
pinned). Then a one-time run of ``playbooks/bootstrap.yml`` with the password or key
the sysadmin gives installs the node's public key; the one-time secret is never stored.
This module decides who may do it and records it (audited, through
``services.inventory``); scanning and the playbook are ``orchestration/bootstrap.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import Conflict, InvalidInput
from infracms.keys import load_node_ssh_key
from infracms.models.host import HostPublic
from infracms.orchestration.bootstrap import ScannedKey, run_bootstrap_playbook, scan_host_key
from infracms.services import inventory
from infracms.services.authz import Action, authorize
from infracms.services.context import Actor
from infracms.services.targets import refuse_node_target

__all__ = ["BootstrapResult", "Rekeyed", "ScannedKey", "bootstrap_host", "rekey_host", "scan_host"]


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


def _scanned(
    engine: Engine, settings: Settings, actor: Actor, organisation: str, name: str
) -> tuple[HostPublic, ScannedKey]:
    """The host, if `actor` may change where ssh goes for it, and the key it presents
    now: the first steps of rekeying and bootstrapping (no session is open meanwhile)."""
    host = _host(engine, actor, organisation, name, Action.host_connect)
    refuse_node_target(host.address, allow=settings.allow_node_target)
    return host, scan_host_key(host.address, host.ssh_port)


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
    host, scanned = _scanned(engine, settings, actor, organisation, name)
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
    host, scanned = _scanned(engine, settings, actor, organisation, name)
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
    outcome = run_bootstrap_playbook(
        host,
        host_key=scanned.host_key,
        kind="password" if password is not None else "ssh_key",
        secret=secret,
        node_public_key=load_node_ssh_key(settings)[1],
    )
    with session_scope(engine, write=True) as session:
        inventory.record_bootstrap(
            session=session,
            actor=actor,
            organisation=organisation,
            name=name,
            fingerprint=scanned.fingerprint,
            status=outcome.status,
        )
    return BootstrapResult(
        fingerprint=scanned.fingerprint, status=outcome.status, output=outcome.output
    )
