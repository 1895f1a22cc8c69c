"""Backups of a whole node: create, verify by restoring into a scratch node, restore.

An archive (``node_backup_archive``, encrypted by ``node_backup_stream``; the format is
in docs/backup.md) holds a consistent snapshot of the database, every file of the data
directory (the key files among them), and a manifest with the audit log's latest
signed checkpoint. ``verify`` and ``restore`` unpack into a folder of their own and
prove it (``node_backup_checks``) before anything else is touched; ``restore`` then
swaps the data directory in with renames, so a refused archive changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, func, select

from infracms import db, keys
from infracms.audit import store
from infracms.config import Settings
from infracms.errors import ConfigurationError, InvalidInput
from infracms.models.witness import AuditCosignature
from infracms.services import audit
from infracms.services import node_backup_database as database
from infracms.services.authz import Action, authorize
from infracms.services.context import Actor
from infracms.services.node_backup_archive import (
    ArchiveWriter,
    AuditHead,
    CosignedHead,
    DatabaseSnapshot,
    KeyPlaces,
    Manifest,
    NodeIdentity,
)
from infracms.services.node_backup_checks import public_key
from infracms.services.node_backup_restore import RestoreReport, VerifyReport, restore, verify
from infracms.services.node_backup_stream import SCRYPT_LOG2_N, Header

__all__ = [
    "BackupReport",
    "RestoreReport",
    "VerifyReport",
    "create",
    "prune",
    "restore",
    "verify",
]

SUFFIX = ".infracms-backup"
STAGING_PREFIX = ".backup-"


@dataclass(frozen=True)
class BackupReport:
    """An archive written: where, how big, what it holds, and what retention removed."""

    path: Path
    bytes: int
    sha256: str
    files: int
    database: str
    audit_size: int
    cosigned_size: int | None
    outside: tuple[str, ...]
    pruned: tuple[Path, ...]


def archive_prefix(node_name: str) -> str:
    """The start of this node's archive names (the node name, made safe for a file name)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", node_name) + "-"


def create(
    *,
    settings: Settings,
    engine: Engine,
    actor: Actor,
    to: Path,
    passphrase: bytes,
    keep: int | None = None,
    kdf_log2_n: int = SCRYPT_LOG2_N,
) -> BackupReport:
    """Write an encrypted archive of the node into the folder `to` (node admins only)."""
    authorize(actor, Action.audit_read, None)
    _check_passphrase(passphrase)
    if keep is not None and keep < 1:
        raise InvalidInput("--keep must be at least 1", errors={"keep": "must be at least 1"})
    to.mkdir(mode=0o700, parents=True, exist_ok=True)
    head = _audit_head(settings, engine)
    created = datetime.now(UTC)
    final = to / f"{archive_prefix(settings.node_name)}{created:%Y%m%dT%H%M%S%fZ}{SUFFIX}"
    with _staging(settings) as staging:
        snapshot = database.snapshot(settings, staging)
        manifest = _write(settings, final, passphrase, kdf_log2_n, snapshot, head, created, to)
    size, digest = final.stat().st_size, _sha256(final)
    pruned = prune(to, settings.node_name, keep) if keep else ()
    with db.session_scope(engine, write=True) as session:
        audit.record(
            session,
            actor=actor,
            action="node.backup",
            subject=f"backup:{final.name}",
            payload={
                "bytes": size,
                "sha256": digest,
                "audit_size": head.size,
                "pruned": [path.name for path in pruned],
            },
        )
        session.commit()
    return BackupReport(
        path=final,
        bytes=size,
        sha256=digest,
        files=len(manifest.files),
        database=manifest.database.kind,
        audit_size=head.size,
        cosigned_size=head.cosigned.size if head.cosigned else None,
        outside=_outside(manifest.keys),
        pruned=pruned,
    )


def prune(folder: Path, node_name: str, keep: int) -> tuple[Path, ...]:
    """Remove this node's archives in `folder` but the newest `keep`; the ones removed."""
    name = re.compile(re.escape(archive_prefix(node_name)) + r"\d{8}T\d{12}Z" + re.escape(SUFFIX))
    found = sorted(p for p in folder.iterdir() if name.fullmatch(p.name))
    doomed = tuple(found[: max(0, len(found) - keep)])
    for path in doomed:
        path.unlink()
    return doomed


def _check_passphrase(passphrase: bytes) -> None:
    if len(passphrase) < 12:
        raise InvalidInput(
            "the passphrase is shorter than 12 bytes",
            errors={"passphrase": "use at least 12 characters (a few random words)"},
        )


