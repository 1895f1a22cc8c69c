"""Setting a node up: key files, migrations, the first admin, and key rotation."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from infracms import db, keys
from infracms.config import Settings
from infracms.models.credential import Credential
from infracms.models.federation import ConsumerService, ServiceBinding
from infracms.models.user import User
from infracms.services import audit, users
from infracms.services.context import Actor, system_actor
from infracms.services.credentials import sealing_context
from infracms.services.totp import sealing_context as totp_context


@dataclass(frozen=True)
class InitReport:
    """What `infracms init` did; `admin_password` is set only when one was generated."""

    created_keyring: bool
    created_identity: bool
    created_admin: bool
    admin_password: str | None


def initialise(settings: Settings, engine: Engine, *, admin_username: str = "admin") -> InitReport:
    """Make the node ready to serve; safe to run again (it reuses what exists)."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)  # the database holds hashes and sealed secrets
    created_keyring = keys.ensure_keyring(settings)
    created_identity = keys.ensure_identity(settings)
    keys.ensure_audit_key(settings)
    keys.ensure_node_ssh_key(settings)
    db.upgrade(settings)
    with db.session_scope(engine, write=True) as session:
        if session.exec(select(User).where(User.is_admin)).first() is not None:
            return InitReport(created_keyring, created_identity, False, None)
        given = settings.admin_password.get_secret_value() if settings.admin_password else None
        password = given or secrets.token_urlsafe(18)
        users.create_user(
            session=session,
            actor=system_actor("init"),
            settings=settings,
            data={"username": admin_username, "password": password, "is_admin": True},
        )
    return InitReport(created_keyring, created_identity, True, None if given else password)


@dataclass(frozen=True)
class RotationReport:
    """How many sealed values were re-encrypted, and under which key."""

    resealed: int
    old_keys: list[str]
    new_key: str


def rotate_secrets(
    settings: Settings, engine: Engine, *, actor: Actor | None = None
) -> RotationReport:
    """Re-encrypt every secret under a fresh key, without loss at any point.

    The new key is added to the key file first (old keys kept), then every value is
    re-sealed in one transaction, and only then are the old keys dropped from the file
    (a copy of the previous file is kept beside it). A crash at any step leaves every
    value readable by the key file on disk.
    """
    actor = actor or system_actor("cli")
    old = keys.load_keyring(settings)
    both = old.with_new_primary()
    backup = settings.resolved_secret_key_file.with_suffix(".key.previous")
    keys.write_private_file(backup, old.to_json().encode())
    keys.save_keyring(settings, both)
    with db.session_scope(engine, write=True) as session:
        count = _reseal_all(session, both)
        audit.record(
            session,
            actor=actor,
            action="secrets.rotate",
            subject="node:keyring",
            payload={"old_keys": sorted(old.keys), "new_key": both.primary, "resealed": count},
        )
        session.commit()
    keys.save_keyring(settings, both.only_primary())
    return RotationReport(resealed=count, old_keys=sorted(old.keys), new_key=both.primary)


def _reseal_all(session: Session, keyring: keys.Keyring) -> int:
    """Re-seal every sealed value: credentials, and the connection details of services
    provided to peers and of services received from them."""
    count = 0
    for credential in session.exec(select(Credential)).all():
        credential.ciphertext = _reseal(keyring, credential.ciphertext, sealing_context(credential))
        session.add(credential)
        count += 1
    for binding in session.exec(select(ServiceBinding)).all():
        binding.sealed = _reseal(keyring, binding.sealed, f"service-binding:{binding.id}")
        session.add(binding)
        count += 1
    for service in session.exec(select(ConsumerService)).all():
        if service.sealed:
            service.sealed = _reseal(keyring, service.sealed, f"consumer-service:{service.id}")
            session.add(service)
            count += 1
    for user in session.exec(select(User).where(col(User.totp_sealed).is_not(None))).all():
        if user.totp_sealed:
            user.totp_sealed = _reseal(keyring, user.totp_sealed, totp_context(user.id))
            session.add(user)
            count += 1
    return count


def _reseal(keyring: keys.Keyring, sealed: str, context: str) -> str:
    return keyring.seal(keyring.open(sealed, context=context), context=context)
