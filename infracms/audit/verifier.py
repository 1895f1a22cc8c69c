"""Verify an exported audit log offline, with nothing but the export and a public key.

What is checked, in order (the layout is in ``exportfile``'s docstring):

1. every checkpoint carries a valid Ed25519 signature by the trusted verifier key
   (C2SP signed-note), has the export's origin, and sizes ascend to the export's size;
2. the export's leaf hashes are hashed into a tree (RFC 9162) and each checkpoint's
   signed root is compared with that tree's root at its size: the leaf hashes up to
   the last checkpoint that matches are authenticated;
3. the entries are streamed once: each must be a canonical v1 entry whose ``index``
   is its position, and each one's leaf hash must equal the authenticated one, which
   names the exact entry that was modified, deleted, inserted or moved;
4. where the leaf hashes themselves were rewritten, the entries' own tree is compared
   with every signed root, which names the first checkpoint they disagree with;
5. given a witness policy (``_verifier_cosign``), each checkpoint's cosignatures by the
   trusted witnesses are checked and counted, and the latest checkpoint must carry as
   many as the policy asks;
6. given checkpoints the auditor saved earlier (``_verifier_trusted``), the export must
   extend each: an RFC 9162 section 2.1.4 consistency proof from the saved size to the
   export's, built from the export's tree, must verify against the saved root. This is
   what catches a log rewritten and re-signed with the node key, or rolled back.

Because the entries' hashes equal authenticated leaf hashes, the tree of the entries
is the tree every checkpoint signed; consistency between checkpoints follows.

This module, ``_verifier_core`` and ``_verifier_cosign`` import nothing of the writer's
code (``merkle``, ``note``, ``checkpoint``, ``entry``, ``exportfile``) nor of
``federation``: an auditor's check must not share a bug with what it checks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from infracms.audit._verifier_core import (
    SIZE,
    CheckFailed,
    TrustedKey,
    checkpoint_body,
    note_text,
    open_signed,
    root_at,
    tree_levels,
)
from infracms.audit._verifier_cosign import WitnessPolicy
from infracms.audit._verifier_diagnosis import classify
from infracms.audit._verifier_trusted import (
    TrustedMatch,
    check_trusted,
    open_trusted,
    split_notes,
)
from infracms.audit.errors import AuditVerificationError, BadCheckpointError, BadEntryError

__all__ = [
    "TrustedMatch",
    "VerificationReport",
    "WitnessPolicy",
    "WitnessPolicyError",
    "WitnessedCheckpoint",
    "verify_export",
    "verify_export_file",
]

FORMAT = "infracms-audit-export"
_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
_ENTRY_START = re.compile(
    rb'\{"action":' + _STRING + rb',"actor":\{"id":(?:null|' + _STRING + rb"),"
    rb'"kind":"(?:user|token|peer|system)","name":' + _STRING + rb"\},"
    rb'"index":(0|[1-9][0-9]{0,15}),'
)
"""The start of every canonical v1 entry: RFC 8785 sorts ``action`` < ``actor`` < ``index``.

