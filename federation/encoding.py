"""Byte encodings shared by the protocol: base64url, RFC 8785 canonical JSON, UTC times.

Signed JSON documents (catalogs, invitations, key rotations) are signed over
``signing_input(context, value)``: the context string, a newline, then the RFC 8785
canonical form of the value. The context keeps a signature made for one kind of
document from being accepted as another.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any, NewType

import rfc8785
from pydantic import AfterValidator, PlainSerializer

from federation.errors import MalformedMessage
from federation.limits import parse_bounded

CanonicalJSON = NewType("CanonicalJSON", bytes)
"""The RFC 8785 (JCS) serialization of a JSON value."""
SigningInput = NewType("SigningInput", bytes)
"""The exact bytes an Ed25519 signature is made over."""

CONTEXT_CATALOG = "infracms-federation/v1 catalog"
CONTEXT_INVITATION = "infracms-federation/v1 invitation"
CONTEXT_KEY_ROTATION = "infracms-federation/v1 key-rotation"


def b64url_encode(raw: bytes) -> str:
    """Base64url without padding (RFC 4648 section 5, as JOSE uses it)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, what: str) -> bytes:
    """Strict unpadded base64url: refuses padding, other alphabets and non-canonical tails."""
    if not isinstance(text, str) or "=" in text or not text.isascii():
        raise MalformedMessage(f"{what} is not unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage(f"{what} is not unpadded base64url: {exc}") from exc
    if b64url_encode(raw) != text:
        raise MalformedMessage(f"{what} is not canonical base64url")
    return raw


def canonical_json(value: Any) -> CanonicalJSON:
    """RFC 8785 canonical JSON of a JSON value (dicts, lists, str, int, float, bool, None)."""
    try:
        return CanonicalJSON(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise MalformedMessage(f"value has no RFC 8785 canonical form: {exc}") from exc


def parse_json(raw: bytes | str, what: str) -> Any:
    """Parse JSON, refusing NaN and Infinity (no canonical form) and excessive nesting."""
    return parse_bounded(raw, what)


def signing_input(context: str, value: Any) -> SigningInput:
    """The bytes a JSON document's Ed25519 signature covers: ``context || 0x0A || JCS(value)``."""
    return SigningInput(context.encode("ascii") + b"\n" + canonical_json(value))


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with second precision and a ``Z``: ``2026-03-01T12:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _to_utc_seconds(moment: datetime) -> datetime:
    """Refuse naive times; keep UTC to the second, as the wire form does."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("time must carry a timezone (RFC 3339 with Z or an offset)")
    return moment.astimezone(UTC).replace(microsecond=0)


UtcTime = Annotated[
    datetime,
    AfterValidator(_to_utc_seconds),
    PlainSerializer(format_time, return_type=str, when_used="always"),
]
"""A timezone-aware time, held in UTC to the second, written as RFC 3339 with ``Z``."""


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def unix_seconds(moment: datetime) -> int:
    """Seconds since the epoch of a timezone-aware time."""
    if moment.tzinfo is None:
        raise ValueError("time must carry a timezone")
    return int(moment.timestamp())


def from_unix_seconds(seconds: int) -> datetime:
    """The UTC time of a count of seconds since the epoch."""
    return datetime.fromtimestamp(seconds, tz=UTC)
