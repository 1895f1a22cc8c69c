"""Checking ``parameters`` against a plan's JSON Schema with the protocol's semantics.

JSON Schema ``pattern`` is an ECMA-262 regular expression, searched (not anchored):
there ``$`` matches only at the very end of the string. Python's ``re``, which the
``jsonschema`` library uses, lets ``$`` also match before a final newline, so
``^[a-z]+$`` would accept ``"evil\\n"``. The validator here reads each ``$`` outside a
character class as ``\\Z`` (the end of the string), as ECMA-262 does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from jsonschema import validators
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator


def ecma_pattern(pattern: str) -> str:
    """A Python regular expression in which ``$`` means what it means in ECMA-262."""
    out: list[str] = []
    in_class, i = False, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
        i += 1
    return "".join(out)


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_pattern(pattern))


def _pattern(
    validator: Validator, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def parameters_validator(schema: dict[str, Any]) -> Validator:
    """A validator for ``schema`` (its own draft) whose ``pattern`` follows ECMA-262."""
    base = validators.validator_for(schema)
    base.check_schema(schema)
    extended = validators.extend(base, {"pattern": _pattern})  # type: ignore[no-untyped-call]
    return extended(schema)  # type: ignore[no-any-return]
