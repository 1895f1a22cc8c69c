"""What a node backup holds, and packing it: a tar stream, gzip, the encrypted stream.

Inside the encryption (``node_backup_stream``) and gzip is a POSIX tar of

    database/infracms.db | database/infracms.pgdump   the database snapshot
    data/<path>                                        every other file of the data dir
    manifest.json                                      last: every file above with its
                                                       SHA-256, the node, the audit head

Unpacking writes only regular files and folders under ``data/`` and ``database/``,
hashes each as it is written, and checks the set against the manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import zlib
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from pydantic import BaseModel, Field, ValidationError

from infracms.services.node_backup_stream import (
    ArchiveRefused,
    DecryptingReader,
    EncryptingWriter,
    Header,
)

MANIFEST = "manifest.json"
PLACES = ("data", "database")
COPY_BYTES = 1 << 20


class FileEntry(BaseModel):
    """One file of the archive."""

    path: str
    sha256: str
    size: int = Field(ge=0)
    mode: int = Field(ge=0, le=0o777)


class NodeIdentity(BaseModel):
    """Which node the archive is of."""

    name: str
    base_url: str
    public_key: str = Field(description="base64 of the raw Ed25519 public key")
    verifier_key: str = Field(description="the audit log's verifier key, name+id+key")


class DatabaseSnapshot(BaseModel):
    """The database's snapshot and its schema."""

    kind: Literal["sqlite", "postgresql"]
    path: str
    schema_revision: str


class CosignedHead(BaseModel):
    """The latest checkpoint peers cosigned, with who did."""

    size: int = Field(ge=0)
    checkpoint: str
    witnesses: list[str]


class AuditHead(BaseModel):
    """The audit log's latest signed checkpoint when the backup was taken."""

    size: int = Field(ge=0)
    checkpoint: str
    cosigned: CosignedHead | None = None


class KeyPlaces(BaseModel):
    """Where the node's keys were: in the archive, or to be brought by the operator."""

    keyring: Literal["archive", "environment", "outside"]
    keyring_ids: list[str]
    identity: Literal["archive", "outside"]
    keyring_file: str | None = Field(default=None, description="its path in the data dir")
    identity_file: str | None = Field(default=None, description="its path in the data dir")


class Manifest(BaseModel):
    """``manifest.json``: what the archive holds and what it must prove on restore."""

    format: Literal["infracms-backup"] = "infracms-backup"
    version: Literal[1] = 1
    created_at: datetime
    node: NodeIdentity
    database: DatabaseSnapshot
    audit: AuditHead
    keys: KeyPlaces
    files: list[FileEntry]


class _Hashing:
    """A file read through, hashing what is read."""

    def __init__(self, source: BinaryIO) -> None:
        self.source, self.digest = source, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.digest.update(data)
        return data


class ArchiveWriter:
    """Writes the archive to `out`: add files, then the manifest, then close."""

    def __init__(self, out: BinaryIO, passphrase: bytes, header: Header) -> None:
        self._sealed = EncryptingWriter(out, passphrase, header)
        self._gzip = gzip.GzipFile(fileobj=self._sealed, mode="wb", compresslevel=1, mtime=0)
        self._tar = tarfile.open(  # noqa: SIM115 (closed by finish)
            fileobj=self._gzip, mode="w|", format=tarfile.PAX_FORMAT
        )
        self.files: list[FileEntry] = []

    def add(self, name: str, path: Path) -> None:
        """Add the file at `path` as `name` (``data/…`` or ``database/…``), hashing it."""
        with path.open("rb") as source:
            stat = os.fstat(source.fileno())
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = stat.st_size, stat.st_mode & 0o777, stat.st_mtime
            hashing = _Hashing(source)
            self._tar.addfile(info, hashing)
        self.files.append(
            FileEntry(path=name, sha256=hashing.digest.hexdigest(), size=info.size, mode=info.mode)
        )

    def finish(self, manifest: Manifest) -> None:
        """Add the manifest last and seal the stream."""
        body = manifest.model_dump_json(indent=2).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode = len(body), 0o600
        self._tar.addfile(info, _Bytes(body))
        self._tar.close()
        self._gzip.close()
        self._sealed.close()


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.at + size
        chunk, self.at = self.data[self.at : end], min(end, len(self.data))
        return chunk


def unpack(source: BinaryIO, passphrase: bytes, into: Path) -> Manifest:
    """Decrypt and unpack an archive into the empty folder `into`; check it; its manifest.

    Raises ``ArchiveRefused`` naming what is wrong: the passphrase, a chunk, a name, a
    file that the manifest does not list or whose hash differs.
    """
    reader = DecryptingReader(source, passphrase)
    written: dict[str, FileEntry] = {}
    manifest: Manifest | None = None
    try:
        with tarfile.open(fileobj=reader, mode="r|gz") as tar:  # type: ignore[call-overload]
            for member in tar:
                if manifest is not None:
                    raise ArchiveRefused(f"{member.name} follows the manifest")
                if member.name == MANIFEST and member.isfile():
                    manifest = _read_manifest(tar.extractfile(member))
                    continue
                entry = _extract(tar, member, into)
                if entry is not None:
                    written[entry.path] = entry
        while reader.read(COPY_BYTES):  # authenticate up to the last chunk
            pass
    except (tarfile.TarError, zlib.error, EOFError, gzip.BadGzipFile) as exc:
        raise ArchiveRefused(f"the archive's content is not a backup: {exc}") from exc
    if manifest is None:
        raise ArchiveRefused("the archive holds no manifest")
    _check_files(manifest.files, written)
    return manifest


def _read_manifest(stream: BinaryIO | None) -> Manifest:
    if stream is None:
        raise ArchiveRefused("the manifest is not a file")
    try:
        return Manifest.model_validate_json(stream.read())
    except ValidationError as exc:
        raise ArchiveRefused(f"the manifest is not valid: {exc}") from exc


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or path.parts[:1] not in [(p,) for p in PLACES]:
        raise ArchiveRefused(f"the archive holds {name!r}, outside data/ and database/")
    return path


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, into: Path) -> FileEntry | None:
    """Write one member under `into`; only folders and regular files are accepted."""
    target = into.joinpath(*_safe_name(member.name).parts)
    if member.isdir():
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        return None
    if not member.isfile():
        raise ArchiveRefused(f"{member.name} is not a regular file (links are not restored)")
    stream = tar.extractfile(member)
    if stream is None:
        raise ArchiveRefused(f"{member.name} cannot be read")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, member.mode & 0o700 or 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := stream.read(COPY_BYTES):
            digest.update(chunk)
            out.write(chunk)
    mode = member.mode & 0o777
    return FileEntry(path=member.name, sha256=digest.hexdigest(), size=member.size, mode=mode)


def _check_files(listed: Iterable[FileEntry], written: dict[str, FileEntry]) -> None:
    """Every file the manifest lists is there with its hash, and no other."""
    expected = {entry.path: entry for entry in listed}
    for path in sorted(expected.keys() - written.keys()):
        raise ArchiveRefused(f"{path} is in the manifest but not in the archive")
    for path in sorted(written.keys() - expected.keys()):
        raise ArchiveRefused(f"{path} is in the archive but not in the manifest")
    for path, entry in sorted(expected.items()):
        if written[path].sha256 != entry.sha256:
            raise ArchiveRefused(
                f"{path} has SHA-256 {written[path].sha256}, the manifest says {entry.sha256}"
            )
