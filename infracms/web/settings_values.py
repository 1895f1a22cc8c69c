"""The values of the generated definition form (``settings_form.py``): a module's
defaults, stored settings shown in the form and on the page, the form read back into
settings, and the service's errors put beside their fields."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

from infracms.errors import InfracmsError, InvalidInput
from infracms.modules.contract import Module
from infracms.web.errors import FIELDS_SUMMARY, GENERIC_DETAILS, FormProblem
from infracms.web.forms import load_value, show_value, text
from infracms.web.settings_form import PREFIX, SettingField

OTHER = "other"
CREDENTIAL = "credential:"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NOT_NONE = "Input should be None"


def defaults_of(module: type[Module]) -> dict[str, Any]:
    """The settings a new definition starts with: the model's defaults, factories called
    (the JSON Schema leaves those out), as JSON."""
    found: dict[str, Any] = {}
    for name, info in module.settings.model_fields.items():
        if not info.is_required():
            found[name] = info.get_default(call_default_factory=True, validated_data={})
    shown: dict[str, Any] = json.loads(json.dumps(found, default=str))
    return shown


def values_of(fields: list[SettingField], settings: dict[str, Any]) -> dict[str, Any]:
    """The form's values, by form name, for stored settings."""
    values: dict[str, Any] = {}
    for field in fields:
        value = settings.get(field.name)
        values.update(_shown(field, value))
    return values


def _shown(field: SettingField, value: Any) -> dict[str, Any]:
    if field.kind == "boolean":
        return {field.form_name: bool(value)}
    if field.kind == "lines":
        return {field.form_name: "\n".join(str(item) for item in value or [])}
    if field.kind == "secret":
        return dict(zip((field.form_name, field.ref_name), _reference_shown(value), strict=True))
    if field.kind == "structured":
        return {field.form_name: show_value(value)}
    return {field.form_name: "" if value is None else str(value)}


def _reference_shown(value: Any) -> tuple[str, str]:
    if not isinstance(value, dict) or len(value) != 1:
        return "", ""
    ((kind, target),) = value.items()
    if kind == "$credential":
        return CREDENTIAL + str(target), ""
    return OTHER, f"{kind}:{target}"


def submitted_values(fields: list[SettingField], form: FormData) -> dict[str, Any]:
    """The form's values as the user typed them, to show the form again."""
    values: dict[str, Any] = {}
    for field in fields:
        if field.kind == "boolean":
            values[field.form_name] = form.get(field.form_name) is not None
        else:
            values[field.form_name] = text(form, field.form_name, strip=False)
        if field.kind == "secret":
            values[field.ref_name] = text(form, field.ref_name)
    return values


def settings_from(fields: list[SettingField], values: dict[str, Any]) -> dict[str, Any]:
    """The settings to save; InvalidInput on the fields that cannot even be read."""
    settings: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in fields:
        try:
            present, value = _read(field, values)
        except ValueError as exc:
            errors[field.form_name] = str(exc)
            continue
        if present:
            settings[field.name] = value
    if errors:
        raise InvalidInput("the form has invalid fields", errors=errors)
    return settings


def _read(field: SettingField, values: dict[str, Any]) -> tuple[bool, Any]:
    """(whether to send the field, its value); blank sends null or lets the default apply."""
    raw = values.get(field.form_name, "")
    if field.kind == "boolean":
        return True, bool(raw)
    if field.kind == "secret":
        reference = _reference(str(raw), str(values.get(field.ref_name, "")).strip())
        return (True, reference) if reference else _blank(field)
    if not str(raw).strip():
        return (True, []) if field.kind == "lines" and not field.nullable else _blank(field)
    if field.kind == "lines":
        return True, [line.strip() for line in str(raw).splitlines() if line.strip()]
    if field.kind == "structured":
        return True, load_value(str(raw))
    return True, str(raw).strip()


def _blank(field: SettingField) -> tuple[bool, Any]:
    return (True, None) if field.nullable else (False, None)


def _reference(choice: str, typed: str) -> dict[str, str] | None:
    """``{"$credential": name}`` from the select, or ``$env:NAME`` / ``$file:/path`` typed."""
    if choice.startswith(CREDENTIAL):
        return {"$credential": choice.removeprefix(CREDENTIAL)}
    if choice not in ("", OTHER) or not typed:
        return None
    kind, _, target = typed.partition(":")
    if kind not in ("$env", "$file") or not target.strip():
        raise ValueError("type $env:VARIABLE or $file:/absolute/path, or choose a credential")
    return {kind: target.strip()}


@dataclass(frozen=True)
class ShownSetting:
    """One setting as a definition's page shows it; `block` text keeps its lines."""

    label: str
    name: str
    text: str
    block: bool


def shown_settings(fields: list[SettingField], settings: dict[str, Any]) -> list[ShownSetting]:
    """Stored settings in the form's order, then any the module no longer declares."""
    known = {field.name for field in fields}
    rows = [_shown_row(field, settings.get(field.name)) for field in fields]
    extra = [
        ShownSetting(label=name, name=name, text=show_value(value) or "—", block=True)
        for name, value in settings.items()
        if name not in known
    ]
    return rows + extra


def _shown_row(field: SettingField, value: Any) -> ShownSetting:
    row = ShownSetting(field.label, field.name, "—", block=False)
    if value is None or value == [] or value == {}:
        return row
    if field.kind == "boolean":
        return ShownSetting(field.label, field.name, "yes" if value else "no", block=False)
    if field.kind == "secret":
        choice, typed = _reference_shown(value)
        words = f"credential {choice.removeprefix(CREDENTIAL)}" if typed == "" else typed
        return ShownSetting(field.label, field.name, words, block=False)
    if field.kind == "lines":
        return ShownSetting(field.label, field.name, "\n".join(map(str, value)), block=True)
    if field.kind == "structured" or not isinstance(value, str | int | float):
        return ShownSetting(field.label, field.name, show_value(value), block=True)
    return ShownSetting(field.label, field.name, str(value), block=False)


# --- errors ---------------------------------------------------------------------


def definition_problem(exc: InfracmsError) -> FormProblem:
    """A refused definition form: ``settings.<field>`` errors stay on their field,
    with where inside it (``item 2, name: …``); others go by their first part."""
    found: dict[str, list[str]] = {}
    for key, message in exc.errors.items():
        parts = key.split(".")
        if parts[0] == "settings" and len(parts) > 1:
            name, where = PREFIX + parts[1], _where(parts[2:])
            found.setdefault(name, []).append(f"{where}: {message}" if where else message)
        else:
            found.setdefault(parts[0], []).append(message)
    errors = {name: _first(messages) for name, messages in found.items()}
    summary = FIELDS_SUMMARY if exc.detail in GENERIC_DETAILS and errors else exc.detail
    return FormProblem(summary=summary, status=exc.status, errors=errors)


def _where(parts: list[str]) -> str:
    """A path inside a field in words: ``0.name`` is ``item 1, name``."""
    words = []
    for part in parts:
        if part.isdigit():
            words.append(f"item {int(part) + 1}")
        elif IDENTIFIER.fullmatch(part) and part != "none":
            words.append(part)
    return ", ".join(words)


def _first(messages: list[str]) -> str:
    """The first message that is not just the null alternative of an optional field."""
    useful = [message for message in messages if not message.endswith(NOT_NONE)]
    return (useful or messages)[0]
