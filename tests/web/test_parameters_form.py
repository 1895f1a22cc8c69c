"""The request form generated from a plan's parameters schema: fields, first values,
typed parameters, and each schema violation put beside its field."""

from __future__ import annotations

from typing import Any

import pytest

from infracms.errors import InvalidInput
from infracms.web.parameters_form import parameters_from, plan_fields, plan_values

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "cores": {"type": "integer", "minimum": 1, "maximum": 8, "default": 2},
        "ratio": {"type": "number"},
        "size": {"enum": [10, 20], "default": 10},
        "ports": {"type": "array", "items": {"type": "integer"}, "maxItems": 2},
        "quota_gb": {"const": 100, "description": "storage included in the plan"},
        "name": {"type": "string", "pattern": "^[a-z]+$", "description": "a name"},
    },
}


def read(**typed: str) -> dict[str, Any]:
    fields = plan_fields(SCHEMA)
    values = {**plan_values(fields, SCHEMA), **{f"parameters.{k}": v for k, v in typed.items()}}
    return parameters_from(fields, SCHEMA, values)


def test_fields_put_the_required_first_and_show_constants() -> None:
    fields = plan_fields(SCHEMA)
    assert [(f.name, f.kind) for f in fields] == [
        ("name", "text"),
        ("cores", "integer"),
        ("ratio", "number"),
        ("size", "choice"),
        ("ports", "lines"),
        ("quota_gb", "fixed"),
    ]
    assert fields[-1].hint == "Storage included in the plan."
    assert fields[0].form_name == "parameters.name"
    values = plan_values(fields, SCHEMA)
    assert values["parameters.cores"] == "2" and values["parameters.quota_gb"] == "100"


def test_values_are_sent_in_the_schemas_types() -> None:
    assert read(name="blog", ratio="0.5", size="20", ports="80\n443\n") == {
        "name": "blog",
        "cores": 2,
        "ratio": 0.5,
        "size": 20,
        "ports": [80, 443],
        "quota_gb": 100,
    }


def test_each_problem_is_beside_its_field_in_the_forms_order() -> None:
    with pytest.raises(InvalidInput) as refused:
        read(name="", cores="9", ratio="half", ports="1\n2\n3")
    assert refused.value.errors == {
        "parameters.name": "is required",
        "parameters.cores": "must be at most 8",
        "parameters.ratio": "must be a number, not 'half'",
        "parameters.ports": "may have at most 2 items",
    }
    with pytest.raises(InvalidInput) as refused:
        read(name="Blog", ports="80\nhttp")
    assert refused.value.errors == {
        "parameters.name": "must match the pattern ^[a-z]+$",
        "parameters.ports": "must be a whole number, not 'http'",
    }
