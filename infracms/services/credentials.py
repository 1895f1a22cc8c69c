"""Credentials: SSH keys and passwords, sealed at rest; only their metadata ever leaves.

Owners and operators (``credential.write``) store them and set where each may be sent
(its scope, see credential_scope); runs send a credential only to hosts in its scope.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from infracms.errors import Conflict, InvalidInput, NotFound
from infracms.keys import Keyring
from infracms.models.credential import (
    Credential,
    CredentialCreate,
    CredentialKind,
    CredentialPublic,
    CredentialUpdate,
)
from infracms.models.host import Host
from infracms.services import audit
from infracms.services.authz import Action, authorize
from infracms.services.common import Fields, commit, organisation_by_name, parse, snapshot
from infracms.services.context import Actor
from infracms.services.credential_scope import scope_ids, scope_names, stranded
from infracms.sshkeys import private_key_fingerprint

FIELDS = ("name", "kind", "username", "description", "fingerprint")


def sealing_context(credential: Credential) -> str:
    """What a credential's ciphertext is bound to."""
    return f"credential:{credential.id}"


def create_credential(
    *,
    session: Session,
    actor: Actor,
    keyring: Keyring,
    organisation: str,
    data: CredentialCreate | Fields,
) -> Credential:
    """Store a credential, sealed under the node's key."""
    org = organisation_by_name(session, organisation)
    authorize(actor, Action.credential_write, org.id)
    cred_in = parse(CredentialCreate, data)
    secret = cred_in.secret.get_secret_value()
    fingerprint = None
    if cred_in.kind is CredentialKind.ssh_key:
        try:
            fingerprint = private_key_fingerprint(secret)
        except ValueError as exc:
            raise InvalidInput("the key does not parse", errors={"secret": str(exc)}) from exc
    if _by_name(session, org.id, cred_in.name) is not None:
        raise Conflict(
            f"a credential called {cred_in.name!r} exists already",
            errors={"name": "is already taken"},
        )
    credential = Credential(
        **cred_in.model_dump(exclude={"secret", "scope"}),
        organisation_id=org.id,
        ciphertext="",
        fingerprint=fingerprint,
        scope=scope_ids(session, org.id, cred_in.scope),
    )
    credential.ciphertext = keyring.seal(secret, context=sealing_context(credential))
    session.add(credential)
    audit.record(
        session,
        actor=actor,
        action="credential.create",
        subject=f"credential:{org.name}/{credential.name}",
        organisation_id=org.id,
        payload={"after": _snapshot(session, credential)},
    )
    commit(session, conflict=f"a credential called {credential.name!r} exists already")
    return credential


def update_credential(
    *, session: Session, actor: Actor, organisation: str, name: str, data: CredentialUpdate | Fields
) -> Credential:
    """Change a credential's description or scope (the secret itself never changes)."""
    org = organisation_by_name(session, organisation)
    authorize(actor, Action.credential_write, org.id)
    update = parse(CredentialUpdate, data)
    credential = _by_name(session, org.id, name)
    if credential is None:
        raise NotFound(f"no credential called {name!r} in {organisation}")
    before = _snapshot(session, credential)
    if "scope" in update.model_fields_set:
        scope = scope_ids(session, org.id, update.scope)
        _refuse_stranding(credential, stranded(session, credential, scope))
        credential.scope = scope
    if update.description is not None:
        credential.description = update.description
    session.add(credential)
    audit.record(
        session,
        actor=actor,
        action="credential.update",
        subject=f"credential:{org.name}/{credential.name}",
        organisation_id=org.id,
        payload=audit.changes(before, _snapshot(session, credential)),
    )
    commit(session)
    return credential


def describe(session: Session, credential: Credential) -> CredentialPublic:
    """A credential as the API and the CLI show it: metadata, its scope by name."""
    public = CredentialPublic.model_validate(credential, update={"scope": None})
    public.scope = scope_names(session, credential)
    return public


def list_credentials(*, session: Session, actor: Actor, organisation: str) -> list[Credential]:
    """An organisation's credentials (metadata; the Public shape has no secret)."""
    org = organisation_by_name(session, organisation)
    authorize(actor, Action.credential_read, org.id)
    query = select(Credential).where(Credential.organisation_id == org.id)
    return list(session.exec(query.order_by(Credential.name)).all())


def get_credential(*, session: Session, actor: Actor, organisation: str, name: str) -> Credential:
    """One credential's metadata."""
    org = organisation_by_name(session, organisation)
    authorize(actor, Action.credential_read, org.id)
    credential = _by_name(session, org.id, name)
    if credential is None:
        raise NotFound(f"no credential called {name!r} in {organisation}")
    return credential


def delete_credential(*, session: Session, actor: Actor, organisation: str, name: str) -> None:
    """Delete a credential no host uses."""
    org = organisation_by_name(session, organisation)
    authorize(actor, Action.credential_write, org.id)
    credential = _by_name(session, org.id, name)
    if credential is None:
        raise NotFound(f"no credential called {name!r} in {organisation}")
    users = session.exec(select(Host.name).where(Host.credential_id == credential.id)).all()
    if users:
        raise Conflict(f"credential {name!r} is used by hosts: {', '.join(sorted(users))}")
    audit.record(
        session,
        actor=actor,
        action="credential.delete",
        subject=f"credential:{org.name}/{credential.name}",
        organisation_id=org.id,
        payload={"before": _snapshot(session, credential)},
    )
    session.delete(credential)
    commit(session)


def reveal(keyring: Keyring, credential: Credential) -> str:
    """The plain secret, for writing into a run's private data dir only."""
    return keyring.open(credential.ciphertext, context=sealing_context(credential))


def _refuse_stranding(credential: Credential, hosts: list[str]) -> None:
    """Refuse a scope that leaves out hosts connecting with the credential (their runs
    would all fail): say which, so they get another credential first or stay in scope."""
    if not hosts:
        return
    message = (
        f"credential {credential.name} is the connection credential of "
        f"{', '.join(hosts)}, which the new scope leaves out: include them, or give them "
        f"another credential first"
    )
    raise Conflict(message, errors={"scope": message})


def _snapshot(session: Session, credential: Credential) -> dict[str, Any]:
    scope = scope_names(session, credential)
    return {**snapshot(credential, FIELDS), "scope": scope.model_dump() if scope else None}


def _by_name(session: Session, organisation_id: Any, name: str) -> Credential | None:
    return session.exec(
        select(Credential).where(
            Credential.organisation_id == organisation_id, Credential.name == name
        )
    ).first()
