"""The request form of a catalog plan, generated from the plan's parameters JSON Schema.

The fields are those of the definition form (``settings_form.py``), named
``parameters.<property>``, plus one kind of its own: a property with a ``const`` is
shown, not asked (``fixed``). Values are read back into JSON of the schema's types
(a number field sends a number), and each schema violation is put beside its field:
the consumer service checks the same schema but reports all problems in one sentence.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jsonschema import validators
from jsonschema.exceptions import SchemaError, ValidationError
from starlette.datastructures import FormData

from infracms.errors import InfracmsError, InvalidInput
from infracms.web.errors import FormProblem
from infracms.web.forms import load_value
from infracms.web.settings_form import SettingField, fields_of
from infracms.web.settings_values import submitted_values, values_of

PARAMETERS = "parameters."
ARTICLES = {"integer": "a whole number", "array": "a list", "object": "a mapping"}


def plan_fields(schema: dict[str, Any]) -> list[SettingField]:
    """The form's fields for a plan's parameters: the required ones first, then the
    others, each in the schema's order (a signed catalog may have sorted its keys)."""
    properties = schema.get("properties", {})
    fields: list[SettingField] = []
    for field in fields_of(schema, frozenset(), prefix=PARAMETERS):
        prop = properties.get(field.name, {})
        if "const" in prop:
            field = dataclasses.replace(field, kind="fixed", required=False, hint=_said(prop))
        elif field.kind == "secret":  # a plan parameter is never a reference to our secrets
            field = dataclasses.replace(field, kind="structured")
        fields.append(field)
    return sorted(fields, key=lambda field: not field.required)


def _said(prop: dict[str, Any]) -> str:
    """A property's description as a sentence."""
    words = str(prop.get("description", "")).strip()
    return f"{words[:1].upper()}{words[1:]}." if words else ""


def plan_values(fields: list[SettingField], schema: dict[str, Any]) -> dict[str, Any]:
    """The form's first values: the schema's defaults and constants."""
    properties = schema.get("properties", {})
    start = {
        name: prop.get("const", prop.get("default"))
        for name, prop in properties.items()
        if isinstance(prop, dict) and ("const" in prop or "default" in prop)
    }
    return values_of(fields, start)


def submitted(fields: list[SettingField], schema: dict[str, Any], form: FormData) -> dict[str, Any]:
    """The values as typed, to show the form again (constants as the schema has them)."""
    values = submitted_values(fields, form)
    fixed = [field for field in fields if field.kind == "fixed"]
    return {**values, **plan_values(fixed, schema)}


def parameters_from(
    fields: list[SettingField], schema: dict[str, Any], values: dict[str, Any]
) -> dict[str, Any]:
    """The parameters to send, typed; InvalidInput with a message beside each bad field."""
    properties = schema.get("properties", {})
    found: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in fields:
        try:
            present, value = _read(field, properties.get(field.name, {}), values)
        except ValueError as exc:
            errors[field.form_name] = str(exc)
            continue
        if present:
            found[field.name] = value
    for name, message in schema_errors(schema, found).items():
        errors.setdefault(name, message)
    if errors:
        order = [field.form_name for field in fields]
        ranked = sorted(errors, key=lambda name: order.index(name) if name in order else -1)
        raise InvalidInput("the form has invalid fields", errors={k: errors[k] for k in ranked})
    return found


def _read(field: SettingField, prop: dict[str, Any], values: dict[str, Any]) -> tuple[bool, Any]:
    """(whether to send the field, its value); a blank field is left to the schema."""
    raw = values.get(field.form_name, "")
    if field.kind == "fixed":
        return True, prop["const"]
    if field.kind == "boolean":
        return True, bool(raw)
    raw = str(raw).strip()
    if not raw:
        return False, None
    if field.kind == "lines":
        item = prop.get("items", {})
        return True, [_typed(line.strip(), item) for line in raw.splitlines() if line.strip()]
    if field.kind == "structured":
        return True, load_value(raw)
    if field.kind == "choice":
        return True, _choice(raw, prop)
    return True, _typed(raw, prop)


def _typed(raw: str, prop: dict[str, Any]) -> Any:
    """A typed value as the schema's type wants it: a string, or a number."""
    kind = prop.get("type")
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"must be a whole number, not {raw!r}") from None
    if kind == "number":
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(f"must be a number, not {raw!r}") from None
        return int(number) if number.is_integer() and "." not in raw else number
    return raw


def _choice(raw: str, prop: dict[str, Any]) -> Any:
    """The enum member shown as `raw` (members may be numbers)."""
    for member in prop.get("enum", ()):
        if str(member) == raw:
            return member
    raise ValueError("choose one of the options")


def schema_errors(schema: dict[str, Any], instance: dict[str, Any]) -> dict[str, str]:
    """What the schema finds wrong, by form field; none if the schema itself is broken
    (the service refuses it, saying so)."""
    try:
        validator = validators.validator_for(schema)(schema)
        problems = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    except SchemaError:
        return {}
    errors: dict[str, str] = {}
    for problem in problems:
        name = _field_of(problem, instance)
        errors.setdefault(PARAMETERS + name if name else "parameters", _message(problem))
    return errors


def _field_of(problem: ValidationError, instance: dict[str, Any]) -> str:
    path = list(problem.absolute_path)
    if path:
        return str(path[0])
    if problem.validator == "required" and isinstance(problem.validator_value, list):
        missing = [name for name in problem.validator_value if name not in instance]
        return str(missing[0]) if missing else ""
    return ""


def _message(problem: ValidationError) -> str:
    """The problem in words, with where inside a list it is."""
    value = problem.validator_value
    words = {
        "required": "is required",
        "pattern": f"must match the pattern {value}",
        "minimum": f"must be at least {value}",
        "maximum": f"must be at most {value}",
        "minLength": f"must be at least {value} characters long",
        "maxLength": f"must be at most {value} characters long",
        "minItems": f"must have at least {value} items",
        "maxItems": f"may have at most {value} items",
        "uniqueItems": "may not repeat an item",
        "enum": "must be one of: " + ", ".join(map(str, value if isinstance(value, list) else [])),
        "const": f"must be {value}",
        "type": f"must be {ARTICLES.get(str(value), f'a {value}')}",
        "additionalProperties": problem.message,
    }.get(str(problem.validator), problem.message)
    inside = [part for part in list(problem.absolute_path)[1:] if isinstance(part, int)]
    return f"item {inside[0] + 1} {words}" if inside else words


def parameters_problem(exc: InfracmsError) -> FormProblem:
    """A refused request form: ``parameters.<field>`` errors stay on their field."""
    errors: dict[str, str] = {}
    for key, message in exc.errors.items():
        errors.setdefault(key if key.startswith(PARAMETERS) else key.split(".")[0], message)
    return FormProblem(FormProblem.of(exc).summary, exc.status, errors)
