"""The definition form, generated from a module's settings JSON Schema.

Each top-level property is one field named ``settings.<property>``, so that the
service's errors, keyed so, land beside it:

- string: a text input; integer and number: a number input with the schema's bounds;
- boolean: a checkbox; enum: a select;
- list of strings or numbers: a textarea, one item a line;
- secret reference (``SecretRef``): a select of the organisation's credentials, or a
  ``$env:NAME`` / ``$file:/path`` reference typed beside it;
- anything else (mappings, lists of mappings): a YAML or JSON textarea.

Values go to the service as typed; the module's settings model converts and checks them
(``settings_values.py`` reads and shows them). A plan's parameters use the same fields
with another prefix (``parameters_form.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PREFIX = "settings."
REF_SUFFIX = ".ref"
SCALARS = frozenset({"string", "integer", "number"})
ACRONYMS = {
    "ssh": "SSH", "ip": "IP", "ips": "IPs", "tls": "TLS", "hsts": "HSTS", "mtu": "MTU",
    "s3": "S3", "http": "HTTP", "https": "HTTPS", "id": "ID", "kex": "KEX", "macs": "MACs",
    "x11": "X11", "tcp": "TCP", "udp": "UDP", "pam": "PAM", "dns": "DNS", "url": "URL",
    "hba": "HBA", "gb": "GB", "mb": "MB", "tb": "TB", "php": "PHP", "uri": "URI",
}  # fmt: skip


@dataclass(frozen=True)
class SettingField:
    """One field of the generated form."""

    name: str
    kind: str  # text, integer, number, boolean, choice, lines, secret, structured
    label: str
    hint: str
    required: bool
    nullable: bool
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    prefix: str = PREFIX
    example: str = ""  # a structured field's placeholder, from the keys its items take

    @property
    def form_name(self) -> str:
        """The name of the form field (and of the service's errors about it)."""
        return self.prefix + self.name

    @property
    def ref_name(self) -> str:
        """A secret field's second input: the typed ``$env``/``$file`` reference."""
        return self.form_name + REF_SUFFIX


def fields_of(
    schema: dict[str, Any], secret_fields: frozenset[str], prefix: str = PREFIX
) -> list[SettingField]:
    """The form's fields, in the schema's order, named `prefix` + property."""
    required = set(schema.get("required", []))
    defs = schema.get("$defs", {})
    return [
        _field(name, prop, name in required, name in secret_fields, defs, prefix)
        for name, prop in schema.get("properties", {}).items()
    ]


def _field(
    name: str,
    prop: dict[str, Any],
    required: bool,
    secret: bool,
    defs: dict[str, Any],
    prefix: str,
) -> SettingField:
    inner, nullable = _unwrap(prop, defs)
    kind = "secret" if secret or _is_reference(inner) else _kind(inner, defs)
    return SettingField(
        name=name,
        kind=kind,
        label=_label(name, prop),
        hint=_hint(kind, prop, inner, defs),
        required=required,
        nullable=nullable,
        choices=tuple(str(choice) for choice in inner.get("enum", ())),
        minimum=inner.get("minimum"),
        maximum=inner.get("maximum"),
        prefix=prefix,
        example=_example(inner, defs) if kind == "structured" else "",
    )


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """`schema` with a local ``$ref`` followed."""
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return {**defs.get(ref.removeprefix("#/$defs/"), {}), **_without(schema, "$ref")}
    return schema


def _without(schema: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != key}


def _unwrap(schema: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The schema without its ``null`` alternative, and whether null is allowed."""
    options = schema.get("anyOf")
    if not options:
        return _resolve(schema, defs), False
    kept = [option for option in options if option.get("type") != "null"]
    nullable = len(kept) < len(options)
    if len(kept) == 1:
        return _resolve(kept[0], defs), nullable
    return {"anyOf": [_resolve(option, defs) for option in kept]}, nullable


def _is_reference(schema: dict[str, Any]) -> bool:
    """A ``SecretRef``'s shape: a mapping of strings with no named properties."""
    values = schema.get("additionalProperties")
    return (
        schema.get("type") == "object"
        and "properties" not in schema
        and isinstance(values, dict)
        and values.get("type") == "string"
    )


def _is_scalar(schema: dict[str, Any]) -> bool:
    if "anyOf" in schema:
        return all(_is_scalar(option) for option in schema["anyOf"])
    return "enum" in schema or schema.get("type") in SCALARS


def _kind(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    kind = schema.get("type")
    if "enum" in schema:
        return "choice"
    if kind in ("boolean", "integer", "number"):
        return str(kind)
    if kind == "string" or ("anyOf" in schema and _is_scalar(schema)):
        return "text"
    if kind == "array":
        items, _ = _unwrap(schema.get("items", {}), defs)
        return "lines" if _is_scalar(items) else "structured"
    return "structured"


def _label(name: str, prop: dict[str, Any]) -> str:
    """The schema's title if a module chose one, else the name in words."""
    title = str(prop.get("title", ""))
    if title and title != name.replace("_", " ").title():
        return title
    words = [ACRONYMS.get(word, word) for word in name.split("_")]
    first = words[0]
    return " ".join([first[:1].upper() + first[1:], *words[1:]])


def _hint(kind: str, prop: dict[str, Any], inner: dict[str, Any], defs: dict[str, Any]) -> str:
    parts = [str(prop.get("description", "")).strip()]
    parts[0] = parts[0][:1].upper() + parts[0][1:] + ("." if parts[0] else "")
    low, high = inner.get("minimum"), inner.get("maximum")
    if low is not None and high is not None:
        parts.append(f"From {low} to {high}.")
    elif low is not None or high is not None:
        parts.append(f"At least {low}." if low is not None else f"At most {high}.")
    if kind == "lines":
        parts.append("One item a line.")
    if kind == "secret":
        parts.append("A reference, never the secret itself.")
    if kind == "structured":
        parts.append(_shape(inner, defs))
    return " ".join(part for part in parts if part)


def _example(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """A placeholder naming the keys an item takes (the required ones, else the first),
    so that what the empty field shows is never a key the module refuses."""
    if schema.get("type") != "array":
        return ""
    item, _ = _unwrap(schema.get("items", {}), defs)
    keys = list(item.get("properties", {}))
    shown = [key for key in item.get("required", []) if key in keys] or keys[:1]
    return "\n".join(("- " if i == 0 else "  ") + f"{key}: …" for i, key in enumerate(shown))


def _shape(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """What a structured value looks like: the keys of its items."""
    if schema.get("type") == "array":
        item, _ = _unwrap(schema.get("items", {}), defs)
        keys = list(item.get("properties", {}))
        needed = [key for key in item.get("required", []) if key in keys]
        if keys:
            required = f" (required: {', '.join(needed)})" if needed else ""
            return f"YAML or JSON: a list of mappings with {', '.join(keys)}{required}."
        return "YAML or JSON: a list."
    return "YAML or JSON."


def field_rows(fields: list[SettingField], width: int = 3) -> list[list[SettingField]]:
    """The fields laid out: numbers next to each other (up to `width` a row), others alone."""
    rows: list[list[SettingField]] = []
    for field in fields:
        numeric = field.kind in ("integer", "number")
        last = rows[-1] if rows else []
        if numeric and last and len(last) < width and last[0].kind in ("integer", "number"):
            last.append(field)
        else:
            rows.append([field])
    return rows