The verifier reads an entry's index from this fixed prefix instead of parsing the
whole JSON (which costs 4-7 us an entry, most of the 10 s budget at a million
entries); the rest of the entry is covered by its leaf hash.
"""
_ENTRY_END = b',"v":1}'


@dataclass(frozen=True)
class WitnessedCheckpoint:
    """A checkpoint of the export and the policy witnesses whose cosignatures verify on it."""

    number: int
    size: int
    cosigners: tuple[str, ...]


@dataclass(frozen=True)
class VerificationReport:
    """What verified: the log's origin, how many entries and checkpoints, the latest root.

    With a witness policy, ``witnessed`` lists every checkpoint with its cosigners.
    """

    origin: str
    entries: int
    checkpoints: int
    size: int
    root: bytes
    witnessed: tuple[WitnessedCheckpoint, ...] = ()
    policy: WitnessPolicy | None = None
    trusted: tuple[TrustedMatch, ...] = ()

    @property
    def root_b64(self) -> str:
        """The latest verified root hash, base64 as in a checkpoint."""
        return base64.b64encode(self.root).decode()


@dataclass(frozen=True)
class _Checkpoint:
    number: int
    origin: str
    size: int
    root: bytes
    cosigners: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Stop:
    """Where the scan of entries stopped: a line that is not the entry expected there."""

    position: int
    claimed: int | None
    line: bytes


@dataclass(frozen=True)
class _Header:
    origin: str
    verifier_key: str
    size: int
    checkpoints: int


class WitnessPolicyError(AuditVerificationError):
    """The log verified, but its latest checkpoint lacks the cosignatures the policy asks."""

    def __init__(self, message: str, *, report: VerificationReport) -> None:
        super().__init__(message)
        self.report = report


def verify_export_file(
    path: str | os.PathLike[str],
    verifier_key: str,
    *,
    origin: str | None = None,
    policy: WitnessPolicy | None = None,
    trusted: Sequence[str] = (),
) -> VerificationReport:
    """Verify the export file at ``path`` against ``verifier_key`` (see :func:`verify_export`)."""
    with open(path, "rb") as stream:
        return verify_export(stream, verifier_key, origin=origin, policy=policy, trusted=trusted)


def verify_export(
    lines: Iterable[bytes],
    verifier_key: str,
    *,
    origin: str | None = None,
    policy: WitnessPolicy | None = None,
    trusted: Sequence[str] = (),
) -> VerificationReport:
    """Verify an export, given as its lines (an open binary file will do).

    ``verifier_key`` is the trusted key string (``name+id+key``); ``origin``, if given,
    is the log origin expected; ``policy``, if given, the witnesses trusted and how many
    must cosign the latest checkpoint; ``trusted``, signed checkpoints the auditor saved
    earlier (each text may hold several notes), which the export must extend. Returns a
    report, or raises ``BadCheckpointError``, ``BadEntryError``,
    ``TrustedCheckpointError`` or ``AuditVerificationError`` naming the first bad item
    and why, or ``WitnessPolicyError`` (carrying the report) when only the policy is
    not met.
    """
    try:
        key = TrustedKey.parse(verifier_key)
    except CheckFailed as exc:
        raise AuditVerificationError(f"the trusted verifier key is unusable: {exc}") from exc
    stream = iter(lines)
    header = _read_header(next(stream, b""), verifier_key, origin)
    saved = [open_trusted(n, key, header.origin) for text in trusted for n in split_notes(text)]
    if trusted and not saved:
        raise AuditVerificationError("the trusted checkpoint file holds no signed note")
    checkpoints = _read_checkpoints(stream, header, key, policy)
    leaves = _read_leaf_hashes(stream, header.size)
    levels = tree_levels(leaves)
    authenticated = _authenticated_size(levels, checkpoints)
    hashes, stop = _scan_entries(stream, header.size)
    if stop is not None or hashes != leaves[: len(hashes)] or len(hashes) < len(leaves):
        _diagnose(hashes, stop, stream, leaves, authenticated, checkpoints)
    if authenticated < header.size:  # the entries match leaf hashes no checkpoint signed
        _diagnose(hashes, None, iter(()), leaves, authenticated, checkpoints)
    last = checkpoints[-1]
    report = VerificationReport(
        header.origin,
        len(hashes) // SIZE,
        len(checkpoints),
        last.size,
        last.root,
        tuple(WitnessedCheckpoint(c.number, c.size, c.cosigners) for c in checkpoints),
        policy,
        check_trusted(levels, last.size, last.root, saved),
    )
    _check_policy(report)
    return report


def _check_policy(report: VerificationReport) -> None:
    """Refuse a log whose latest checkpoint has fewer cosignatures than the policy asks."""
    policy = report.policy
    if policy is None or len(report.witnessed[-1].cosigners) >= policy.minimum:
        return
    latest = report.witnessed[-1]
    missing = ", ".join(name for name in policy.names if name not in latest.cosigners)
    met = [c for c in report.witnessed if len(c.cosigners) >= policy.minimum]
    best = (
        f"checkpoint {met[-1].number} (size {met[-1].size}) is the latest that meets it"
        if met
        else "no checkpoint meets it"
    )
    raise WitnessPolicyError(
        f"the log verified ({report.entries} entries, {report.checkpoints} checkpoints), but "
        f"its latest checkpoint (size {latest.size}) carries {len(latest.cosigners)} "
        f"cosignature{'s' if len(latest.cosigners) != 1 else ''} by the witnesses trusted, "
        f"expected at least {policy.minimum} (missing: {missing}); {best}",
        report=report,
    )


def _read_header(line: bytes, verifier_key: str, origin: str | None) -> _Header:
    """The export's first line, checked against what the auditor trusts."""
    try:
        value = json.loads(line)
        header = _Header(
            value["origin"], value["verifier_key"], value["size"], value["checkpoints"]
        )
        ok = value["format"] == FORMAT and value["version"] == 1
    except (ValueError, KeyError, TypeError) as exc:
        raise AuditVerificationError(f"line 1 is not an {FORMAT} header: {exc!r}") from exc
    if not ok or type(header.size) is not int or type(header.checkpoints) is not int:
        raise AuditVerificationError(f"line 1 is not an {FORMAT} version 1 header")
    if header.verifier_key != verifier_key:
        raise AuditVerificationError(
            f"export is for key {header.verifier_key!r}, expected {verifier_key!r}"
        )
    if origin is not None and header.origin != origin:
        raise AuditVerificationError(f"export origin is {header.origin!r}, expected {origin!r}")
    if header.checkpoints < 1:
        raise AuditVerificationError("export has no checkpoint: nothing in it is signed")
    return header


