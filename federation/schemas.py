"""Checking ``parameters`` against a plan's JSON Schema with the protocol's semantics.

JSON Schema ``pattern`` is an ECMA-262 regular expression, searched (not anchored):
there ``$`` matches only at the very end of the string. Python's ``re``, which the
``jsonschema`` library uses, lets ``$`` also match before a final newline, so
``^[a-z]+$`` would accept ``"evil\\n"``. The validator here reads each ``$`` outside a
character class as ``\\Z`` (the end of the string), as ECMA-262 does; each ``.`` as
"anything but a line terminator" (ECMA-262's ``.`` refuses ``\\r``, U+2028 and U+2029,
Python's only ``\\n``); and ``\\d``, ``\\w``, ``\\b`` as ASCII, as ECMA-262 has them
(Python's ``\\d`` takes any Unicode digit). ``patternProperties`` and ``propertyNames``
patterns are read the same way as ``pattern``.
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
        elif char == ".":
            char = NOT_LINE_TERMINATOR
        out.append(char)
        i += 1
    return "".join(out)


NOT_LINE_TERMINATOR = "[^\n\r\u2028\u2029]"
"""ECMA-262's ``.``: any character but a line terminator."""


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_pattern(pattern), re.ASCII)


def _pattern(
    validator: Validator, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Validator, properties: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in properties.items():
        for name, value in instance.items():
            if _compiled(pattern).search(name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)  # type: ignore[attr-defined]


def _additional_properties(
    validator: Validator, additional: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    patterns = [_compiled(p) for p in schema.get("patternProperties", {})]
    extras = [
        name
        for name in instance
        if name not in schema.get("properties", {}) and not any(p.search(name) for p in patterns)
    ]
    if validator.is_type(additional, "object"):
        for name in extras:
            yield from validator.descend(instance[name], additional, path=name)  # type: ignore[attr-defined]
    elif additional is False and extras:
        yield ValidationError(f"additional properties are not allowed ({sorted(extras)!r})")


def parameters_validator(schema: dict[str, Any]) -> Validator:
    """A validator for ``schema`` (its own draft) whose ``pattern`` follows ECMA-262."""
    base = validators.validator_for(schema)
    base.check_schema(schema)
    checks = {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    }
    extended = validators.extend(base, checks)  # type: ignore[no-untyped-call]
    return extended(schema)  # type: ignore[no-any-return]
