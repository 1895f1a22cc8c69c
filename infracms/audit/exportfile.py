"""The offline export of an audit log: JSON Lines an auditor verifies with no database.

Layout, one UTF-8 line each, every line ending in a newline::

    {"checkpoints":C,"format":"infracms-audit-export","origin":O,"size":N,
     "verifier_key":K,"version":1}                      header (one line)
    {"checkpoint":"<signed note>"}                      C lines, sizes ascending,
                                                        the last one of size N
    {"leaf_hashes":"<base64 of up to 256 hashes>"}      ceil(N / 256) lines: the
                                                        level-0 hashes the log stored
    <entry 0 leaf data>                                 N lines: each entry's RFC 8785
    ...                                                 bytes, exactly as hashed
    <entry N-1 leaf data>

Why this order: the checkpoints and the leaf hashes come first so that a verifier
can check the leaf hashes against every signed root before it reads a single entry,
and then stream the entries once, naming the exact entry that does not hash to its
authenticated leaf hash. Entries are carried as they were hashed (canonical JSON holds
no newline), so ``jq`` reads the entry lines of an export as they are.

An export ends at a checkpoint: every entry it carries is covered by a signature.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from infracms.audit.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint
from infracms.audit.errors import AuditVerificationError
from infracms.audit.merkle import HASH_SIZE, Hash, LeafHash
from infracms.audit.note import Verifier, parse_note

FORMAT = "infracms-audit-export"
VERSION = 1
LEAF_HASHES_PER_LINE = 256
"""Like a C2SP tlog-tiles level-0 tile: 256 hashes, 8,192 bytes, per line."""


@dataclass(frozen=True)
class ExportHeader:
    """The first line of an export: whose log it is and how much of it follows."""

    origin: str
    verifier_key: str
    size: int
    checkpoints: int


@dataclass(frozen=True)
class Export:
    """A whole export read back into memory (for tests and small logs)."""

    header: ExportHeader
    checkpoints: tuple[str, ...]
    leaf_hashes: tuple[LeafHash, ...]
    entries: tuple[bytes, ...]


def _json_line(value: dict[str, object]) -> bytes:
    """One compact JSON object, keys sorted, and a newline."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode() + b"\n"


def header_line(header: ExportHeader) -> bytes:
    """The header line of an export."""
    return _json_line(
        {
            "format": FORMAT,
            "version": VERSION,
            "origin": header.origin,
            "verifier_key": header.verifier_key,
            "size": header.size,
            "checkpoints": header.checkpoints,
        }
    )


def _opened(checkpoints: Sequence[str], verifier_key: str) -> list[Checkpoint]:
    """The checkpoints, each verified, refusing an export that would not verify."""
    if not checkpoints:
        raise ValueError("an export needs at least one signed checkpoint")
    verifier = Verifier.from_key_string(verifier_key)
    origin = parse_checkpoint(parse_note(checkpoints[0]).text).origin
    opened = [open_checkpoint(c, verifier, origin=origin) for c in checkpoints]
    sizes = [c.size for c in opened]
    if sizes != sorted(sizes):
        raise ValueError(f"checkpoint sizes must ascend, got {sizes}")
    return opened


def _leaf_hash_lines(leaf_hashes: Iterable[LeafHash], size: int) -> Iterator[bytes]:
    """The leaf-hash lines, 256 hashes each; refuses a count other than ``size``."""
    chunk: list[bytes] = []
    count = 0
    for leaf in leaf_hashes:
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"leaf hash {count} is {len(leaf)} bytes, expected {HASH_SIZE}")
        chunk.append(leaf)
        count += 1
        if len(chunk) == LEAF_HASHES_PER_LINE:
            yield _json_line({"leaf_hashes": base64.b64encode(b"".join(chunk)).decode()})
            chunk = []
    if chunk:
        yield _json_line({"leaf_hashes": base64.b64encode(b"".join(chunk)).decode()})
    if count != size:
        raise ValueError(f"got {count} leaf hashes, expected {size} (the last checkpoint's size)")


def _entry_lines(entries: Iterable[bytes], size: int) -> Iterator[bytes]:
    """The entry lines, exactly as hashed; refuses a count other than ``size``."""
    count = 0
    for count, data in enumerate(entries, start=1):
        if b"\n" in data:
            raise ValueError(f"entry {count - 1} holds a newline; leaf data must be one line")
        yield data + b"\n"
    if count != size:
        raise ValueError(f"got {count} entries, expected {size} (the last checkpoint's size)")


