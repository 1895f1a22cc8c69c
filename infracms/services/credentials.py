"""Credentials: SSH keys and passwords, sealed at rest; only their metadata ever leaves.

Owners and operators (``credential.write``) store them and set where each may be sent
(its scope, see credential_scope); runs send a credential only to hosts in its scope.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr
from sqlmodel import Session, select

from infracms.errors import Conflict, InvalidInput, NotFound
from infracms.keys import Keyring
from infracms.models.base import utcnow
from infracms.models.credential import (
    Credential,
    CredentialCreate,
    CredentialKind,
    CredentialPublic,
    CredentialReplace,
    CredentialUpdate,
)
from infracms.models.host import Host
from infracms.services import audit
from infracms.services.authz import Action, authorize
from infracms.services.common import Fields, commit, organisation_by_name, parse, snapshot
from infracms.services.context import Actor
from infracms.services.credential_scope import scope_ids, scope_names, stranded
from infracms.sshkeys import KeyNeedsPassphrase, PrivateKey, normalise_private_key

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
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.credential_write, org.id)
    cred_in = parse(CredentialCreate, data)
    key = _checked_secret(cred_in.kind, cred_in.secret, cred_in.passphrase)
    if _by_name(session, org.id, cred_in.name) is not None:
        raise Conflict(
            f"a credential called {cred_in.name!r} exists already",
            errors={"name": "is already taken"},
        )
    credential = Credential(
        **cred_in.model_dump(exclude={"secret", "passphrase", "scope"}),
        organisation_id=org.id,
        ciphertext="",
        fingerprint=key.fingerprint,
        public_key=key.public_key,
        scope=scope_ids(session, organisation_id=org.id, scope=cred_in.scope),
    )
    credential.ciphertext = keyring.seal(key.text, context=sealing_context(credential))
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


def replace_credential(
    *,
    session: Session,
    actor: Actor,
    keyring: Keyring,
    organisation: str,
    name: str,
    data: CredentialReplace | Fields,
) -> Credential:
    """Give a credential a new secret (a rotated key, a changed password): same name,
    kind, scope and hosts; audited with the old and new fingerprints, never the secret."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.credential_write, org.id)
    new = parse(CredentialReplace, data)
    credential = _by_name(session, org.id, name)
    if credential is None:
        raise NotFound(f"no credential called {name!r} in {organisation}")
    key = _checked_secret(credential.kind, new.secret, new.passphrase)
    old_fingerprint = credential.fingerprint
    credential.ciphertext = keyring.seal(key.text, context=sealing_context(credential))
    credential.fingerprint, credential.public_key = key.fingerprint, key.public_key
    credential.replaced_at = utcnow()
    session.add(credential)
    audit.record(
        session,
        actor=actor,
        action="credential.replace",
        subject=f"credential:{org.name}/{credential.name}",
        organisation_id=org.id,
        payload={"old_fingerprint": old_fingerprint, "new_fingerprint": key.fingerprint},
    )
    commit(session)
    return credential


def update_credential(
    *, session: Session, actor: Actor, organisation: str, name: str, data: CredentialUpdate | Fields
) -> Credential:
    """Change a credential's description or scope (the secret itself never changes)."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.credential_write, org.id)
    update = parse(CredentialUpdate, data)
    credential = _by_name(session, org.id, name)
    if credential is None:
        raise NotFound(f"no credential called {name!r} in {organisation}")
    before = _snapshot(session, credential)
    if "scope" in update.model_fields_set:
        scope = scope_ids(session, organisation_id=org.id, scope=update.scope)
        _refuse_stranding(credential, stranded(session, credential=credential, scope=scope))
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
    public.scope = scope_names(session, credential=credential)
    return public


def list_credentials(*, session: Session, actor: Actor, organisation: str) -> list[Credential]:
    """An organisation's credentials (metadata; the Public shape has no secret)."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.credential_read, org.id)
    query = select(Credential).where(Credential.organisation_id == org.id)
    return list(session.exec(query.order_by(Credential.name)).all())


def get_credential(*, session: Session, actor: Actor, organisation: str, name: str) -> Credential:
    """One credential's metadata."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.credential_read, org.id)
    credential = _by_name(session, org.id, name)
    if credential is None:
        raise NotFound(f"no credential called {name!r} in {organisation}")
    return credential


def delete_credential(*, session: Session, actor: Actor, organisation: str, name: str) -> None:
    """Delete a credential no host uses."""
    org = organisation_by_name(session, name=organisation)
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


def _checked_secret(
    kind: CredentialKind, secret: SecretStr, passphrase: SecretStr | None
) -> PrivateKey:
    """The secret as it is sealed: an SSH key parsed and normalised (LF line endings, one
    trailing newline, decrypted with its passphrase), so that a key that would fail every
    run is refused when it is saved; a password as given."""
    if kind is not CredentialKind.ssh_key:
        return PrivateKey(secret.get_secret_value(), None, None)
    try:
        return normalise_private_key(
            secret.get_secret_value(), passphrase.get_secret_value() if passphrase else None
        )
    except KeyNeedsPassphrase as exc:
        raise InvalidInput(f"the key {exc}", errors={"passphrase": f"the key {exc}"}) from exc
    except ValueError as exc:
        raise InvalidInput(f"the key {exc}", errors={"secret": str(exc)}) from exc


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
    scope = scope_names(session, credential=credential)
    return {**snapshot(credential, FIELDS), "scope": scope.model_dump() if scope else None}


def _by_name(session: Session, organisation_id: Any, name: str) -> Credential | None:
    return session.exec(
        select(Credential).where(
            Credential.organisation_id == organisation_id, Credential.name == name
        )
    ).first()
