"""Name what happened to the first bad entry of an export: modified, deleted, inserted, moved.

Used by ``verifier`` once it has found a position whose line does not hash to the
leaf hash the log committed there. The evidence is the hash of every line of the
export and the committed leaf hashes; the verdict is read from where this line's
hash and the missing one appear:

- the line hashes to no committed leaf, and the next line is the missing entry:
  something was **inserted**; the next line is not either: the entry was **modified**;
- the line is a later committed entry and the missing one comes further on: entries
  were **reordered**; it never comes: the entry was **deleted**;
- the line is an earlier committed entry: a copy of it was **inserted**.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from infracms.audit._verifier_core import SIZE
from infracms.audit.errors import BadEntryError


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _committed(leaves: bytes, position: int) -> bytes:
    return leaves[position * SIZE : (position + 1) * SIZE]


def _find_committed(leaves: bytes, leaf: bytes) -> int | None:
    """The position whose committed leaf hash is ``leaf``, if any."""
    offset = leaves.find(leaf)
    while offset >= 0 and offset % SIZE:
        offset = leaves.find(leaf, offset + 1)
    return None if offset < 0 else offset // SIZE


def _find_line(lines: Sequence[bytes], leaf: bytes, start: int) -> int | None:
    """The first line at or after ``start`` that hashes to ``leaf``, if any."""
    return next((i for i in range(start, len(lines)) if lines[i] == leaf), None)


def classify(
    position: int, claimed: int | None, lines: Sequence[bytes], leaves: bytes, trusted: int
) -> BadEntryError:
    """The error for the bad line at ``position``, which claims index ``claimed``.

    ``lines`` are the leaf hashes of every entry line of the export, ``leaves`` the
    committed leaf hashes, authenticated by a signed root up to ``trusted``.
    """
    count = len(leaves) // SIZE
    if position >= count:
        return BadEntryError(
            f"position {position} holds an entry past the last checkpoint's size {count}: "
            "no signature covers it (inserted at the end)",
            position=position,
            reason="inserted",
        )
    error = _verdict(position, claimed, lines, leaves)
    if position >= trusted:
        error.args = (
            f"{error.args[0]} (a best guess: the export's leaf hashes past {trusted} "
            "do not match a signed root either)",
        )
    return error


def _verdict(
    position: int, claimed: int | None, lines: Sequence[bytes], leaves: bytes
) -> BadEntryError:
    """Read what happened at ``position`` from where its hashes appear."""
    want, got = _committed(leaves, position), lines[position]
    where = _find_committed(leaves, got)
    claim = "is not a canonical v1 entry" if claimed is None else f"claims index {claimed}"
    if where is not None and where > position:
        later = _find_line(lines, want, position + 1)
        if later is not None:
            return BadEntryError(
                f"entry {position} was moved to position {later} (entries reordered): "
                f"position {position} holds entry {where}",
                position=position,
                reason="reordered",
            )
        gone = f"entry {position}" if where == position + 1 else f"entries {position}..{where - 1}"
        return BadEntryError(
            f"{gone} deleted: position {position} holds entry {where}, expected entry {position}",
            position=position,
            reason="deleted",
        )
    if where is not None and where < position:
        return BadEntryError(
            f"position {position} holds a copy of entry {where} (inserted), expected entry "
            f"{position}",
            position=position,
            reason="inserted",
        )
    if where == position:
        return BadEntryError(
            f"entry {position} is the one the log signed, but it {claim}: the log itself "
            "holds a malformed entry",
            position=position,
            reason="malformed",
        )
    if position + 1 < len(lines) and lines[position + 1] == want:
        return BadEntryError(
            f"position {position} holds an entry that is not in the log (inserted; it "
            f"{claim}), expected entry {position}, which follows it",
            position=position,
            reason="inserted",
        )
    return BadEntryError(
        f"entry {position} was modified: its leaf hash is {_b64(got)}, expected "
        f"{_b64(want)} as signed" + ("" if claimed == position else f" (and it {claim})"),
        position=position,
        reason="modified" if claimed is not None else "malformed",
    )
