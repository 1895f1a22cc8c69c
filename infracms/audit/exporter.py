"""Write the database's log as an export file (the layout is in ``exportfile``).

The export carries every stored checkpoint up to the latest, the leaf hashes the tree
holds, and each entry row made into its leaf data, exactly as the database has them.
Nothing here checks them or papers over a gap: if a row was changed, deleted, inserted
or moved, the export shows it as it is and the offline verifier names it. A row that
cannot be made into an entry at all is written as a JSON object of its raw columns,
which the verifier reports as malformed at its position.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from infracms.audit.exportfile import LEAF_HASHES_PER_LINE, ExportHeader, header_line
from infracms.audit.store import (
    CHECKPOINTS,
    ENTRIES,
    HASHES,
    StoreError,
    entry_records,
    leaf_data,
    select_entries,
)

CHUNK = 1_000


def _json_line(value: dict[str, object]) -> bytes:
    """One compact JSON object, keys sorted, and a newline (as ``exportfile`` writes)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode() + b"\n"


def export_lines(session: Session, *, origin: str, verifier_key: str) -> Iterator[bytes]:
    """The lines of an export of everything up to the latest checkpoint, streamed.

    Run it inside one transaction (one ``session``) so the lines are of one moment.
    Raises ``StoreError`` before the first line if no checkpoint was signed yet.
    """
    query = select(CHECKPOINTS.c.size, CHECKPOINTS.c.note).order_by(CHECKPOINTS.c.size)
    notes = list(session.execute(query))
    if not notes:
        raise StoreError("no checkpoint is signed yet: nothing can be exported")
    size = int(notes[-1][0])
    yield header_line(ExportHeader(origin, verifier_key, size, len(notes)))
    for _, note in notes:
        yield _json_line({"checkpoint": note})
    yield from _leaf_hash_lines(session, size)
    yield from _entry_lines(session, size)


def _leaf_hash_lines(session: Session, size: int) -> Iterator[bytes]:
    """The stored level-0 hashes (keys ``0 … size-1``), 256 to a line."""
    query = select(HASHES.c.hash).where(HASHES.c.id < size).order_by(HASHES.c.id)
    chunk: list[bytes] = []
    for (value,) in session.execute(query.execution_options(yield_per=CHUNK)):
        chunk.append(bytes(value))
        if len(chunk) == LEAF_HASHES_PER_LINE:
            yield _json_line({"leaf_hashes": base64.b64encode(b"".join(chunk)).decode()})
            chunk = []
    if chunk:
        yield _json_line({"leaf_hashes": base64.b64encode(b"".join(chunk)).decode()})


def _entry_lines(session: Session, size: int) -> Iterator[bytes]:
    """Each entry row below ``size`` as its leaf data, in index order."""
    query = select_entries(ENTRIES.c.index < size).execution_options(yield_per=CHUNK)
    for record in entry_records(session.execute(query)):
        try:
            data = leaf_data(record)
        except StoreError:
            data = _raw_line(dataclasses.asdict(record))
        yield data + b"\n"


def _raw_line(columns: dict[str, Any]) -> bytes:
    """A row that is no entry, as JSON of its columns (one line: newlines are escaped)."""
    return json.dumps(columns, sort_keys=True, default=str).encode()
