"""Reading Signature-Input (RFC 9421 section 4.1): pick our signature, check its parameters.

Parsing uses ``http_sf`` (RFC 9651 structured fields); this module holds the
federation's rules about which signature to use and what it must carry.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import http_sf

from federation.errors import MalformedMessage, MissingComponent, UnsupportedVersion

TAG = "infracms-federation-v1"
"""The ``tag`` parameter every federation signature carries (RFC 9421 section 2.3)."""
LABEL = "infracms"
"""The label of federation signatures in Signature-Input and Signature."""
ALLOWED_PARAMETERS = frozenset({"created", "expires", "nonce", "keyid", "tag", "alg"})
NONCE_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")
NONCE_LENGTHS = range(16, 129)

Identity = tuple[str, frozenset[tuple[str, Any]]]
T = TypeVar("T")


@dataclass(frozen=True)
class Selected:
    """The one signature with our tag: its label, parameters and covered components."""

    label: str
    tag: str
    key_id: str
    created: int
    expires: int
    nonce: str | None
    covered: tuple[str, ...]
    fields: tuple[str, ...]


def parse_dictionary(value: str, what: str) -> dict[str, Any]:
    """An RFC 9651 Dictionary field, refusing duplicate keys."""

    def refuse_duplicate(key: str, context: str) -> None:
        raise MalformedMessage(f"{what} repeats the key {key!r}")

    try:
        parsed = http_sf.parse(
            value.encode("ascii"), tltype="dictionary", on_duplicate_key=refuse_duplicate
        )
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise MalformedMessage(f"{what} is not a structured-field dictionary: {exc}") from exc
    assert isinstance(parsed, dict)
    return parsed


def _identity(item: tuple[Any, dict[str, Any]]) -> Identity:
    return str(item[0]), frozenset(item[1].items())


def _parse_component(text: str) -> Identity:
    quoted = text if text.startswith('"') else f'"{text}"'
    parsed = http_sf.parse(quoted.encode("ascii"), tltype="item")
    assert isinstance(parsed, tuple)
    return _identity(parsed)


def select(
    signature_input: str | None, tag: str, required: tuple[str, ...], *, nonce: bool
) -> Selected:
    """Find the one signature tagged ``tag`` and check its components and parameters."""
    if signature_input is None:
        raise MissingComponent("message has no Signature-Input field")
    members = parse_dictionary(signature_input, "Signature-Input")
    tagged = [label for label, (_, params) in members.items() if params.get("tag") == tag]
    if not tagged:
        raise MissingComponent(f"message has no signature with tag {tag!r}")
    if len(tagged) > 1:
        raise MalformedMessage(f"message has {len(tagged)} signatures with tag {tag!r}, expected 1")
    label = tagged[0]
    components, params = members[label]
    if not isinstance(components, list):
        raise MalformedMessage(f"Signature-Input member {label!r} is not an inner list")
    _check_coverage(components, required)
    return _selected(label, tag, components, params, nonce=nonce)


def _check_coverage(
    components: list[tuple[Any, dict[str, Any]]], required: tuple[str, ...]
) -> None:
    covered = {_identity(item) for item in components}
    missing = [text for text in required if _parse_component(text) not in covered]
    if missing:
        raise MissingComponent(f"signature does not cover {', '.join(missing)}")


def _selected(
    label: str,
    tag: str,
    components: list[tuple[Any, dict[str, Any]]],
    params: dict[str, Any],
    *,
    nonce: bool,
) -> Selected:
    unknown = sorted(set(params) - ALLOWED_PARAMETERS)
    if unknown:
        raise MalformedMessage(f"signature has unknown parameters {unknown}")
    if "alg" in params and params["alg"] != "ed25519":
        raise UnsupportedVersion(f"signature alg is {params['alg']!r}, expected 'ed25519'")
    key_id = _required(params, "keyid", str)
    created = _required(params, "created", int)
    expires = _required(params, "expires", int)
    nonce_value = _check_nonce(_required(params, "nonce", str)) if nonce else None
    covered = tuple(http_sf.ser(item) for item in components)
    fields = tuple(
        str(name) for name, p in components if not str(name).startswith("@") and "req" not in p
    )
    return Selected(label, tag, key_id, created, expires, nonce_value, covered, fields)


def _required(params: dict[str, Any], name: str, kind: type[T]) -> T:
    if name not in params:
        raise MissingComponent(f"signature has no {name!r} parameter")
    value = params[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise MalformedMessage(
            f"signature parameter {name!r} is {value!r}, expected a {kind.__name__}"
        )
    return value


def _check_nonce(value: str) -> str:
    if len(value) not in NONCE_LENGTHS or not set(value) <= NONCE_ALPHABET:
        raise MalformedMessage(
            f"nonce must be 16 to 128 base64url characters, got {len(value)} characters"
        )
    return value


def check_fields_present(selected: Selected, header: Callable[[str], str | None]) -> None:
    """Every covered field is in the message (a signature over an absent field is refused)."""
    absent = [name for name in selected.fields if header(name) is None]
    if absent:
        raise MissingComponent(f"covered fields {absent} are not in the message")


def find_label(signature: str | None, label: str) -> bytes | None:
    """The signature bytes under ``label`` in a Signature field, or None."""
    if signature is None:
        return None
    member = parse_dictionary(signature, "Signature").get(label)
    if member is None or not isinstance(member[0], bytes):
        return None
    return member[0]


def digest_algorithms(value: str) -> set[str]:
    """The algorithm names in a Content-Digest field."""
    return set(parse_dictionary(value, "Content-Digest"))
