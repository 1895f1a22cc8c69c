"""The leaf data of one audit entry: RFC 8785 canonical JSON, with secrets redacted.

An entry is the JSON object ``{"v": 1, "index", "time", "actor", "organisation",
"action", "subject", "payload", "request_id"}`` serialised by the JSON
Canonicalization Scheme (RFC 8785): sorted keys, no whitespace, one byte string for one
value. Those bytes are the Merkle leaf (``merkle.hash_leaf``), so the same entry always
hashes the same, in any implementation that follows RFC 8785. They never hold a
newline, so an export can carry one entry per line exactly as hashed.

Secrets never reach an entry: wrap them in :class:`Secret` (or name their fields) and
:func:`redact` the payload, which replaces each with a keyed HMAC so that equal values
can be recognised by whoever holds the key, without being revealed to anyone else.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias, get_args
from uuid import UUID

import rfc8785

from infracms.audit.errors import AuditVerificationError

VERSION = 1
ActorKind: TypeAlias = Literal["user", "token", "peer", "system"]
ACTOR_KINDS: frozenset[str] = frozenset(get_args(ActorKind))
JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
"""RFC 3339 in UTC with microseconds and ``Z``: ``2024-05-01T12:00:00.000000Z``."""
MAX_INDEX = 2**53 - 1
"""RFC 8785 numbers are IEEE doubles: larger integers would not round-trip."""
MIN_HMAC_KEY = 16


@dataclass(frozen=True)
class Actor:
    """Who did it: a user, an API token, a peer node or the system itself."""

    kind: ActorKind
    id: str | None
    name: str


@dataclass(frozen=True)
class EntryFields:
    """Everything one audit entry records; :func:`entry_bytes` makes its leaf data."""

    index: int
    time: datetime
    actor: Actor
    organisation: UUID | None
    action: str
    subject: str
    payload: Mapping[str, Any]
    request_id: str | None = None


@dataclass(frozen=True, eq=False)
class Secret:
    """A payload value that must not be recorded; :func:`redact` replaces it with an HMAC."""

    value: JSONValue = field(repr=False)


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z``; refuses a naive datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"audit time must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def _find_secret(value: object, path: str) -> str | None:
    """The path of the first unredacted :class:`Secret` inside ``value``, if any."""
    if isinstance(value, Secret):
        return path
    if isinstance(value, Mapping):
        children: list[tuple[str, object]] = [(f"{path}.{k}", v) for k, v in value.items()]
    elif isinstance(value, list | tuple):
        children = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    else:
        return None
    return next((p for p in (_find_secret(v, k) for k, v in children) if p), None)


def _check_types(fields: EntryFields) -> None:
    """Refuse values of the wrong JSON type (the dataclass does not check at run time)."""
    strings = {"action": fields.action, "subject": fields.subject, "actor.name": fields.actor.name}
    optional = {"actor.id": fields.actor.id, "request_id": fields.request_id}
    for name, value in [*strings.items(), *optional.items()]:
        if not isinstance(value, str) and (name in strings or value is not None):
            raise ValueError(f"entry {name} must be a string, got {type(value).__name__}")
    if type(fields.index) is not int:
        raise ValueError(f"entry index must be an int, got {type(fields.index).__name__}")
    if not isinstance(fields.payload, Mapping):
        raise ValueError(f"entry payload must be an object, got {type(fields.payload).__name__}")


def _check_fields(fields: EntryFields) -> None:
    """Refuse values the v1 entry schema does not allow."""
    _check_types(fields)
    if not 0 <= fields.index <= MAX_INDEX:
        raise ValueError(f"entry index must be in [0, {MAX_INDEX}], got {fields.index}")
    if fields.actor.kind not in ACTOR_KINDS:
        raise ValueError(
            f"actor kind must be one of {sorted(ACTOR_KINDS)}, got {fields.actor.kind!r}"
        )
    secret = _find_secret(fields.payload, "payload")
    if secret:
        raise ValueError(f"{secret} holds an unredacted Secret; redact() the payload first")


def entry_object(fields: EntryFields) -> dict[str, JSONValue]:
    """The v1 entry as a JSON object (before canonicalisation)."""
    _check_fields(fields)
    return {
        "v": VERSION,
        "index": fields.index,
        "time": format_time(fields.time),
        "actor": {"kind": fields.actor.kind, "id": fields.actor.id, "name": fields.actor.name},
        "organisation": None if fields.organisation is None else str(fields.organisation),
        "action": fields.action,
        "subject": fields.subject,
        "payload": dict(fields.payload),
        "request_id": fields.request_id,
    }


def entry_bytes(fields: EntryFields) -> bytes:
    """The leaf data of an entry: its JSON object canonicalised per RFC 8785."""
    try:
        return rfc8785.dumps(entry_object(fields))
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"entry {fields.index} cannot be canonicalised: {exc}") from exc


def _load(data: bytes) -> dict[str, Any]:
    """The JSON object in ``data``, refusing anything else."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AuditVerificationError(f"entry is not UTF-8 JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise AuditVerificationError(f"entry is a JSON {type(value).__name__}, expected an object")
    want = {"v", "index", "time", "actor", "organisation", "action", "subject", "payload"}
    if set(value) != want | {"request_id"}:
        raise AuditVerificationError(
            f"entry keys are {sorted(value)}, expected {sorted(want | {'request_id'})}"
        )
    if value["v"] != VERSION:
        raise AuditVerificationError(f"entry version is {value['v']!r}, expected {VERSION}")
    return value


