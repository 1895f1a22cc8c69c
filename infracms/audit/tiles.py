"""C2SP tlog-tiles (https://c2sp.org/tlog-tiles) read from the tree store.

A tile at level ``L`` and index ``N`` holds up to 256 consecutive hashes of tree level
``8 * L``, from number ``N * 256``: a full tile has 256 and never changes; a partial
tile (``.p/W``) holds the first ``W``. A level-0 tile lists leaf hashes. An entry
bundle (``tile/entries/N``) holds entries ``N * 256 …`` as big-endian uint16 lengths
followed by each entry's leaf data. ``N`` is written in path elements of three digits,
all but the last prefixed by ``x``: 1234067 is ``x001/x234/067``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from infracms.audit.merkle import NodeId
from infracms.audit.store import (
    ENTRIES,
    HASHES,
    StoreError,
    entry_records,
    leaf_data,
    node_key,
    select_entries,
    tree_state,
)

HEIGHT = 8
WIDTH = 1 << HEIGHT
MAX_LEVEL = 63 // HEIGHT
_ELEMENT = re.compile(r"x\d{3}")


@dataclass(frozen=True)
class TileRef:
    """A tile's level (``None`` for an entry bundle), index and width (256 when full)."""

    level: int | None
    index: int
    width: int = WIDTH


def format_index(index: int) -> str:
    """C2SP tlog-tiles: ``N`` as ``x001/x234/067``."""
    digits = f"{index:d}"
    digits = "0" * (-len(digits) % 3) + digits
    parts = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{part}" for part in parts[:-1]), parts[-1]])


def tile_path(tile: TileRef) -> str:
    """The path of a tile below the log prefix, e.g. ``tile/0/x001/234.p/7``."""
    level = "entries" if tile.level is None else str(tile.level)
    width = "" if tile.width == WIDTH else f".p/{tile.width}"
    return f"tile/{level}/{format_index(tile.index)}{width}"


def parse_tile_path(level: str, rest: str) -> TileRef:
    """Parse ``<L>`` and ``<N>[.p/<W>]``; raise ``ValueError`` on any other form."""
    number, width = rest, WIDTH
    if ".p/" in rest:
        number, _, given = rest.partition(".p/")
        if not given.isdigit() or given != str(int(given)) or not 0 < int(given) < WIDTH:
            raise ValueError(f"partial tile width {given!r} must be 1 to {WIDTH - 1}")
        width = int(given)
    *heads, last = number.split("/")
    if not all(_ELEMENT.fullmatch(head) for head in heads) or not re.fullmatch(r"\d{3}", last):
        raise ValueError(f"tile index {number!r} is not in x001/x234/067 form")
    index = int("".join(head[1:] for head in heads) + last)
    if format_index(index) != number:
        raise ValueError(f"tile index {number!r} is not in its shortest form")
    if level == "entries":
        return TileRef(None, index, width)
    if not level.isdigit() or level != str(int(level)) or int(level) > MAX_LEVEL:
        raise ValueError(f"tile level {level!r} must be 0 to {MAX_LEVEL} or 'entries'")
    return TileRef(int(level), index, width)


def _check_available(session: Session, tile: TileRef) -> None:
    """Refuse a tile the tree does not hold yet (LookupError: it is not found)."""
    tree_level = HEIGHT * (tile.level or 0)
    available = tree_state(session).size >> tree_level
    if tile.index * WIDTH + tile.width > available:
        raise LookupError(f"{tile_path(tile)} is beyond the tree ({available} hashes there)")


def read_tile(session: Session, tile: TileRef) -> bytes:
    """The tile's bytes: its hashes, or its entries' length-prefixed leaf data."""
    _check_available(session, tile)
    first = tile.index * WIDTH
    if tile.level is None:
        return _entry_bundle(session, first, tile.width)
    level = HEIGHT * tile.level
    low, high = node_key(NodeId(level, first)), node_key(NodeId(level, first + tile.width - 1))
    query = select(HASHES.c.hash).where(HASHES.c.id.between(low, high)).order_by(HASHES.c.id)
    hashes = [bytes(value) for value in session.execute(query).scalars()]
    if len(hashes) != tile.width:
        raise StoreError(
            f"{tile_path(tile)} has {len(hashes)} stored hashes, expected {tile.width}"
        )
    return b"".join(hashes)


def _entry_bundle(session: Session, first: int, width: int) -> bytes:
    """C2SP tlog-tiles entry bundle: each entry as a uint16 length and its leaf data."""
    query = select_entries(ENTRIES.c.index.between(first, first + width - 1))
    rows = list(entry_records(session.execute(query)))
    if [row.index for row in rows] != list(range(first, first + width)):
        raise StoreError(f"entries {first} to {first + width - 1} are not all stored")
    parts = []
    for row in rows:
        data = leaf_data(row)
        if len(data) >= 1 << 16:
            raise StoreError(f"entry {row.index} is {len(data)} bytes, too long for a bundle")
        parts.append(len(data).to_bytes(2, "big") + data)
    return b"".join(parts)
