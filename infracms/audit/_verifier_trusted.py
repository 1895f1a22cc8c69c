"""The auditor's trust anchor: checkpoints an auditor saved earlier, checked against an export.

A node admin holds the node key, so an export rewritten and re-signed with it verifies
against that key alone. What they cannot forge is a checkpoint an auditor saved before:
the export must extend it. For each trusted checkpoint of size ``m`` and the export's
latest signed size ``n`` (``m <= n``), this module builds the RFC 9162 section 2.1.4.1
consistency proof from the export's own tree and verifies it (section 2.1.4.2) against
the trusted root and the export's signed root. A trusted size past the export's is a
rollback.

Written for the verifier alone, like ``_verifier_core`` (and importing only it), so a
bug in the writer's ``merkle`` cannot hide here too; the tests hold both to each other
and to Go's ``tlog.CheckTree``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from infracms.audit._verifier_core import (
    SIZE,
    CheckFailed,
    TrustedKey,
    checkpoint_body,
    open_signed,
)
from infracms.audit.errors import AuditVerificationError, TrustedCheckpointError

_DASH = "\u2014 "


@dataclass(frozen=True)
class TrustedCheckpoint:
    """A checkpoint the auditor saved: its origin, size and root (signature checked)."""

    origin: str
    size: int
    root: bytes

    @property
    def root_b64(self) -> str:
        """The root as the checkpoint writes it."""
        return base64.b64encode(self.root).decode()


@dataclass(frozen=True)
class TrustedMatch:
    """A trusted checkpoint the export extends, and the proof hashes that show it."""

    size: int
    root: bytes
    proof_hashes: int


def split_notes(text: str) -> list[str]:
    """The signed notes of a file of one or more notes written one after another.

    A note ends after the signature lines (``— name sig``) that follow its blank
    line; so ``infracms audit checkpoint >> saved.txt`` keeps a list of them.
    """
    notes: list[str] = []
    current: list[str] = []
    signing = False
    for line in text.splitlines(keepends=True):
        if signing and not line.startswith(_DASH):
            notes.append("".join(current))
            current, signing = [], False
        current.append(line)
        if line == "\n" and len(current) > 1:
            signing = True
    if current:
        notes.append("".join(current))
    return [note for note in notes if note.strip()]


def open_trusted(signed: str, key: TrustedKey, origin: str) -> TrustedCheckpoint:
    """A saved checkpoint, once its signature by ``key`` and its origin check out."""
    try:
        text = open_signed(signed, key)
        body_origin, size, root = checkpoint_body(text)
    except CheckFailed as exc:
        raise AuditVerificationError(f"the trusted checkpoint does not open: {exc}") from exc
    if body_origin != origin:
        raise AuditVerificationError(
            f"the trusted checkpoint is of log {body_origin!r}, expected {origin!r}"
        )
    return TrustedCheckpoint(body_origin, size, root)


def _hash_children(left: bytes, right: bytes) -> bytes:
    """RFC 9162 section 2.1.1: an interior node, ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def range_root(levels: list[bytes], begin: int, end: int) -> bytes:
    """RFC 9162 section 2.1.1: the hash of leaves ``[begin, end)`` from ``tree_levels``.

    ``begin`` is aligned to a power of two at least ``end - begin``, as every range of
    the section 2.1.4.1 recursion is, so the range splits into complete subtrees.
    """
    parts = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        index = begin >> level
        parts.append(levels[level][index * SIZE : (index + 1) * SIZE])
        begin += 1 << level
    result = parts[-1]
    for left in reversed(parts[:-1]):
        result = _hash_children(left, result)
    return result


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def consistency_proof(levels: list[bytes], old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 section 2.1.4.1: ``PROOF(old_size, D[new_size])`` from the tree's levels."""
    if not 0 < old_size < new_size:
        return []
    proof: list[bytes] = []
    low, high, m, whole = 0, new_size, old_size, True
    while m != high - low:
        k = _largest_power_of_two_below(high - low)
        if m <= k:
            proof.append(range_root(levels, low + k, high))
            high = low + k
        else:
            proof.append(range_root(levels, low, low + k))
            low, m, whole = low + k, m - k, False
    if not whole:
        proof.append(range_root(levels, low, high))
    proof.reverse()
    return proof


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 section 2.1.4.2: raise ``CheckFailed`` unless ``old_size`` is a prefix.

    Sizes ``0 < old_size < new_size``; the message says which root came out wrong.
    """
    if not proof:
        raise CheckFailed(f"the consistency proof from {old_size} to {new_size} is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_result = new_result = path[0]
    for value in path[1:]:
        if sn == 0:
            raise CheckFailed(f"the consistency proof from {old_size} to {new_size} is too long")
        if fn & 1 or fn == sn:
            old_result = _hash_children(value, old_result)
            new_result = _hash_children(value, new_result)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            new_result = _hash_children(new_result, value)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise CheckFailed(f"the consistency proof from {old_size} to {new_size} is too short")
    for label, got, want in (("old", old_result, old_root), ("new", new_result, new_root)):
        if got != want:
            raise CheckFailed(
                f"it gives {label} root {base64.b64encode(got).decode()}, expected "
                f"{base64.b64encode(want).decode()}"
            )


def _extends(levels: list[bytes], size: int, root: bytes, trusted: TrustedCheckpoint) -> int:
    """How many proof hashes show the export of ``size`` extends ``trusted``; else raise."""
    if trusted.size in (0, size):
        got = root if trusted.size == size else hashlib.sha256().digest()
        if got != trusted.root:
            raise CheckFailed(
                f"the export's tree of size {trusted.size} has root "
                f"{base64.b64encode(got).decode()}, expected {trusted.root_b64}"
            )
        return 0
    proof = consistency_proof(levels, trusted.size, size)
    verify_consistency(trusted.size, size, trusted.root, root, proof)
    return len(proof)


def check_trusted(
    levels: list[bytes], size: int, root: bytes, trusted: Sequence[TrustedCheckpoint]
) -> tuple[TrustedMatch, ...]:
    """Prove the export (tree ``levels``, signed ``size`` and ``root``) extends each of
    ``trusted``, smallest first; raise naming the first trusted size where they part."""
    matches: list[TrustedMatch] = []
    for checkpoint in sorted(trusted, key=lambda c: c.size):
        agreed = matches[-1].size if matches else None
        if checkpoint.size > size:
            raise _rollback(checkpoint, size, agreed)
        try:
            count = _extends(levels, size, root, checkpoint)
        except CheckFailed as exc:
            raise _parted(checkpoint, size, agreed, str(exc)) from exc
        matches.append(TrustedMatch(checkpoint.size, checkpoint.root, count))
    return tuple(matches)


def _since(agreed: int | None) -> str:
    if agreed is None:
        return "no earlier trusted checkpoint narrows it"
    return f"it still agrees with your checkpoint of size {agreed}"


def _rollback(
    checkpoint: TrustedCheckpoint, size: int, agreed: int | None
) -> TrustedCheckpointError:
    return TrustedCheckpointError(
        f"rollback: the export's log has size {size}, but your trusted checkpoint has size "
        f"{checkpoint.size} (root {checkpoint.root_b64}): the log lost "
        f"{checkpoint.size - size} entries the node had signed ({_since(agreed)})",
        trusted_size=checkpoint.size,
        export_size=size,
        agreed_size=agreed,
    )


def _parted(
    checkpoint: TrustedCheckpoint, size: int, agreed: int | None, why: str
) -> TrustedCheckpointError:
    where = f"[{agreed or 0}, {checkpoint.size})"
    return TrustedCheckpointError(
        f"the export parts from your trusted checkpoint at size {checkpoint.size}: the RFC "
        f"9162 consistency proof from size {checkpoint.size} to the export's size {size} "
        f"fails ({why}); an entry in {where} was rewritten and the log re-signed "
        f"({_since(agreed)})",
        trusted_size=checkpoint.size,
        export_size=size,
        agreed_size=agreed,
    )