def _audit_head(settings: Settings, engine: Engine) -> AuditHead:
    """Sign a checkpoint of everything logged so far; it and the latest cosigned one."""
    signed = audit.sign_checkpoint(engine=engine, settings=settings)
    table = AuditCosignature.__table__  # type: ignore[attr-defined]
    with db.session_scope(engine) as session:
        size = session.execute(select(func.max(table.c.checkpoint_size))).scalar()
        cosigned = None
        if size is not None:
            witnesses = session.execute(
                select(table.c.witness).where(table.c.checkpoint_size == size)
            ).scalars()
            query = select(store.CHECKPOINTS.c.note).where(store.CHECKPOINTS.c.size == size)
            note = session.execute(query).scalar_one()
            cosigned = CosignedHead(size=int(size), checkpoint=note, witnesses=sorted(witnesses))
    return AuditHead(size=signed.size, checkpoint=signed.note, cosigned=cosigned)


@contextmanager
def _staging(settings: Settings) -> Iterator[Path]:
    """A private folder in the data directory for the snapshot (plaintext stays there)."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=settings.data_dir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _write(
    settings: Settings,
    final: Path,
    passphrase: bytes,
    log2_n: int,
    snapshot: Path,
    head: AuditHead,
    created: datetime,
    to: Path,
) -> Manifest:
    """Write the archive to a hidden partial file, then rename it into place."""
    partial = final.with_name(f".{final.name}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            writer = ArchiveWriter(out, passphrase, Header.fresh(log2_n=log2_n))
            writer.add(f"database/{snapshot.name}", snapshot)
            for name, path in _state_files(settings, to):
                writer.add(f"data/{name}", path)
            manifest = _manifest(settings, snapshot, head, created, writer)
            writer.finish(manifest)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return manifest


def _state_files(settings: Settings, to: Path) -> Iterator[tuple[str, Path]]:
    """The data directory's files but the live database, staging and the backups."""
    root = settings.data_dir.resolve()
    skip = {to.resolve()}
    if database.is_sqlite(settings.resolved_database_url):
        skip |= database.sqlite_files(settings.resolved_database_url)
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if (here / d) not in skip
            and not d.startswith(STAGING_PREFIX)
            and not (here / d).is_symlink()
        )
        for name in sorted(files):
            path = here / name
            if path in skip or name.endswith((".partial", ".tmp")) or not path.is_file():
                continue
            if path.is_symlink():
                continue
            yield path.relative_to(root).as_posix(), path


def _manifest(
    settings: Settings, snapshot: Path, head: AuditHead, created: datetime, writer: ArchiveWriter
) -> Manifest:
    kind = "sqlite" if snapshot.name == database.SQLITE_FILE else "postgresql"
    url = f"sqlite:///{snapshot}" if kind == "sqlite" else settings.resolved_database_url
    revision = database.schema_revision(url)
    if revision is None:
        raise ConfigurationError("the database has no schema: run `infracms init` first")
    return Manifest(
        created_at=created,
        node=NodeIdentity(
            name=settings.node_name,
            base_url=settings.base_url,
            public_key=public_key(settings),
            verifier_key=audit.verifier_key(settings),
        ),
        database=DatabaseSnapshot(
            kind=kind, path=f"database/{snapshot.name}", schema_revision=revision
        ),
        audit=head,
        keys=_key_places(settings),
        files=writer.files,
    )


def _in_data_dir(settings: Settings, path: Path) -> str | None:
    """`path` relative to the data dir (so in the archive), or None if it is outside."""
    root, found = settings.data_dir.resolve(), path.resolve()
    return found.relative_to(root).as_posix() if found.is_relative_to(root) else None


def _key_places(settings: Settings) -> KeyPlaces:
    keyring = keys.load_keyring(settings)
    keyring_file = _in_data_dir(settings, settings.resolved_secret_key_file)
    identity_file = _in_data_dir(settings, settings.resolved_identity_key_file)
    if settings.secret_key is not None:
        place, keyring_file = "environment", None
    else:
        place = "outside" if keyring_file is None else "archive"
    return KeyPlaces(
        keyring=place,
        keyring_ids=sorted(keyring.keys),
        identity="outside" if identity_file is None else "archive",
        keyring_file=keyring_file,
        identity_file=identity_file,
    )


def _outside(places: KeyPlaces) -> tuple[str, ...]:
    """What the operator must keep beside the archive to restore it."""
    needed = []
    if places.keyring == "environment":
        needed.append(f"INFRACMS_SECRET_KEY (key id {', '.join(places.keyring_ids)})")
    elif places.keyring == "outside":
        needed.append(f"the secret key file (key ids {', '.join(places.keyring_ids)})")
    if places.identity == "outside":
        needed.append("the identity key file (INFRACMS_IDENTITY_KEY_FILE)")
    return tuple(needed)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
