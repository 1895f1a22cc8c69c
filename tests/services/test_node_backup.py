"""Node backups on SQLite: back up a node, destroy it, restore it, and it serves again
with its audit log verified against the checkpoint taken before the backup; every
refusal leaves the target as it was."""

from __future__ import annotations

import base64
import secrets
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from infracms.app import create_app
from infracms.audit import exporter
from infracms.audit.verifier import verify_export
from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.errors import ConfigurationError, Conflict, InvalidInput, PermissionDenied
from infracms.keys import ensure_identity, load_keyring
from infracms.models import Role
from infracms.services import audit, credentials, node_backup
from infracms.services.node_backup_stream import ArchiveRefused
from infracms.services.setup import initialise
from tests.conftest import ADMIN_PASSWORD, make_settings
from tests.helpers import ADMIN, audit_size, make_org, member_actor, sign_in
from tests.services.backup_node import (
    FAST_KDF,
    PASSPHRASE,
    SECRET,
    Original,
    contents,
    open_credential,
)


def restored_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "restored")


def restore(archive: Path, settings: Settings, **options: object) -> node_backup.RestoreReport:
    return node_backup.restore(
        archive=archive, passphrase=PASSPHRASE, settings=settings, actor=ADMIN, **options
    )


def snapshot_of(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_destroyed_node_comes_back_whole_and_serves(original: Original, tmp_path: Path) -> None:
    machine = tmp_path / "machine"  # the machine that is gone: a copy of the node, destroyed
    shutil.copytree(original.settings.data_dir, machine)
    shutil.rmtree(machine)
    target = restored_settings(tmp_path)
    report = restore(original.archive, target)
    assert not report.replaced and report.verified.secrets == 1
    assert report.verified.audit.manifest_size == report.verified.audit.size > 2_000
    engine = make_engine(target)
    try:
        assert contents(engine) == original.contents
        assert open_credential(target, engine) == SECRET
        with session_scope(engine) as session:  # the log as a whole, against the checkpoint
            lines = list(
                exporter.export_lines(
                    session, origin=target.node_name, verifier_key=original.verifier_key
                )
            )
        checked = verify_export(lines, original.verifier_key, trusted=[original.checkpoint])
        assert checked.trusted and checked.size >= report.verified.audit.size
        app = create_app(target)
        with TestClient(app) as client:
            sign_in(client, engine, target, "admin", ADMIN_PASSWORD)
            hosts = client.get("/api/v1/orgs/clinic/hosts")
            assert hosts.status_code == 200, hosts.text
            assert {h["name"] for h in hosts.json()["items"]} == {"web1", "web2", "db1"}
        app.state.engine.dispose()
        assert audit.verifier_key(target) == original.verifier_key  # the same identity
    finally:
        engine.dispose()


def test_the_restore_is_in_the_restored_nodes_log(original: Original, tmp_path: Path) -> None:
    target = restored_settings(tmp_path)
    restore(original.archive, target)
    engine = make_engine(target)
    try:
        with session_scope(engine) as session:
            page = audit.list_entries(session=session, actor=ADMIN, action="node.restore")
        assert [entry.subject for entry in page.items] == [f"backup:{original.archive.name}"]
    finally:
        engine.dispose()


def test_verify_restores_into_a_scratch_node_and_reports(original: Original) -> None:
    report = node_backup.verify(
        archive=original.archive, passphrase=PASSPHRASE, settings=original.settings
    )
    assert report.node == original.settings.node_name
    assert report.secrets == 1 and report.schema_current
    assert report.audit.entries == report.audit.size >= report.audit.manifest_size > 2_000


def test_the_archive_holds_no_secret_in_clear(original: Original) -> None:
    data = original.archive.read_bytes()
    assert SECRET.encode() not in data and b"BEGIN" not in data and b"infracms.db" not in data
    assert original.archive.stat().st_mode & 0o077 == 0


@pytest.mark.security
def test_a_wrong_passphrase_is_refused_and_nothing_is_written(
    original: Original, tmp_path: Path
) -> None:
    target = restored_settings(tmp_path)
    with pytest.raises(ArchiveRefused, match="wrong passphrase"):
        node_backup.restore(
            archive=original.archive,
            passphrase=b"not the passphrase at all",
            settings=target,
            actor=ADMIN,
        )
    assert not target.data_dir.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no work folder left behind either


@pytest.mark.security
@pytest.mark.parametrize("where", [0.02, 0.5, 0.98])
def test_a_changed_byte_anywhere_is_refused(
    original: Original, tmp_path: Path, where: float
) -> None:
    data = bytearray(original.archive.read_bytes())
    data[int(len(data) * where) or 100] ^= 0x01
    tampered = tmp_path / "tampered.infracms-backup"
    tampered.write_bytes(bytes(data))
    target = restored_settings(tmp_path)
    with pytest.raises(ArchiveRefused, match=r"changed or truncated|not a backup"):
        restore(tampered, target)
    assert not target.data_dir.exists()


@pytest.mark.security
@pytest.mark.parametrize("keep", ["half", "one chunk", "all but the tag"])
def test_a_truncated_archive_is_refused(original: Original, tmp_path: Path, keep: str) -> None:
    data = original.archive.read_bytes()
    header = 79
    cut = {
        "half": len(data) // 2,
        "one chunk": header + (1 << 20) + 16,
        "all but the tag": len(data) - 16,
    }[keep]
    if cut >= len(data):
        cut = header + 16  # the archive is one chunk: keep nothing of it but a tag
    short = tmp_path / "short.infracms-backup"
    short.write_bytes(data[:cut])
    target = restored_settings(tmp_path)
    with pytest.raises(ArchiveRefused, match="truncated"):
        restore(short, target)
    assert not target.data_dir.exists()


def test_a_non_empty_data_dir_is_refused_without_force(original: Original, tmp_path: Path) -> None:
    target = restored_settings(tmp_path)
    target.data_dir.mkdir()
    (target.data_dir / "notes.txt").write_text("mine")
    with pytest.raises(Conflict, match="not empty: give --force"):
        restore(original.archive, target)
    assert snapshot_of(target.data_dir) == {"notes.txt": b"mine"}


def test_force_replaces_the_same_node(original: Original, tmp_path: Path) -> None:
    target = restored_settings(tmp_path)
    restore(original.archive, target)
    (target.data_dir / "left-over.txt").write_text("from before")
    report = restore(original.archive, target, force=True)
    assert report.replaced and not (target.data_dir / "left-over.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["restored"]


@pytest.mark.security
def test_another_nodes_archive_does_not_replace_a_node(original: Original, tmp_path: Path) -> None:
    other = make_settings(tmp_path / "restored")  # a node of its own key, where we restore
    ensure_identity(other)
    (other.data_dir / "infracms.db").write_bytes(b"its database")
    before = snapshot_of(other.data_dir)
    with pytest.raises(Conflict, match="key of another node"):
        restore(original.archive, other, force=True)
    assert snapshot_of(other.data_dir) == before


def test_retention_keeps_the_newest(original: Original, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    names = [f"{node_backup.archive_prefix('infracms.local')}2026010{i}T000000000000Z.infracms-backup"
             for i in range(1, 5)]  # fmt: skip
    others = [
        "other.node-20260101T000000000000Z.infracms-backup",
        "infracms.local-2-20260101T000000000000Z.infracms-backup",  # another node's
        "notes.txt",
    ]
    for name in [*names, *others]:
        (folder / name).write_text("x")
    removed = node_backup.prune(folder, "infracms.local", 2)
    assert [p.name for p in removed] == names[:2]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*names[2:], *others])


def test_create_with_keep_prunes_and_is_audited(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    for _ in range(3):
        report = node_backup.create(
            settings=settings,
            engine=engine,
            actor=ADMIN,
            to=tmp_path / "backups",
            passphrase=PASSPHRASE,
            keep=2,
            kdf_log2_n=FAST_KDF,
        )
    assert len(report.pruned) == 1
    assert len(list((tmp_path / "backups").iterdir())) == 2
    with session_scope(engine) as session:
        page = audit.list_entries(session=session, actor=ADMIN, action="node.backup")
    assert page.total == 3
    assert [report.pruned[0].name] in [entry.payload["pruned"] for entry in page.items]


@pytest.mark.security
def test_only_node_admins_back_up(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    owner = member_actor(make_org(engine, "clinic"), Role.owner, "olga")
    size = audit_size(engine)
    with pytest.raises(PermissionDenied):
        node_backup.create(
            settings=settings,
            engine=engine,
            actor=owner,
            to=tmp_path / "backups",
            passphrase=PASSPHRASE,
        )
    assert audit_size(engine) == size and not (tmp_path / "backups").exists()
    with pytest.raises(InvalidInput, match="shorter than 12"):
        node_backup.create(
            settings=settings, engine=engine, actor=ADMIN, to=tmp_path, passphrase=b"short"
        )


def test_a_key_kept_in_the_environment_must_be_brought_back(tmp_path: Path) -> None:
    """With INFRACMS_SECRET_KEY (docker-compose), the keyring is not in the archive: the
    report says so, a restore without it is refused, and with it the secrets open."""
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    settings = make_settings(tmp_path / "var", secret_key=key)
    engine = make_engine(settings)
    initialise(settings, engine)
    make_org(engine, "clinic")
    store_secret(settings, engine)
    made = node_backup.create(
        settings=settings,
        engine=engine,
        actor=ADMIN,
        to=tmp_path / "backups",
        passphrase=PASSPHRASE,
        kdf_log2_n=FAST_KDF,
    )
    engine.dispose()
    assert made.outside and "INFRACMS_SECRET_KEY" in made.outside[0]
    verified = node_backup.verify(archive=made.path, passphrase=PASSPHRASE, settings=settings)
    assert verified.secrets == 1
    without = make_settings(tmp_path / "restored")
    with pytest.raises(ConfigurationError, match=r"INFRACMS_SECRET_KEY \(key id"):
        restore(made.path, without)
    assert not without.data_dir.exists()
    brought = make_settings(tmp_path / "restored", secret_key=key)
    assert restore(made.path, brought).verified.secrets == 1


def test_verify_uses_the_archived_keys_not_the_verifiers(
    original: Original, tmp_path: Path
) -> None:
    other_key = base64.b64encode(secrets.token_bytes(32)).decode()
    elsewhere = make_settings(tmp_path / "var", secret_key=other_key)
    report = node_backup.verify(archive=original.archive, passphrase=PASSPHRASE, settings=elsewhere)
    assert report.secrets == 1


def store_secret(settings: Settings, engine: Engine) -> None:
    with session_scope(engine, write=True) as session:
        credentials.create_credential(
            session=session,
            actor=ADMIN,
            keyring=load_keyring(settings),
            organisation="clinic",
            data={"name": "root-pw", "kind": "password", "secret": SECRET},
        )
