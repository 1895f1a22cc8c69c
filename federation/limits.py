"""How much a peer may make a node read, parse and keep (PROTOCOL.md section 8.1).

Every bound here is part of the protocol: a message over one is refused before it is
parsed or stored, with a typed error (``MessageTooLarge`` 413, ``MalformedMessage``
400). JSON is parsed only after a linear scan has checked its nesting depth, so a
deeply nested document is a 400, never a ``RecursionError``.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from federation.errors import MalformedMessage, MessageTooLarge

MAX_REQUEST_BYTES = 64 * 1024
"""A signed request's body (``/federation/v1``, ``/v2``, the witness)."""
MAX_CATALOG_BYTES = 4 * 1024 * 1024
"""A served catalog (the envelope with its signature)."""
MAX_ANSWER_BYTES = MAX_CATALOG_BYTES
"""Any answer a peer client reads: the catalog is the largest document."""
MAX_OFFERINGS = 200
"""Offerings in one catalog."""
MAX_PLANS = 20
"""Plans of one offering."""
MAX_JSON_DEPTH = 32
"""Nesting of arrays and objects in any JSON document (a plan's schema included)."""
MAX_CONTEXT_FIELD = 256
"""Characters of each member of an OSB ``context`` (organisation names, people)."""
MAX_CONTEXT_BYTES = 4 * 1024
"""An OSB ``context`` as canonical JSON."""
MAX_PARAMETERS_BYTES = 16 * 1024
"""The ``parameters`` of a provision or update, as canonical JSON."""
MAX_WITNESS_BYTES = 16 * 1024
"""An add-checkpoint request (its signed note is kept whole when it is evidence)."""
MAX_CONFLICTS_PER_LOG = 20
"""Refused checkpoints a witness keeps as evidence per log: one proves a fork; beyond
these, refusals are answered the same but not stored (nor audited) again."""

# A JSON string (escapes included), written unrolled so that it never backtracks.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


def check_size(raw: bytes | str, limit: int, what: str) -> None:
    """Refuse a body or document larger than ``limit`` bytes."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > limit:
        raise MessageTooLarge(f"{what} is {size} bytes, at most {limit} are accepted")


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text, by a linear scan."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw))
    steps = (1 if byte in b"[{" else -1 for byte in brackets)
    return max(accumulate(steps), default=0)


def parse_bounded(raw: bytes | str, what: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON nested at most ``max_depth`` deep; refuse NaN and Infinity."""
    data = raw.encode() if isinstance(raw, str) else raw
    depth = json_depth(data)
    if depth > max_depth:
        raise MalformedMessage(f"{what} is nested {depth} deep, at most {max_depth} is accepted")

    def refuse_constant(name: str) -> None:
        raise MalformedMessage(f"{what} holds {name}, which is not JSON")

    try:
        return json.loads(data, parse_constant=refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedMessage(f"{what} is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # the scan should have stopped it; never a 500
        raise MalformedMessage(f"{what} is nested too deep") from exc


def value_depth(value: Any) -> int:
    """The nesting depth of a parsed JSON value (a dict/list tree), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest
