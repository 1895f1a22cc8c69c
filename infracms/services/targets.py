"""The node is not a target: host addresses that reach this machine are refused.

A host address that is loopback, unspecified or link-local, that is `localhost`, that
resolves to such an address, or that is one of the node's own addresses would make
runs ssh into the node itself (with the node's key and the organisation's secrets).
Such addresses are refused when a host is saved and again just before a run connects
(a name can resolve differently later), unless a node admin allows them with
``INFRACMS_ALLOW_NODE_TARGET=true``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import socket
from collections.abc import Iterable
from pathlib import Path

from infracms.errors import InvalidInput
from infracms.models.validators import is_loopback_name, node_address_kind

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
FIB_TRIE = Path("/proc/net/fib_trie")
IF_INET6 = Path("/proc/net/if_inet6")
ALLOW_HINT = "a node administrator can allow it with INFRACMS_ALLOW_NODE_TARGET=true"


def refuse_node_target(address: str, *, allow: bool) -> None:
    """Raise InvalidInput (on the `address` field) if `address` reaches this machine."""
    if allow:
        return
    reason = node_target_reason(address)
    if reason is not None:
        message = f"{address} is {reason}: the node itself is not a target ({ALLOW_HINT})"
        raise InvalidInput(message, errors={"address": message})


def refuse_node_targets(hosts: Iterable[tuple[str, str]], *, allow: bool) -> None:
    """At run time: refuse if any (name, address) host reaches this machine now."""
    if allow:
        return
    own = node_addresses()  # once per run, not per host
    for name, address in hosts:
        reason = node_target_reason(address, own)
        if reason is not None:
            raise InvalidInput(
                f"host {name} ({address}) is {reason} now: the node itself is not a target, "
                f"nothing was run ({ALLOW_HINT})"
            )


def node_target_reason(address: str, own: frozenset[IPAddress] | None = None) -> str | None:
    """Why `address` reaches this machine ("a loopback address", …), or None; `own` is
    the node's addresses (looked up when not given)."""
    if is_loopback_name(address):
        return "a loopback name"
    if own is None:
        own = node_addresses()
    for ip in _resolve(address):
        kind = node_address_kind(ip)
        if kind is not None:
            return kind if ip == _literal(address) else f"a name for {ip}, {kind}"
        if ip in own:
            return "one of the node's own addresses"
    return None


def _literal(address: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _resolve(address: str) -> set[IPAddress]:
    """The addresses a name resolves to now; none if it does not resolve (ssh will fail)."""
    literal = _literal(address)
    if literal is not None:
        return {literal}
    try:
        found = socket.getaddrinfo(address, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return set()
    # a scoped IPv6 address comes back as "fe80::1%eth0": the scope does not matter here
    return {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found}


def node_addresses() -> frozenset[IPAddress]:
    """The addresses this machine holds on any interface (Linux), and its name's."""
    found: set[IPAddress] = set(_fib_local_addresses()) | set(_inet6_addresses())
    with contextlib.suppress(OSError):
        found |= _resolve(socket.gethostname())
    return frozenset(found)


def _fib_local_addresses() -> Iterable[IPAddress]:
    # /proc/net/fib_trie lists each local IPv4 address as "|-- A.B.C.D" then "/32 host LOCAL"
    try:
        lines = FIB_TRIE.read_text().splitlines()
    except OSError:
        return []
    return [
        ipaddress.IPv4Address(previous.split()[-1])
        for previous, line in itertools.pairwise(lines)
        if line.strip() == "/32 host LOCAL" and "|--" in previous
    ]


def _inet6_addresses() -> Iterable[IPAddress]:
    # /proc/net/if_inet6: one address per line, as 32 hex digits first
    try:
        lines = IF_INET6.read_text().splitlines()
    except OSError:
        return []
    return [ipaddress.IPv6Address(int(line.split()[0], 16)) for line in lines if line.strip()]
