"""What proves an unpacked backup: the node's key, the schema, the audit log, the secrets.

Each check runs on a node made of the archive's files (a scratch one for ``verify``,
the one about to replace the old for ``restore``) and raises with expected versus got.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine
from sqlmodel import select

from infracms import db, keys
from infracms.audit import exporter
from infracms.audit.verifier import VerificationReport, verify_export
from infracms.config import Settings
from infracms.errors import ConfigurationError, Conflict, SecretError
from infracms.models.credential import Credential
from infracms.models.federation import ConsumerService, ServiceBinding
from infracms.services import audit
from infracms.services.credentials import sealing_context
from infracms.services.node_backup_archive import Manifest
from infracms.services.node_backup_stream import ArchiveRefused


@dataclass(frozen=True)
class AuditProof:
    """The restored log, verified offline, and the checkpoints it was shown to extend."""

    entries: int
    size: int
    root: str
    manifest_size: int
    cosigned_size: int | None
    witnesses: tuple[str, ...]


def public_key(settings: Settings) -> str:
    """The node's identity public key, base64 of its raw 32 bytes."""
    raw = keys.load_identity(settings).public_key().public_bytes_raw()
    return base64.b64encode(raw).decode()


def check_identity(settings: Settings, manifest: Manifest) -> None:
    """The node's key is the archive's node's."""
    have = public_key(settings)
    if have != manifest.node.public_key:
        where = "brought" if manifest.keys.identity == "outside" else "in the archive"
        raise ArchiveRefused(
            f"the identity key {where} has public key {have}, the manifest says "
            f"{manifest.node.public_key} (node {manifest.node.name})"
        )


def check_not_another_node(settings: Settings, manifest: Manifest) -> None:
    """Refuse to replace a node by another one's archive (same public key required)."""
    path = settings.resolved_identity_key_file
    if not path.exists():
        return
    have = public_key(settings)
    if have != manifest.node.public_key:
        raise Conflict(
            f"the archive is of node {manifest.node.name} (key {manifest.node.public_key}), "
            f"but {path} is the key of another node ({have}): nothing was changed; restore "
            "another node's archive onto an empty data directory"
        )


def check_schema(settings: Settings, revision: str) -> bool:
    """The archive's schema is one this infracms knows; whether it is the latest."""
    scripts = ScriptDirectory.from_config(db.alembic_config(settings))
    try:
        found = scripts.get_revision(revision)
    except CommandError:
        found = None
    if found is None:
        raise ArchiveRefused(
            f"the database is at schema revision {revision}, which this infracms does not "
            "know: restore it with the infracms version that made it, or a newer one"
        )
    return revision == scripts.get_current_head()


def prove_audit(settings: Settings, engine: Engine, manifest: Manifest) -> AuditProof:
    """Verify the restored log offline; it must extend the manifest's checkpoints.

    The export is made from the restored rows and checked by the independent verifier
    against the manifest's verifier key, with the manifest's latest checkpoint and its
    latest cosigned checkpoint as trusted checkpoints: a log that lost entries its
    peers saw, or was rewritten, fails with the verifier's own error.
    """
    key = manifest.node.verifier_key
    have = audit.verifier_key(settings)
    if have != key:
        raise ArchiveRefused(f"the node's verifier key is {have}, the manifest says {key}")
    trusted = [manifest.audit.checkpoint]
    if manifest.audit.cosigned is not None:
        trusted.append(manifest.audit.cosigned.checkpoint)
    with db.session_scope(engine) as session:
        lines = exporter.export_lines(session, origin=manifest.node.name, verifier_key=key)
        report: VerificationReport = verify_export(lines, key, trusted=trusted)
    cosigned = manifest.audit.cosigned
    return AuditProof(
        entries=report.entries,
        size=report.size,
        root=report.root_b64,
        manifest_size=manifest.audit.size,
        cosigned_size=cosigned.size if cosigned else None,
        witnesses=tuple(cosigned.witnesses) if cosigned else (),
    )


def check_keyring(settings: Settings, manifest: Manifest) -> None:
    """The keyring configured (or archived) holds the keys the archive's node sealed with."""
    wanted = ", ".join(manifest.keys.keyring_ids)
    if manifest.keys.keyring == "environment" and settings.secret_key is None:
        raise ConfigurationError(
            f"the archive's node kept its encryption key in INFRACMS_SECRET_KEY (key id "
            f"{wanted}), which no archive holds: set it to the same key to restore"
        )
    try:
        have = keys.load_keyring(settings).keys
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"the archive's node sealed its secrets with key id {wanted}: {exc.detail}"
        ) from exc
    missing = sorted(set(manifest.keys.keyring_ids) - set(have))
    if missing:
        raise ConfigurationError(
            f"the keyring configured has key ids {', '.join(sorted(have))}, the archive's "
            f"node sealed with {wanted}: bring its key (INFRACMS_SECRET_KEY or the key file)"
        )


def open_secrets(settings: Settings, engine: Engine) -> int:
    """Open every sealed value with the node's keyring; how many there are."""
    keyring = keys.load_keyring(settings)
    count = 0
    try:
        with db.session_scope(engine) as session:
            for credential in session.exec(select(Credential)).all():
                keyring.open(credential.ciphertext, context=sealing_context(credential))
                count += 1
            for binding in session.exec(select(ServiceBinding)).all():
                keyring.open(binding.sealed, context=f"service-binding:{binding.id}")
                count += 1
            for service in session.exec(select(ConsumerService)).all():
                if service.sealed:
                    keyring.open(service.sealed, context=f"consumer-service:{service.id}")
                    count += 1
    except SecretError as exc:
        raise SecretError(
            f"a sealed secret does not open with the node's keyring: {exc.detail}"
        ) from exc
    return count
