"""Typed settings fields the built-in modules share: ports, networks, names, paths.

Each type validates and normalises one kind of value, so that a value that reaches a
role can be written into a configuration file as it is: no quotes, no newlines, no
characters the file's format would read as syntax.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator, Field

UNIX_NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
DNS_NAME_RE = re.compile(
    r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)
PATH_RE = re.compile(r"^/[A-Za-z0-9._@+/-]*$")


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a network such as 10.0.0.0/8 or 2001:db8::/32") from exc


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IP address") from exc


def _interface_address(value: str) -> str:
    try:
        return str(ipaddress.ip_interface(value.strip()))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an address with a prefix, e.g. 10.8.0.1/24") from exc


def _unix_name(value: str) -> str:
    if not UNIX_NAME_RE.fullmatch(value):
        raise ValueError(
            f"{value!r}: expected 1-32 of a-z, 0-9, '_' and '-', not starting with a digit"
        )
    return value


def _dns_name(value: str) -> str:
    value = value.lower()
    if len(value) > 253 or not DNS_NAME_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a host name such as www.example.org or *.example.org")
    return value


def _absolute_path(value: str) -> str:
    parts = value.split("/")
    if not PATH_RE.fullmatch(value) or ".." in parts or "" in parts[1:-1] or len(value) > 4096:
        raise ValueError(
            f"{value!r}: expected an absolute path of letters, digits and . _ @ + - /, without '..'"
        )
    return value.rstrip("/") or "/"


Port = Annotated[int, Field(ge=1, le=65535)]
"""A TCP or UDP port number."""

Network = Annotated[str, AfterValidator(_network)]
"""An IPv4 or IPv6 network in CIDR notation (a bare address is a /32 or /128)."""

IPAddress = Annotated[str, AfterValidator(_address)]
"""An IPv4 or IPv6 address."""

InterfaceAddress = Annotated[str, AfterValidator(_interface_address)]
"""An address with its prefix length, as given to a network interface (10.8.0.1/24)."""

UnixName = Annotated[str, AfterValidator(_unix_name)]
"""A user or group name as Debian's adduser accepts it."""

DnsName = Annotated[str, AfterValidator(_dns_name)]
"""A host name, lower-cased; a leading `*.` label is allowed for wildcards."""

AbsolutePath = Annotated[str, AfterValidator(_absolute_path)]
"""An absolute file system path made of safe characters."""


def duplicates(values: Iterable[str]) -> list[str]:
    """The values that occur more than once, in first-seen order."""
    seen: set[str] = set()
    repeated: list[str] = []
    for value in values:
        if value in seen and value not in repeated:
            repeated.append(value)
        seen.add(value)
    return repeated


def refuse_duplicates(values: Iterable[str], what: str) -> None:
    """Raise ValueError naming the repeated values."""
    repeated = duplicates(values)
    if repeated:
        raise ValueError(f"{what} must be unique; repeated: {', '.join(repeated)}")
