"""Reading submitted forms: text fields, lists, and variables typed as YAML or JSON."""

from __future__ import annotations

import json
from typing import Any

import yaml
from pydantic import BaseModel
from starlette.datastructures import FormData

from infracms.errors import InvalidInput
from infracms.models.validators import JSON_MAX_DEPTH, check_json
from infracms.services.common import parse

TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _PlainLoader(yaml.SafeLoader):
    """Safe YAML without aliases (no expansion bombs, no cycles) and without dates."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed", mark)
        return super().compose_node(parent, index)


# Dates stay the strings they were typed as, as they would in JSON.
_PlainLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def text(form: FormData, name: str, *, strip: bool = True) -> str:
    """A text field, "" when it is missing (secrets are read with strip=False)."""
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    return value.strip() if strip else value


def texts(form: FormData, name: str) -> list[str]:
    """All values of a repeated field (checkboxes, multiple selects)."""
    return [value.strip() for value in form.getlist(name) if isinstance(value, str)]


def or_none(value: str) -> str | None:
    """None for an empty field."""
    return value or None


def parse_variables(source: str) -> dict[str, Any]:
    """Variables typed as YAML or JSON; InvalidInput on `variables` if they do not parse."""
    if not source.strip():
        return {}
    try:
        value = load_value(source)
    except ValueError as exc:
        raise _bad_variables(str(exc)) from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad_variables("must be a mapping of variable names to values")
    return value


def show_variables(variables: dict[str, Any]) -> str:
    """Variables as YAML for a textarea ("" when there are none)."""
    if not variables:
        return ""
    return yaml.safe_dump(variables, sort_keys=False, allow_unicode=True, default_flow_style=False)


def with_variables(model: type[BaseModel], data: dict[str, Any], source: str) -> dict[str, Any]:
    """`data` with its parsed variables; a parse error is reported with the form's other errors."""
    try:
        return {**data, "variables": parse_variables(source)}
    except InvalidInput as exc:
        errors = dict(exc.errors)
        try:
            parse(model, {**data, "variables": {}})
        except InvalidInput as others:
            errors = {**others.errors, **errors}
        detail = exc.detail if len(errors) == 1 else "the form has invalid fields"
        raise InvalidInput(detail, errors=errors) from exc


def _bad_variables(message: str) -> InvalidInput:
    return InvalidInput(f"the variables {message}", errors={"variables": message})


def _yaml_reason(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or "cannot be read"
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return str(problem)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"


def load_value(source: str) -> Any:
    """Any value typed as YAML or JSON; ValueError saying why it does not parse."""
    try:
        value = yaml.load(source, Loader=_PlainLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise ValueError(f"is not valid YAML or JSON: {_yaml_reason(exc)}") from exc
    except RecursionError as exc:  # the composer recurses once per level of nesting
        raise ValueError(f"is nested deeper than {JSON_MAX_DEPTH} levels") from exc
    except ValueError as exc:  # an integer of more digits than Python converts
        raise ValueError(f"holds a value that cannot be read: {exc}") from exc
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "may hold only strings, numbers, booleans, null, lists and mappings"
        ) from exc
    return check_json(value, "value")


def show_value(value: Any) -> str:
    """A value as YAML for a textarea ("" for nothing, an empty list or mapping)."""
    if value in (None, [], {}):
        return ""
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False)
