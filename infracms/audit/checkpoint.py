"""C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): a log's signed size and root.

The body is a note text of at least three lines: the origin, the tree size in decimal
with no leading zeroes, the base64 root hash of the RFC 9162 tree at that size, then
optional non-empty extension lines. It is signed as a C2SP signed-note (``note``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from infracms.audit.errors import AuditVerificationError
from infracms.audit.merkle import HASH_SIZE, Hash, RootHash
from infracms.audit.note import Signer, Verifier, open_note, sign_note

MAX_SIZE = 2**63 - 1
"""Go's tlog keeps sizes in an int64; larger sizes would not interoperate."""


@dataclass(frozen=True)
class Checkpoint:
    """A log's origin, its tree size and its root hash at that size, plus extension lines."""

    origin: str
    size: int
    root: RootHash
    extensions: tuple[str, ...] = ()

    @property
    def root_b64(self) -> str:
        """The root hash in base64, as it appears in the body."""
        return base64.b64encode(self.root).decode()


def _check_line(line: str, what: str) -> None:
    """A body line is non-empty and holds no newline or other control character."""
    if not line:
        raise ValueError(f"checkpoint {what} must not be empty")
    if any(char < " " for char in line):
        raise ValueError(f"checkpoint {what} {line!r} holds a control character")


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """C2SP tlog-checkpoint section Note text: the body ``origin\\nsize\\nroot\\n[ext\\n...]``."""
    _check_line(checkpoint.origin, "origin")
    for line in checkpoint.extensions:
        _check_line(line, "extension line")
    if not 0 <= checkpoint.size <= MAX_SIZE:
        raise ValueError(f"checkpoint size must be in [0, {MAX_SIZE}], got {checkpoint.size}")
    if len(checkpoint.root) != HASH_SIZE:
        raise ValueError(f"checkpoint root is {len(checkpoint.root)} bytes, expected {HASH_SIZE}")
    lines = [checkpoint.origin, str(checkpoint.size), checkpoint.root_b64, *checkpoint.extensions]
    return "".join(line + "\n" for line in lines)


def _parse_size(line: str) -> int:
    """The tree size line: ASCII decimal, no leading zeroes, ``0`` for the empty tree."""
    if not line.isascii() or not line.isdigit() or (line != "0" and line.startswith("0")):
        raise AuditVerificationError(f"checkpoint size {line!r} is not a decimal without zeroes")
    size = int(line)
    if size > MAX_SIZE:
        raise AuditVerificationError(f"checkpoint size {size} is over {MAX_SIZE}")
    return size


def _parse_root(line: str) -> RootHash:
    """The root hash line: canonical standard base64 of 32 bytes (RFC 4648 section 4)."""
    try:
        raw = binascii.a2b_base64(line.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise AuditVerificationError(f"checkpoint root {line!r} is not base64") from exc
    if len(raw) != HASH_SIZE or base64.b64encode(raw).decode() != line:
        raise AuditVerificationError(
            f"checkpoint root {line!r} is not the canonical base64 of {HASH_SIZE} bytes"
        )
    return RootHash(Hash(raw))


def parse_checkpoint(text: str) -> Checkpoint:
    """C2SP tlog-checkpoint: parse a body strictly; raise on anything the spec forbids."""
    if not text.endswith("\n"):
        raise AuditVerificationError("checkpoint body must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise AuditVerificationError(f"checkpoint body has {len(lines)} lines, expected 3 or more")
    origin, size, root, *extensions = lines
    if not origin:
        raise AuditVerificationError("checkpoint origin line is empty")
    if any(not line for line in extensions):
        raise AuditVerificationError("checkpoint has an empty extension line")
    return Checkpoint(
        origin=origin, size=_parse_size(size), root=_parse_root(root), extensions=tuple(extensions)
    )


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """A signed note (C2SP signed-note) whose body is the checkpoint (C2SP tlog-checkpoint)."""
    return sign_note(format_checkpoint(checkpoint), signer)


def open_checkpoint(
    signed: str | bytes, verifier: Verifier, *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint against ``verifier`` and parse its body.

    ``origin`` defaults to the verifier's key name, which C2SP tlog-checkpoint says the
    origin SHOULD match; pass the expected origin explicitly where it differs.
    """
    note = open_note(signed, [verifier])
    checkpoint = parse_checkpoint(note.text)
    want = verifier.name if origin is None else origin
    if checkpoint.origin != want:
        raise AuditVerificationError(
            f"checkpoint origin is {checkpoint.origin!r}, expected {want!r}"
        )
    return checkpoint
