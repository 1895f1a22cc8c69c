"""An entry's payload as recorded: JSON text with its secrets redacted. Pure, no I/O.

The text stored in ``audit_entry.payload`` is compact JSON with sorted keys; the leaf
hashes the RFC 8785 canonical form of the parsed value (``entry.entry_bytes``), so
the text only has to parse back to the same value, and that value has to be one
RFC 8785 can write. Both are checked here, at append time, so that a payload can
never stop integration later: integers beyond ±(2**53 - 1), non-finite numbers,
lone surrogates and values that are not JSON are refused with ``ValueError``.

Secrets never reach the text: a value wrapped in ``entry.Secret``, or held by a key
that names a secret (``password``, ``db_password``, ``private_key``…, at any depth)
becomes ``{"redacted": "hmac-sha256:<hex>"}`` when an HMAC key is given (equal values
give equal markers, ``entry.redaction_of``) and ``{"redacted": "withheld"}`` without.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import uuid
from collections.abc import Mapping, Set
from typing import Any

from infracms.audit.entry import MAX_INDEX, Secret, redaction_of

SECRET_FIELDS = frozenset(
    {
        "password",
        "passphrase",
        "private_key",
        "secret",
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_become_password",
        "ansible_become_pass",
    }
)
"""Payload keys whose values are never recorded (compared in lower case)."""
SECRET_SUFFIXES = ("password", "passwd", "passphrase", "_secret", "_pass", "_token", "private_key")
"""Nor are values of keys ending so (``db_password``, ``api_token``)."""
WITHHELD = {"redacted": "withheld"}
"""What stands for a secret when no HMAC key is given."""
MAX_INTEGER = MAX_INDEX
"""RFC 8785 numbers are IEEE doubles: integers beyond 2**53 - 1 would not round-trip."""


def is_secret_field(key: str, fields: Set[str] = SECRET_FIELDS) -> bool:
    """Whether a payload key names a secret."""
    lowered = key.lower()
    return lowered in fields or lowered.endswith(SECRET_SUFFIXES)


def _marker(value: Any, hmac_key: bytes | None) -> Any:
    """What stands for one secret value (``None`` stays ``None``: nothing is hidden there)."""
    if value is None:
        return None
    if hmac_key is None:
        return dict(WITHHELD)
    return redaction_of(_prepared(value, None, frozenset(), "secret"), hmac_key)


def _scalar(value: Any, path: str) -> Any:
    """A JSON scalar as it is, or refused; UUIDs, times and enums as strings."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not -MAX_INTEGER <= value <= MAX_INTEGER:
            raise ValueError(f"{path} is {value}, beyond what JSON numbers hold exactly")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path} is {value}, which JSON cannot hold")
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise ValueError(f"{path} is a {type(value).__name__}, which an audit payload cannot hold")


def _prepared(value: Any, hmac_key: bytes | None, fields: Set[str], path: str) -> Any:
    """`value` as plain JSON, with every secret replaced by its marker."""
    if isinstance(value, enum.Enum):
        return _prepared(value.value, hmac_key, fields, path)
    if isinstance(value, Secret):
        return _marker(value.value, hmac_key)
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            name = str(key)
            if is_secret_field(name, fields):
                result[name] = _marker(item.value if isinstance(item, Secret) else item, hmac_key)
            else:
                result[name] = _prepared(item, hmac_key, fields, f"{path}.{name}")
        return result
    if isinstance(value, list | tuple):
        return [_prepared(v, hmac_key, fields, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, set | frozenset):
        return sorted((_prepared(v, hmac_key, fields, path) for v in value), key=str)
    return _scalar(value, path)


def payload_text(
    payload: Mapping[str, Any],
    *,
    hmac_key: bytes | None = None,
    secret_fields: Set[str] = SECRET_FIELDS,
) -> str:
    """The payload as compact JSON with sorted keys, secrets redacted; ``ValueError`` if
    it holds something the leaf's RFC 8785 form could not."""
    prepared = _prepared(payload, hmac_key, secret_fields, "payload")
    text = json.dumps(prepared, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"audit payload holds text that is not Unicode: {exc}") from exc
    return text
