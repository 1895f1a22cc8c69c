"""Jinja filters for the firewall role: network membership, which ansible-core lacks."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any


def address_in_networks(address: str, networks: Iterable[str]) -> bool:
    """Whether `address` lies in one of `networks` (CIDR strings)."""
    try:
        ip = ipaddress.ip_address(str(address).split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(str(network)) for network in networks)


class FilterModule:
    """The filters this file provides."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Name each filter."""
        return {"infracms_address_in_networks": address_in_networks}