def _read_checkpoints(
    stream: Iterator[bytes], header: _Header, key: TrustedKey, policy: WitnessPolicy | None
) -> list[_Checkpoint]:
    """Each checkpoint line, opened with the trusted key; sizes must ascend to the export's."""
    checkpoints: list[_Checkpoint] = []
    for number in range(header.checkpoints):
        checkpoint = _open_checkpoint(number, next(stream, b""), key, header.origin, policy)
        previous = checkpoints[-1].size if checkpoints else 0
        if checkpoint.size < previous:
            raise BadCheckpointError(
                f"checkpoint {number} has size {checkpoint.size}, expected at least {previous} "
                "(sizes ascend)",
                number=number,
                size=checkpoint.size,
            )
        checkpoints.append(checkpoint)
    if checkpoints[-1].size != header.size:
        raise BadCheckpointError(
            f"the last checkpoint has size {checkpoints[-1].size}, expected the export's "
            f"size {header.size}: entries past a checkpoint are not signed",
            number=len(checkpoints) - 1,
            size=checkpoints[-1].size,
        )
    return checkpoints


def _open_checkpoint(
    number: int, line: bytes, key: TrustedKey, origin: str, policy: WitnessPolicy | None
) -> _Checkpoint:
    """One checkpoint line: JSON, then a signed note by ``key`` holding a checkpoint body.

    With a policy, the trusted witnesses' cosignatures on it are checked too.
    """
    try:
        signed = json.loads(line)["checkpoint"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadCheckpointError(
            f"checkpoint {number}: expected a checkpoint line, got {line[:60]!r}",
            number=number,
            size=None,
        ) from exc
    size = None
    try:
        if not isinstance(signed, str):
            raise CheckFailed(f"the checkpoint is a {type(signed).__name__}, expected a string")
        body_origin, size, root = checkpoint_body(signed[: signed.rfind("\n\n") + 1])
        text = open_signed(signed, key)
        if checkpoint_body(text) != (body_origin, size, root):
            raise CheckFailed("the signed text differs from the body read")
        cosigners = () if policy is None else policy.cosigners(text, note_text(signed)[1])
    except CheckFailed as exc:
        at = "" if size is None else f" (size {size})"
        raise BadCheckpointError(
            f"checkpoint {number}{at}: {exc}", number=number, size=size
        ) from exc
    if body_origin != origin:
        raise BadCheckpointError(
            f"checkpoint {number} has origin {body_origin!r}, expected {origin!r}",
            number=number,
            size=size,
        )
    return _Checkpoint(number, body_origin, size, root, cosigners)


def _read_leaf_hashes(stream: Iterator[bytes], size: int) -> bytes:
    """The packed level-0 hashes the export carries, ``size`` of them."""
    chunks: list[bytes] = []
    have = 0
    while have < size:
        line = next(stream, b"")
        try:
            raw = base64.b64decode(json.loads(line)["leaf_hashes"], validate=True)
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditVerificationError(
                f"expected a leaf-hash line after {have} of {size} leaf hashes: {exc!r}"
            ) from exc
        if not raw or len(raw) % SIZE:
            raise AuditVerificationError(
                f"a leaf-hash line holds {len(raw)} bytes, expected a multiple of {SIZE}"
            )
        chunks.append(raw)
        have += len(raw) // SIZE
    leaves = b"".join(chunks)
    if len(leaves) != size * SIZE:
        raise AuditVerificationError(
            f"export carries {len(leaves)} bytes of leaf hashes, expected {size * SIZE}"
        )
    return leaves


def _authenticated_size(levels: list[bytes], checkpoints: Sequence[_Checkpoint]) -> int:
    """The largest size up to which the leaf hashes match every signed root."""
    trusted = 0
    for checkpoint in checkpoints:
        if root_at(levels, checkpoint.size) != checkpoint.root:
            break
        trusted = checkpoint.size
    return trusted


def _scan_entries(stream: Iterator[bytes], size: int) -> tuple[bytes, _Stop | None]:
    """Hash entries while each is a canonical v1 entry at its index (the hot loop).

    Returns the packed leaf hashes, and the line it stopped at, if it did.
    """
    match, sha256 = _ENTRY_START.match, hashlib.sha256
    packed = bytearray()  # 32 bytes a leaf, not a million small objects
    extend = packed.extend
    for position, line in enumerate(stream):
        data = line[:-1] if line.endswith(b"\n") else line
        start = match(data)
        if start is None or not data.endswith(_ENTRY_END):
            return bytes(packed), _Stop(position, None, line)
        if int(start[1]) != position or position >= size:
            return bytes(packed), _Stop(position, int(start[1]), line)
        extend(sha256(b"\x00" + data).digest())
    return bytes(packed), None


def _line_hash(line: bytes) -> bytes:
    """The leaf hash of an export line, whatever it holds."""
    return hashlib.sha256(b"\x00" + line.removesuffix(b"\n")).digest()


def _diagnose(
    hashes: bytes,
    stop: _Stop | None,
    rest: Iterator[bytes],
    leaves: bytes,
    trusted: int,
    checkpoints: Sequence[_Checkpoint],
) -> None:
    """Find the first bad entry or checkpoint and raise for it (the slow path)."""
    seen = [hashes[i : i + SIZE] for i in range(0, len(hashes), SIZE)]
    after = [] if stop is None else [stop.line]
    lines = seen + [_line_hash(line) for line in [*after, *rest]]
    first = _first_difference(hashes, leaves)
    if first is not None and first < trusted:
        raise classify(first, first, lines, leaves, trusted)
    _check_entry_roots(hashes, checkpoints, trusted)
    if stop is not None:
        raise classify(stop.position, stop.claimed, lines, leaves, trusted)
    size = checkpoints[-1].size
    if len(seen) < size:
        raise BadEntryError(
            f"entry {len(seen)} is missing: the export ends after {len(seen)} entries, "
            f"expected {size} (the last checkpoint's size)",
            position=len(seen),
            reason="deleted",
        )
    if first is not None:
        listed = base64.b64encode(leaves[first * SIZE : (first + 1) * SIZE]).decode()
        raise AuditVerificationError(
            f"the export lists leaf hash {listed} for entry {first}, but the entry hashes to "
            f"{base64.b64encode(seen[first]).decode()}, and the entries match every signed "
            "root: the export's leaf-hash list is corrupt, its entries are intact"
        )


def _first_difference(hashes: bytes, leaves: bytes) -> int | None:
    """The first position whose entry hash differs from the export's leaf hash."""
    if hashes == leaves[: len(hashes)]:
        return None
    position = next(
        i for i in range(0, len(hashes), SIZE) if hashes[i : i + SIZE] != leaves[i : i + SIZE]
    )
    return position // SIZE


def _check_entry_roots(hashes: bytes, checkpoints: Sequence[_Checkpoint], trusted: int) -> None:
    """Compare the entries' own tree with each signed root past the authenticated size."""
    levels = tree_levels(hashes)
    count, previous = len(hashes) // SIZE, trusted
    for checkpoint in checkpoints:
        if trusted < checkpoint.size <= count:
            got = root_at(levels, checkpoint.size)
            if got != checkpoint.root:
                raise BadCheckpointError(
                    f"checkpoint {checkpoint.number} signs root "
                    f"{base64.b64encode(checkpoint.root).decode()} for size {checkpoint.size}, "
                    f"but the entries give {base64.b64encode(got).decode()}: an entry in "
                    f"[{previous}, {checkpoint.size}) was changed together with its leaf hash "
                    "in the export, or the checkpoint was signed over other entries",
                    number=checkpoint.number,
                    size=checkpoint.size,
                )
            previous = checkpoint.size
