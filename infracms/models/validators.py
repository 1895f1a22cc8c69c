"""Field checks shared by the Create and Update shapes."""

from __future__ import annotations

import ipaddress
import re

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_.-]{0,61}[a-z0-9])?$")
HOSTNAME_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Host variables reach Ansible only inside `infracms_host_vars` (runs.inventory), so no
# name can override a role's or Ansible's variables; names that look like those are
# still refused, as they would mislead whoever reads the inventory.
RESERVED_VARIABLE_PREFIXES = ("ansible_", "_ansible", "infracms_")


RESERVED_NAMES = frozenset({"new"})  # page URLs use /new for creation forms


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


def check_variables(value: dict[str, object]) -> dict[str, object]:
    """Host or group variables: identifier keys that do not override connection settings."""
    for key in value:
        if not VARIABLE_RE.fullmatch(key):
            raise ValueError(f"variable name {key!r} is not an identifier")
        if key.startswith(RESERVED_VARIABLE_PREFIXES):
            raise ValueError(f"variable name {key!r} is reserved")
    return value
