"""Verify an archive by restoring it into a scratch node; restore it onto a data directory.

Both unpack into a folder of their own and prove the node it holds (``prove``) before
anything else is touched. ``restore`` then loads PostgreSQL in one transaction (after
proving the dump in a scratch database) and swaps the data directory in by renames.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from infracms import db
from infracms.config import Settings
from infracms.errors import ConfigurationError, Conflict
from infracms.services import audit
from infracms.services import node_backup_database as database
from infracms.services.context import Actor
from infracms.services.node_backup_archive import Manifest, unpack
from infracms.services.node_backup_checks import (
    AuditProof,
    check_identity,
    check_keyring,
    check_not_another_node,
    check_schema,
    open_secrets,
    prove_audit,
)


@dataclass(frozen=True)
class VerifyReport:
    """What an archive proved once restored: its files, schema, audit log and secrets."""

    node: str
    created_at: datetime
    files: int
    database: str
    schema_revision: str
    schema_current: bool
    audit: AuditProof
    secrets: int


@dataclass(frozen=True)
class RestoreReport:
    """A node restored: where, whether an old one was replaced, what was proved."""

    data_dir: Path
    replaced: bool
    upgraded: bool
    verified: VerifyReport


def verify(
    *,
    archive: Path,
    passphrase: bytes,
    settings: Settings,
    scratch: Path | None = None,
    database_url: str | None = None,
) -> VerifyReport:
    """Decrypt, check every file, restore into a scratch node and prove it.

    A PostgreSQL archive is loaded into a new database beside `database_url` (default:
    the configured one), dropped afterwards.
    """
    with _workspace(scratch, "infracms-verify-") as work:
        manifest = _unpack(archive, passphrase, work)
        data_dir = _data_dir(work, manifest)
        named = _archived_keys(settings, manifest, data_dir)
        if manifest.database.kind == "sqlite":
            return prove(_moved(named, data_dir, None), manifest)
        with database.scratch_postgres(_postgres_server(database_url or settings)) as url:
            database.load_postgres(work / manifest.database.path, url)
            return prove(_moved(named, data_dir, url), manifest)


def prove(settings: Settings, manifest: Manifest) -> VerifyReport:
    """Check the node made of an archive: its key, schema, audit log and secrets."""
    check_identity(settings, manifest)
    check_keyring(settings, manifest)
    current = check_schema(settings, manifest.database.schema_revision)
    engine = db.make_engine(settings)
    try:
        proof = prove_audit(settings, engine, manifest)
        opened = open_secrets(settings, engine)
    finally:
        engine.dispose()
    return VerifyReport(
        node=manifest.node.name,
        created_at=manifest.created_at,
        files=len(manifest.files),
        database=manifest.database.kind,
        schema_revision=manifest.database.schema_revision,
        schema_current=current,
        audit=proof,
        secrets=opened,
    )


def restore(
    *, archive: Path, passphrase: bytes, settings: Settings, actor: Actor, force: bool = False
) -> RestoreReport:
    """Restore the archive as the node `settings` describe (its data dir, its database).

    Refuses a non-empty target unless `force`, and with `force` a target that holds
    another node's key. Nothing is changed until the archive is proved.
    """
    target = settings.data_dir.resolve()
    occupied = _occupied(settings)
    if occupied and not force:
        raise Conflict(f"{occupied} is not empty: give --force to replace it (nothing changed)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _workspace(target.parent, f".{target.name}.restore-") as work:
        manifest = _unpack(archive, passphrase, work)
        _check_target(settings, manifest, force)
        data_dir = _data_dir(work, manifest)
        url = settings.database_url if manifest.database.kind == "postgresql" else None
        if url is None:
            report = prove(_moved(settings, data_dir, None), manifest)
        else:
            with database.scratch_postgres(url) as scratch:
                database.load_postgres(work / manifest.database.path, scratch)
                report = prove(_moved(settings, data_dir, scratch), manifest)
            database.load_postgres(work / manifest.database.path, url)
        replaced = _swap(data_dir, target, work / "replaced")
    upgraded = not report.schema_current
    if upgraded:
        db.upgrade(settings)
    _record(settings, actor, archive, manifest, replaced)
    return RestoreReport(data_dir=target, replaced=replaced, upgraded=upgraded, verified=report)


@contextmanager
def _workspace(parent: Path | None, prefix: str) -> Iterator[Path]:
    """A private folder (0700), removed with what it holds, whatever happens."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _unpack(archive: Path, passphrase: bytes, work: Path) -> Manifest:
    with archive.open("rb") as source:
        return unpack(source, passphrase, work)


