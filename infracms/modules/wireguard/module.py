"""`wireguard`: a WireGuard interface and its peers, brought up by wg-quick.

The interface's private key is a secret reference: it reaches the host only inside the
root-only ``/etc/wireguard/<interface>.conf``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from infracms.hookspecs import hookimpl
from infracms.modules.contract import Module, ModuleSettings, SecretRef
from infracms.modules.fields import InterfaceAddress, Network, Port, refuse_duplicates

INTERFACE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,14}$")
PEER_NAME_RE = re.compile(r"^[A-Za-z0-9 _.@-]{1,64}$")
ENDPOINT_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


def wireguard_key(value: str) -> str:
    """A WireGuard key: 32 bytes in base64 (44 characters)."""
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(
            "a WireGuard key is 44 characters of base64 (wg pubkey prints one)"
        ) from exc
    if len(value) != 44 or len(raw) != 32:
        raise ValueError("a WireGuard key is 44 characters of base64 (wg pubkey prints one)")
    return value


def _interface(value: str) -> str:
    if not INTERFACE_RE.fullmatch(value):
        raise ValueError("expected 1-15 of a-z, 0-9, '_' and '-', starting with a letter")
    return value


def _endpoint(value: str) -> str:
    match = ENDPOINT_RE.fullmatch(value)
    if not match or not 1 <= int(match[2]) <= 65535:
        raise ValueError("expected host:port or [IPv6]:port, e.g. vpn.example.org:51820")
    return value


def _peer_name(value: str) -> str:
    if not PEER_NAME_RE.fullmatch(value):
        raise ValueError("at most 64 letters, digits, spaces and _ . @ -")
    return value


class Peer(BaseModel):
    """Another WireGuard endpoint this interface talks to."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_default=True)

    name: Annotated[str, AfterValidator(_peer_name)] = Field(description="who the peer is")
    public_key: Annotated[str, AfterValidator(wireguard_key)] = Field(
        description="the peer's public key (wg pubkey)"
    )
    allowed_ips: list[Network] = Field(
        min_length=1,
        max_length=100,
        description="networks routed to this peer and accepted from it, e.g. 10.8.0.2/32",
    )
    endpoint: Annotated[str, AfterValidator(_endpoint)] | None = Field(
        default=None, description="where to reach the peer, host:port (blank: it calls in)"
    )
    persistent_keepalive: int | None = Field(
        default=None, ge=1, le=65535, description="seconds between keep-alives (behind NAT: 25)"
    )


def _shared_network(peers: list[Peer]) -> tuple[str, str, str] | None:
    """Two peers whose allowed IPs overlap, and where; CIDR blocks nest or are apart."""
    claims = sorted(
        (
            (network.version, network.network_address, network.prefixlen, network, peer.name)
            for peer in peers
            for network in (ipaddress.ip_network(text) for text in peer.allowed_ips)
        ),
        key=lambda claim: claim[:3],
    )
    enclosing: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
    for *_, network, name in claims:
        while enclosing and not (
            enclosing[-1][0].version == network.version and network.subnet_of(enclosing[-1][0])  # type: ignore[arg-type]
        ):
            enclosing.pop()
        for _outer, owner in enclosing:
            if owner != name:
                return owner, name, str(network)
        enclosing.append((network, name))
    return None


class WireguardSettings(ModuleSettings):
    """Settings of the `wireguard` module."""

    interface: Annotated[str, AfterValidator(_interface)] = Field(
        default="wg0", description="interface name"
    )
    private_key: SecretRef = Field(description="the interface's private key (wg genkey)")
    addresses: list[InterfaceAddress] = Field(
        min_length=1, max_length=10, description="the interface's addresses, e.g. 10.8.0.1/24"
    )
    listen_port: Port | None = Field(
        default=51820, description="UDP port to listen on (blank: any, for a client)"
    )
    mtu: int | None = Field(default=None, ge=1280, le=9000, description="MTU (blank: automatic)")
    ip_forward: bool = Field(
        default=False, description="route between peers and networks (IPv4 and IPv6 forwarding)"
    )
    peers: list[Peer] = Field(default_factory=list, max_length=500, description="peers")

    @field_validator("addresses")
    @classmethod
    def _unique_addresses(cls, value: list[str]) -> list[str]:
        refuse_duplicates(value, "addresses")
        return value

    @field_validator("peers")
    @classmethod
    def _distinct_peers(cls, value: list[Peer]) -> list[Peer]:
        refuse_duplicates((peer.public_key for peer in value), "peer public keys")
        refuse_duplicates((peer.name for peer in value), "peer names")
        clash = _shared_network(value)
        if clash:
            raise ValueError(
                f"peers {clash[0]} and {clash[1]} both claim {clash[2]}: "
                "WireGuard routes each address to one peer only"
            )
        return value


class Wireguard(Module):
    """A WireGuard interface."""

    name = "wireguard"
    version = "1.0.0"
    title = "WireGuard VPN"
    description = (
        "A WireGuard interface with its addresses, listen port and peers (public keys, "
        "allowed IPs, endpoints), brought up at boot by wg-quick."
    )
    settings = WireguardSettings
    role = Path(__file__).parent / "role"


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [Wireguard]
