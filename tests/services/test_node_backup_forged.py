"""Archives made by someone who holds the passphrase (or by a broken writer): a file the
manifest does not vouch for, a name outside the archive's folders, and a log that lost
entries its peers cosigned. Each is refused, and nothing is restored."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from infracms.db import make_engine
from infracms.errors import AuditVerificationError
from infracms.services import audit, node_backup
from infracms.services.node_backup_archive import ArchiveWriter, CosignedHead, Manifest, unpack
from infracms.services.node_backup_stream import ArchiveRefused, Header
from tests.conftest import make_settings
from tests.helpers import ADMIN
from tests.services.backup_node import PASSPHRASE, Original, fill_log

pytestmark = pytest.mark.security


def repack(
    original: Original,
    tmp_path: Path,
    change: Callable[[Manifest], Manifest],
    extra: dict[str, bytes] | None = None,
) -> Path:
    """The original archive unpacked and packed again, its manifest changed by `change`."""
    folder = tmp_path / "unpacked"
    folder.mkdir()
    with original.archive.open("rb") as source:
        manifest = unpack(source, PASSPHRASE, folder)
    forged = tmp_path / "forged.infracms-backup"
    with forged.open("wb") as out:
        writer = ArchiveWriter(out, PASSPHRASE, Header.fresh(log2_n=10))
        for entry in manifest.files:
            writer.add(entry.path, folder / entry.path)
        for name, data in (extra or {}).items():
            path = tmp_path / "extra"
            path.write_bytes(data)
            writer.add(name, path)
        writer.finish(change(manifest.model_copy(update={"files": writer.files})))
    shutil.rmtree(folder)
    return forged


def test_a_file_whose_hash_differs_from_the_manifest_is_refused(
    original: Original, tmp_path: Path
) -> None:
    def lie(manifest: Manifest) -> Manifest:
        files = [f.model_copy(update={"sha256": "0" * 64}) if f.path == "data/secret.key" else f
                 for f in manifest.files]  # fmt: skip
        return manifest.model_copy(update={"files": files})

    forged = repack(original, tmp_path, lie)
    target = make_settings(tmp_path / "restored")
    with pytest.raises(
        ArchiveRefused, match=r"data/secret.key has SHA-256 .*, the manifest says 0+"
    ):
        node_backup.restore(archive=forged, passphrase=PASSPHRASE, settings=target, actor=ADMIN)
    assert not target.data_dir.exists()


def test_a_file_the_manifest_does_not_list_is_refused(original: Original, tmp_path: Path) -> None:
    files: list[str] = []

    def keep_list(manifest: Manifest) -> Manifest:
        files.extend(f.path for f in manifest.files)
        return manifest.model_copy(
            update={"files": [f for f in manifest.files if f.path != "data/planted.txt"]}
        )

    forged = repack(original, tmp_path, keep_list, {"data/planted.txt": b"planted"})
    with pytest.raises(ArchiveRefused, match=r"data/planted.txt is in the archive but not in"):
        node_backup.verify(archive=forged, passphrase=PASSPHRASE, settings=original.settings)


@pytest.mark.parametrize("name", ["../escaped", "/etc/cron.d/evil", "elsewhere/file"])
def test_a_name_outside_data_and_database_is_refused(
    original: Original, tmp_path: Path, name: str
) -> None:
    forged = repack(original, tmp_path, lambda m: m, {name: b"evil"})
    target = make_settings(tmp_path / "restored")
    with pytest.raises(ArchiveRefused, match="outside data/ and database/"):
        node_backup.restore(archive=forged, passphrase=PASSPHRASE, settings=target, actor=ADMIN)
    assert not (tmp_path / "escaped").exists() and not target.data_dir.exists()


def test_a_log_that_lost_entries_its_peers_cosigned_is_refused(
    original: Original, tmp_path: Path
) -> None:
    """The node went on after the snapshot and a peer cosigned a later checkpoint: an
    archive whose log stops before it cannot be passed off as the node's latest state."""
    later = make_settings(tmp_path / "later")
    shutil.copytree(original.settings.data_dir, later.data_dir)
    engine = make_engine(later)
    fill_log(engine, 10)
    signed = audit.sign_checkpoint(engine=engine, settings=later)
    engine.dispose()
    cosigned = CosignedHead(size=signed.size, checkpoint=signed.note, witnesses=["peer.example"])

    def seen_by_peers(manifest: Manifest) -> Manifest:
        head = manifest.audit.model_copy(update={"cosigned": cosigned})
        return manifest.model_copy(update={"audit": head})

    forged = repack(original, tmp_path, seen_by_peers)
    with pytest.raises(AuditVerificationError, match=f"{signed.size}"):
        node_backup.verify(archive=forged, passphrase=PASSPHRASE, settings=original.settings)
    target = make_settings(tmp_path / "restored")
    with pytest.raises(AuditVerificationError):
        node_backup.restore(archive=forged, passphrase=PASSPHRASE, settings=target, actor=ADMIN)
    assert not target.data_dir.exists()
