"""The base of every wire model, and the field types they share."""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, ValidationError

from federation.encoding import b64url_decode, parse_json
from federation.errors import MalformedMessage, UnsupportedVersion

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
NodeName = Annotated[
    str, StringConstraints(pattern=rf"^{_LABEL}(?:\.{_LABEL})*$", min_length=1, max_length=253)
]
"""A node's name: a lowercase DNS name such as ``coop.example``."""
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
"""An id of an offering, plan, instance, binding or operation: 1 to 128 URL-safe characters."""
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


def check_identifier(value: str, what: str) -> str:
    """``value`` if it is an ``Identifier`` (the whole string: no trailing newline), else 400."""
    if not _IDENTIFIER.fullmatch(value):
        raise MalformedMessage(
            f"{what} {value[:40]!r} is not 1 to 128 of A-Z a-z 0-9 . _ : - (starting alphanumeric)"
        )
    return value


Token = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
"""A lowercase word such as a kind of service or a region: ``storage``, ``eu-west``."""


def _check_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"base URL {url!r} must be an absolute https URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"base URL {url!r} must have no query, fragment or credentials")
    if url.endswith("/"):
        raise ValueError(f"base URL {url!r} must not end with '/'")
    return url


BaseUrl = Annotated[str, AfterValidator(_check_base_url)]
"""Where a node serves the protocol: ``https://coop.example`` (no trailing slash)."""


def _check_b64_bytes(size: int) -> Any:
    def check(text: str) -> str:
        try:
            raw = b64url_decode(text, "value")
        except MalformedMessage as exc:
            raise ValueError(str(exc)) from exc
        if len(raw) != size:
            raise ValueError(f"value is {len(raw)} bytes, expected {size}")
        return text

    return AfterValidator(check)


PublicKeyB64 = Annotated[str, _check_b64_bytes(32)]
"""An Ed25519 public key: its 32 bytes in unpadded base64url."""
SignatureB64 = Annotated[str, _check_b64_bytes(64)]
"""An Ed25519 signature: its 64 bytes in unpadded base64url."""
KeyIdStr = Annotated[str, _check_b64_bytes(32)]
"""A key id: the RFC 7638 thumbprint, 32 bytes in unpadded base64url."""


class WireModel(BaseModel):
    """A protocol document: frozen; unknown members ignored so newer minor versions parse."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_json_value(self) -> dict[str, Any]:
        """The JSON value of this document; absent optional members are omitted, never null."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


M = TypeVar("M", bound=WireModel)
_FORMAT = re.compile(r"^infracms\.[a-z-]+\.v[0-9]+$")


def load(model: type[M], data: Any, what: str) -> M:
    """Validate a JSON value (or JSON bytes) as ``model``; a typed error names what failed."""
    if isinstance(data, bytes | str):
        data = parse_json(data, what)
    expected = model.model_fields.get("format")
    if expected is not None and isinstance(data, dict) and isinstance(data.get("format"), str):
        got, want = data["format"], expected.default
        same_kind = got.rsplit(".", 1)[0] == want.rsplit(".", 1)[0]
        if got != want and _FORMAT.fullmatch(got) and same_kind:
            raise UnsupportedVersion(f"{what} has format {got!r}, this library speaks {want!r}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedMessage(f"{what} is not valid: {_summary(exc)}") from exc


def _summary(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "(document)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"
