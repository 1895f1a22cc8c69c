"""A peer's parameters slip past a plan's JSON Schema where Python's ``re`` reads a
pattern more loosely than ECMA-262, which JSON Schema means: a ``patternProperties``
name with a trailing newline (its ``$``), a ``.`` that takes ``\\r`` or U+2028, a
``\\d`` that takes Arabic-Indic digits, a ``\\w`` that takes non-ASCII letters. A module
author who writes ``^[0-9a-z.]+$``-style patterns in a plan gets ECMA-262's answer."""

from __future__ import annotations

from typing import Any

import pytest

from federation.schemas import parameters_validator

pytestmark = pytest.mark.security

LOOSE: list[tuple[dict[str, Any], Any]] = [
    (
        {
            "type": "object",
            "patternProperties": {"^[a-z]+$": {"type": "string"}},
            "additionalProperties": False,
        },
        {"evil\n": "x"},
    ),
    ({"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}}, {"evil\n": "x"}),
    ({"type": "string", "pattern": "^.{1,40}$"}, "ok\rinjected: header"),
    ({"type": "string", "pattern": "^.{1,40}$"}, "ok\u2028second line"),
    ({"type": "string", "pattern": "^\\d{1,5}$"}, "\u0661\u0662\u0663"),
    ({"type": "string", "pattern": "^\\w+$"}, "r\u00e9seau"),
]

FINE: list[tuple[dict[str, Any], Any]] = [
    (LOOSE[0][0], {"good": "x"}),
    (LOOSE[1][0], {"good": "x"}),
    (LOOSE[2][0], "a line: with dots . and more"),
    (LOOSE[4][0], "12345"),
    (LOOSE[5][0], "word_1"),
    ({"type": "string", "pattern": "^[.]$"}, "."),
    ({"type": "string", "pattern": "^a\\.b$"}, "a.b"),
]


@pytest.mark.parametrize(("schema", "value"), LOOSE)
def test_a_value_ecma_refuses_is_refused(schema: dict[str, Any], value: Any) -> None:
    assert list(parameters_validator(schema).iter_errors(value)), value


@pytest.mark.parametrize(("schema", "value"), FINE)
def test_a_value_ecma_accepts_is_accepted(schema: dict[str, Any], value: Any) -> None:
    assert not list(parameters_validator(schema).iter_errors(value)), value