def _data_dir(work: Path, manifest: Manifest) -> Path:
    """The unpacked data directory, with a SQLite snapshot moved in as the database."""
    data_dir = work / "data"
    data_dir.mkdir(mode=0o700, exist_ok=True)
    data_dir.chmod(0o700)
    if manifest.database.kind == "sqlite":
        os.replace(work / manifest.database.path, data_dir / database.SQLITE_FILE)
    return data_dir


def _moved(settings: Settings, data_dir: Path, database_url: str | None) -> Settings:
    """`settings` for a node whose data dir is `data_dir`: key files inside the old data
    dir move with it, key files outside it (and INFRACMS_SECRET_KEY) stay as they are."""
    old = settings.data_dir.resolve()
    update: dict[str, object] = {"data_dir": data_dir, "database_url": database_url}
    for name in ("secret_key_file", "identity_key_file"):
        path: Path | None = getattr(settings, name)
        if (
            path is not None
            and not path.resolve().is_relative_to(data_dir.resolve())
            and (path.resolve().is_relative_to(old))
        ):
            update[name] = data_dir / path.resolve().relative_to(old)
    return settings.model_copy(update=update)


def _archived_keys(settings: Settings, manifest: Manifest, data_dir: Path) -> Settings:
    """The verifier's settings, named as the archive's node and using the keys the
    archive holds (only keys kept outside it come from the verifier's own settings)."""
    update: dict[str, object] = {"node_name": manifest.node.name}
    places = manifest.keys
    if places.keyring == "archive" and places.keyring_file:
        update |= {"secret_key": None, "secret_key_file": data_dir / places.keyring_file}
    if places.identity == "archive" and places.identity_file:
        update["identity_key_file"] = data_dir / places.identity_file
    return settings.model_copy(update=update)


def _postgres_server(source: str | Settings) -> str:
    url = source if isinstance(source, str) else source.resolved_database_url
    if database.is_sqlite(url):
        raise ConfigurationError(
            "the archive holds a PostgreSQL database: give a PostgreSQL server to load it "
            "into for the check (--database-url, or INFRACMS_DATABASE_URL)"
        )
    return url


def _occupied(settings: Settings) -> str | None:
    """What already holds a node where the restore would go, if anything."""
    target = settings.data_dir
    if target.exists() and any(target.iterdir()):
        return f"the data directory {target}"
    url = settings.resolved_database_url
    if not database.is_sqlite(url) and database.has_tables(url):
        return "the database at INFRACMS_DATABASE_URL"
    return None


def _check_target(settings: Settings, manifest: Manifest, force: bool) -> None:
    """The configured node can become the archive's: same name, same kind of database."""
    if settings.node_name != manifest.node.name:
        raise ConfigurationError(
            f"the archive is of node {manifest.node.name!r}, this node is configured as "
            f"{settings.node_name!r}: set INFRACMS_NODE_NAME={manifest.node.name} "
            f"(and INFRACMS_BASE_URL={manifest.node.base_url}) to restore it"
        )
    sqlite = database.is_sqlite(settings.resolved_database_url)
    if (manifest.database.kind == "sqlite") != sqlite or (sqlite and settings.database_url):
        want = (
            "the default SQLite database in the data directory (INFRACMS_DATABASE_URL unset)"
            if manifest.database.kind == "sqlite"
            else "a PostgreSQL database in INFRACMS_DATABASE_URL"
        )
        raise ConfigurationError(f"the archive holds a {manifest.database.kind} database: {want}")
    if force:
        check_not_another_node(settings, manifest)


def _swap(new: Path, target: Path, aside: Path) -> bool:
    """Put `new` in place of `target` by renames; the old one goes `aside` (then removed)."""
    replaced = target.exists()
    if replaced:
        os.rename(target, aside)
    try:
        os.rename(new, target)
    except OSError:
        if replaced:
            os.rename(aside, target)
        raise
    return replaced


def _record(
    settings: Settings, actor: Actor, archive: Path, manifest: Manifest, replaced: bool
) -> None:
    """The restore, as an entry of the restored node's own log."""
    engine = db.make_engine(settings)
    try:
        with db.session_scope(engine, write=True) as session:
            audit.record(
                session,
                actor=actor,
                action="node.restore",
                subject=f"backup:{archive.name}",
                payload={
                    "created_at": manifest.created_at.isoformat(),
                    "audit_size": manifest.audit.size,
                    "replaced": replaced,
                },
            )
            session.commit()
    finally:
        engine.dispose()
