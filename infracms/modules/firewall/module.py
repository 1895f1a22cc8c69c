"""`firewall`: an nftables rule set that drops what is not allowed.

Incoming traffic is dropped unless a rule allows it (TCP or UDP ports, optionally only
from some networks). The SSH port is always open — the one in the settings and the one
infracms reaches the host on — so that a rule set cannot shut the node out; the
``validate_settings`` hook refuses SSH sources that no node could connect from.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from infracms.hookspecs import hookimpl
from infracms.modules.contract import Module, ModuleSettings, settings_as
from infracms.modules.fields import Network, Port
from infracms.modules.targets import HostFacts, Plain, PlainMapping, Target

COMMENT_RE = re.compile(r"^[A-Za-z0-9 _.,:/()+-]{0,64}$")
PORT_RANGE_RE = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")


def _port_or_range(value: int | str) -> int | str:
    """A port (443, kept a number even when typed as text) or an inclusive range
    ("8000-8100"), as nftables writes it."""
    match = PORT_RANGE_RE.fullmatch(str(value).strip())
    if not match:
        raise ValueError(f"{value!r}: expected a port such as 443 or a range such as 8000-8100")
    low, high = int(match[1]), int(match[2] or match[1])
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"{value!r}: ports run from 1 to 65535, low to high")
    return low if low == high else f"{low}-{high}"


PortOrRange = Annotated[int | str, AfterValidator(_port_or_range)]


class FirewallRule(BaseModel):
    """Allow traffic to some ports, from anywhere or from some networks."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_default=True)

    proto: Literal["tcp", "udp"] = Field(default="tcp", description="protocol")
    ports: list[PortOrRange] = Field(
        min_length=1, max_length=50, description="ports or ranges such as 443 or 8000-8100"
    )
    sources: list[Network] = Field(
        default_factory=list, max_length=200, description="allowed networks (empty: anywhere)"
    )
    comment: str = Field(default="", description="what the rule is for")

    @field_validator("comment")
    @classmethod
    def _comment(cls, value: str) -> str:
        if not COMMENT_RE.fullmatch(value):
            raise ValueError("at most 64 letters, digits, spaces and _ . , : / ( ) + -")
        return value


class FirewallSettings(ModuleSettings):
    """Settings of the `firewall` module."""

    input_policy: Literal["drop", "accept"] = Field(
        default="drop", description="what happens to incoming traffic no rule allows"
    )
    forward_policy: Literal["drop", "accept"] = Field(
        default="drop", description="what happens to traffic routed through the host"
    )
    ssh_port: Port = Field(default=22, description="the SSH port, always open")
    ssh_sources: list[Network] = Field(
        default_factory=list,
        max_length=200,
        description="networks SSH is open to (empty: anywhere)",
    )
    rules: list[FirewallRule] = Field(
        default_factory=list, max_length=200, description="what else is allowed in"
    )
    allow_ping: bool = Field(default=True, description="answer ICMP echo (ping)")
    log_dropped: bool = Field(default=False, description="log dropped packets (rate-limited)")


class Firewall(Module):
    """An nftables firewall."""

    name = "firewall"
    version = "1.0.0"
    title = "Firewall"
    description = (
        "nftables with a default-drop input policy, allowed TCP and UDP ports and source "
        "networks; the SSH port always stays open."
    )
    settings = FirewallSettings
    role = Path(__file__).parent / "role"

    @classmethod
    def validate_settings(cls, settings: ModuleSettings, target: Target) -> dict[str, str]:
        """Refuse a rule set that would lock every node out of SSH."""
        return lockout_problems(settings_as(FirewallSettings, settings))

    @classmethod
    def extra_variables(cls, settings: PlainMapping, host: HostFacts) -> dict[str, Plain]:
        """Tell the role which port infracms reaches this host on: it stays open too."""
        return {"connection_port": host.ssh_port or 22}


def _unreachable(network: str) -> bool:
    """Whether no node could ever connect from inside this network."""
    net = ipaddress.ip_network(network)
    return net.is_loopback or net.is_link_local or net.is_multicast or net.is_unspecified


def lockout_problems(settings: FirewallSettings) -> dict[str, str]:
    """The settings that would shut every node out of SSH: {field: why}."""
    if settings.input_policy == "accept" or not settings.ssh_sources:
        return {}
    if all(_unreachable(network) for network in settings.ssh_sources):
        return {
            "ssh_sources": (
                f"SSH would be open only to {', '.join(settings.ssh_sources)}, which no node "
                "can connect from: the host would be shut out; add the network infracms "
                "connects from, or leave ssh_sources empty"
            )
        }
    return {}


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [Firewall]
