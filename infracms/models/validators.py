"""Field checks shared by the Create and Update shapes."""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Annotated, Any, TypeVar

from pydantic import Field as PydanticField
from sqlmodel import Field

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_.-]{0,61}[a-z0-9])?$")
HOSTNAME_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Host variables reach Ansible only inside `infracms_host_vars` (runs.inventory), so no
# name can override a role's or Ansible's variables; names that look like those are
# still refused, as they would mislead whoever reads the inventory.
RESERVED_VARIABLE_PREFIXES = ("ansible_", "_ansible", "infracms_")


T = TypeVar("T")
J = TypeVar("J")

RESERVED_NAMES = frozenset({"new"})  # page URLs use /new for creation forms

# What the databases hold: a BIGINT column (PostgreSQL and SQLite alike) is signed 64-bit,
# and PostgreSQL refuses NUL in text. Integers a request gives (offsets, indexes, event
# ids) and free text are bounded here, so a value no column can hold is a 422, not a 500.
DB_INT_MAX = 2**63 - 1
TEXT_PATTERN = r"^[^\x00]*$"
# Free-form JSON (variables, module settings): how deep, how many values, how long a
# string, how many digits an integer may have (JSON integers beyond 64 bits lose their
# value in most consumers, and Python refuses to parse more than 4,300 digits).
JSON_MAX_DEPTH = 32
JSON_MAX_VALUES = 10_000
JSON_MAX_STRING = 65_536
JSON_MAX_INT = DB_INT_MAX


def text_field(default: Any = ..., *, max_length: int, **extra: Any) -> Any:
    """A free-text field: at most `max_length` characters, no NUL (declared in the schema)."""
    return Field(default, max_length=max_length, schema_extra={"pattern": TEXT_PATTERN}, **extra)


def username_field(default: Any = ...) -> Any:
    """A login name on a host (see `check_username`), its pattern in the schema too."""
    return Field(
        default, max_length=32, schema_extra={"json_schema_extra": {"pattern": USERNAME_RE.pattern}}
    )


def name_field(*, max_length: int = 63, **extra: Any) -> Any:
    """A short name (see `check_name`): its pattern is declared in the schema too."""
    return Field(
        max_length=max_length,
        schema_extra={"json_schema_extra": {"pattern": NAME_RE.pattern}},
        **extra,
    )


def check_given(value: T | None) -> T:
    """A value for a field that may be left out of an update, but not set to null."""
    if value is None:
        raise ValueError("cannot be null: leave the field out to keep it")
    return value


def check_name(value: str) -> str:
    """A short name: lower-case letters, digits, `-`, `_` and `.`, at most 63 characters."""
    if value in RESERVED_NAMES:
        raise ValueError(f"{value!r} is reserved; choose another name")
    if not NAME_RE.fullmatch(value):
        raise ValueError(
            "must be 1-63 lower-case letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return value


def check_address(value: str) -> str:
    """An IPv4 or IPv6 address, or a DNS host name."""
    value = value.strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    name = value.rstrip(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(map(HOSTNAME_LABEL_RE.fullmatch, labels)):
        raise ValueError(f"{value!r} is neither an IP address nor a valid host name")
    if labels[-1].isdigit():
        raise ValueError(f"{value!r} is not a valid IP address")
    return name.lower()


def node_address_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What makes an IP address one that always means this machine, or None.

    An IPv4-mapped IPv6 address is judged as the IPv4 address it carries."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_link_local:
        return "a link-local address"
    return None


def is_loopback_name(name: str) -> bool:
    """Whether a host name is `localhost` or under `.localhost` (RFC 6761)."""
    name = name.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def check_username(value: str) -> str:
    """A POSIX-style login name."""
    if not USERNAME_RE.fullmatch(value):
        raise ValueError("must be a login name: lower-case letters, digits, '_', '.', '-'")
    return value


def check_variables(value: dict[str, Any]) -> dict[str, Any]:
    """Host or group variables: identifier keys that do not override connection settings,
    values that are bounded JSON (`check_json`)."""
    for key in value:
        if not VARIABLE_RE.fullmatch(key):
            raise ValueError(f"variable name {key!r} is not an identifier")
        if key.startswith(RESERVED_VARIABLE_PREFIXES):
            raise ValueError(f"variable name {key!r} is reserved")
    return check_json(value, "variables")


def check_json(value: J, where: str = "value") -> J:
    """Free-form JSON that any consumer and column holds: finite numbers, integers in 64
    bits, no NUL, string keys, at most JSON_MAX_DEPTH deep and JSON_MAX_VALUES values."""
    budget = [JSON_MAX_VALUES]
    _check_json_value(value, where, 0, budget)
    return value


def _check_json_value(value: Any, where: str, depth: int, budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"has more than {JSON_MAX_VALUES} values")
    if depth > JSON_MAX_DEPTH:
        raise ValueError(f"{where} is nested deeper than {JSON_MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has a key that is not a string")
            _check_text(key, f"{where} key")
            _check_json_value(item, f"{where}.{key}"[:200], depth + 1, budget)
    elif isinstance(value, list | tuple):
        for position, item in enumerate(value):
            _check_json_value(item, f"{where}[{position}]"[:200], depth + 1, budget)
    else:
        _check_json_scalar(value, where)


def _check_json_scalar(value: Any, where: str) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not -JSON_MAX_INT - 1 <= value <= JSON_MAX_INT:
            raise ValueError(f"{where} is an integer outside 64 bits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is not a finite number")
    elif isinstance(value, str):
        _check_text(value, where)
    else:
        raise ValueError(f"{where} is not a JSON value")


def _check_text(value: str, where: str) -> None:
    if "\x00" in value:
        raise ValueError(f"{where} contains a NUL character")
    if len(value) > JSON_MAX_STRING:
        raise ValueError(f"{where} is longer than {JSON_MAX_STRING} characters")


# Free text of an update, where null is refused (`X | SkipJsonSchema[None]`): the
# constraints sit on the string itself so that the schema keeps them.
Text200 = Annotated[str, PydanticField(max_length=200, pattern=TEXT_PATTERN)]
Text500 = Annotated[str, PydanticField(max_length=500, pattern=TEXT_PATTERN)]
# A name inside a list (a host's groups, a run's hosts): the pattern, declared.
NameStr = Annotated[str, PydanticField(max_length=63, pattern=NAME_RE.pattern)]
# Host or group variables: identifier keys (declared), bounded JSON values (checked).
Variables = Annotated[
    dict[str, Any],
    PydanticField(json_schema_extra={"propertyNames": {"pattern": VARIABLE_RE.pattern}}),
]


def check_cron(value: str) -> str:
    """A five-field cron expression (minute hour day month weekday), as croniter reads it."""
    from croniter import croniter  # type: ignore[import-untyped]

    value = " ".join(value.split())
    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise ValueError(
            "must be a cron expression of five fields: minute hour day-of-month month "
            "day-of-week, e.g. '0 3 * * *'"
        )
    return value


def check_time_zone(value: str) -> str:
    """An IANA time zone name such as ``Europe/Paris`` (or ``UTC``)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        if not value or value != value.strip() or value.startswith(("/", ".")) or ".." in value:
            raise ValueError(value)
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError("must be an IANA time zone name, e.g. 'Europe/Paris' or 'UTC'") from exc
    return value