def parse_entry(data: bytes) -> EntryFields:
    """Read leaf data back into :class:`EntryFields`; refuses bytes that are not canonical."""
    value = _load(data)
    try:
        actor = value["actor"]
        fields = EntryFields(
            index=value["index"],
            time=datetime.strptime(value["time"], TIME_FORMAT).replace(tzinfo=UTC),
            actor=Actor(kind=actor["kind"], id=actor["id"], name=actor["name"]),
            organisation=None if value["organisation"] is None else UUID(value["organisation"]),
            action=value["action"],
            subject=value["subject"],
            payload=value["payload"],
            request_id=value["request_id"],
        )
        canonical = entry_bytes(fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise AuditVerificationError(f"entry does not follow the v1 schema: {exc!r}") from exc
    if canonical != data:
        raise AuditVerificationError(
            f"entry is not in RFC 8785 canonical form: expected {canonical[:80]!r}..., "
            f"got {data[:80]!r}..."
        )
    return fields


def redaction_of(value: JSONValue, hmac_key: bytes) -> dict[str, JSONValue]:
    """The marker that stands for a secret: ``{"redacted": "hmac-sha256:<hex>"}``.

    The HMAC-SHA256 (RFC 2104) is keyed with ``hmac_key`` and taken over the RFC 8785
    canonical JSON of the value, so equal values give equal markers whatever their type.
    """
    if len(hmac_key) < MIN_HMAC_KEY:
        raise ValueError(f"HMAC key is {len(hmac_key)} bytes, expected at least {MIN_HMAC_KEY}")
    mac = hmac.new(hmac_key, rfc8785.dumps(value), hashlib.sha256).hexdigest()
    return {"redacted": f"hmac-sha256:{mac}"}


def _redact_value(value: Any, hmac_key: bytes, secret_fields: Set[str]) -> Any:
    """``value`` with every :class:`Secret` and every named field replaced by its marker."""
    if isinstance(value, Secret):
        return redaction_of(value.value, hmac_key)
    if isinstance(value, Mapping):
        return {
            key: redaction_of(_unwrap(item), hmac_key)
            if key in secret_fields
            else _redact_value(item, hmac_key, secret_fields)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_value(item, hmac_key, secret_fields) for item in value]
    return value


def _unwrap(value: Any) -> Any:
    """The value inside a :class:`Secret`, or the value itself."""
    return value.value if isinstance(value, Secret) else value


def redact(
    payload: Mapping[str, Any], hmac_key: bytes, secret_fields: Set[str] = frozenset()
) -> dict[str, Any]:
    """A copy of ``payload`` with secrets replaced by keyed HMAC markers.

    A secret is a value wrapped in :class:`Secret`, or the value of a key named in
    ``secret_fields`` at any depth (the whole value, even an object).
    """
    if len(hmac_key) < MIN_HMAC_KEY:
        raise ValueError(f"HMAC key is {len(hmac_key)} bytes, expected at least {MIN_HMAC_KEY}")
    result: dict[str, Any] = _redact_value(payload, hmac_key, secret_fields)
    return result


def digest_of(data: bytes) -> dict[str, str]:
    """What to record instead of a large output: ``{"sha256": "<hex>"}``."""
    return {"sha256": hashlib.sha256(data).hexdigest()}