def export_lines(
    *,
    verifier_key: str,
    checkpoints: Sequence[str],
    leaf_hashes: Iterable[LeafHash],
    entries: Iterable[bytes],
) -> Iterator[bytes]:
    """The lines of an export, streamed (for an HTTP response or a file).

    ``checkpoints`` are signed notes, ascending; the last one's size is the number of
    ``leaf_hashes`` (as stored at level 0) and ``entries`` (leaf data, by index) to
    follow. A count that does not match raises ``ValueError`` part-way through:
    discard what was written.
    """
    opened = _opened(checkpoints, verifier_key)
    size = opened[-1].size
    yield header_line(ExportHeader(opened[0].origin, verifier_key, size, len(checkpoints)))
    for signed in checkpoints:
        yield _json_line({"checkpoint": signed})
    yield from _leaf_hash_lines(leaf_hashes, size)
    yield from _entry_lines(entries, size)


def write_export(
    out: BinaryIO,
    *,
    verifier_key: str,
    checkpoints: Sequence[str],
    leaf_hashes: Iterable[LeafHash],
    entries: Iterable[bytes],
) -> None:
    """Write an export to a binary stream (see :func:`export_lines`)."""
    for line in export_lines(
        verifier_key=verifier_key, checkpoints=checkpoints, leaf_hashes=leaf_hashes, entries=entries
    ):
        out.write(line)


def _load_object(line: bytes, number: int, key: str) -> dict[str, object]:
    """JSON line ``number`` (1-based) as an object holding ``key``, refusing anything else."""
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise AuditVerificationError(f"export line {number} is not JSON: {exc}") from exc
    if not isinstance(value, dict) or key not in value:
        raise AuditVerificationError(f"export line {number} is not a {key!r} line")
    return value


def parse_header(line: bytes) -> ExportHeader:
    """Parse the header line of an export."""
    value = _load_object(line, 1, "format")
    if value["format"] != FORMAT or value.get("version") != VERSION:
        raise AuditVerificationError(
            f"export is {value['format']!r} version {value.get('version')!r}, "
            f"expected {FORMAT!r} version {VERSION}"
        )
    try:
        size, count = value["size"], value["checkpoints"]
        if type(size) is not int or type(count) is not int or size < 0 or count < 0:
            raise TypeError(f"size {size!r} and checkpoints {count!r} must be counts")
        return ExportHeader(
            origin=str(value["origin"]),
            verifier_key=str(value["verifier_key"]),
            size=size,
            checkpoints=count,
        )
    except (KeyError, TypeError) as exc:
        raise AuditVerificationError(f"export header is incomplete: {exc!r}") from exc


def _decode_hashes(text: object, number: int) -> list[LeafHash]:
    """The hashes packed in one leaf-hash line."""
    try:
        raw = binascii.a2b_base64(str(text).encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise AuditVerificationError(f"export line {number}: leaf hashes are not base64") from exc
    if not raw or len(raw) % HASH_SIZE:
        raise AuditVerificationError(
            f"export line {number} holds {len(raw)} bytes of leaf hashes, "
            f"expected a non-zero multiple of {HASH_SIZE}"
        )
    return [LeafHash(Hash(raw[i : i + HASH_SIZE])) for i in range(0, len(raw), HASH_SIZE)]


def read_export(stream: BinaryIO) -> Export:
    """Read a whole export into memory, checking its layout (not its signatures)."""
    lines = iter(stream)
    header = parse_header(next(lines, b""))
    number = 1
    checkpoints: list[str] = []
    for number, line in zip(range(2, header.checkpoints + 2), lines, strict=False):
        checkpoints.append(str(_load_object(line, number, "checkpoint")["checkpoint"]))
    hashes: list[LeafHash] = []
    while len(hashes) < header.size:
        number += 1
        packed = _load_object(next(lines, b"{}"), number, "leaf_hashes")
        hashes.extend(_decode_hashes(packed["leaf_hashes"], number))
    if len(checkpoints) != header.checkpoints or len(hashes) != header.size:
        raise AuditVerificationError(
            f"export holds {len(checkpoints)} checkpoints and {len(hashes)} leaf hashes, "
            f"header says {header.checkpoints} and {header.size}"
        )
    entries = tuple(line.removesuffix(b"\n") for line in lines)
    return Export(header, tuple(checkpoints), tuple(hashes), entries)
