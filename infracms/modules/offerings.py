"""What a module offers to peers: offerings, their plans, and what each does for an instance.

A module declares its offerings (``Module.offerings``). An ``Offering`` is data (its
name, plans and terms) and the behaviour of its instances: subclass it and override
the methods below; infracms calls them on the offering a publication names, so an
implementation never checks which module or offering it is asked about. A method
that is not overridden answers None, and infracms does what docs/modules.md says
(merge the parameters over the base settings, hand over the pool's addresses, ...).

Settings that ``instance_settings`` (or ``updated_settings``) returns may hold a secret
itself in a secret field (a password it generated, say): infracms stores it as a
credential of the providing organisation and keeps only the reference in the
definition's revisions; ``connection_details`` gets the instance's settings with those
references resolved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infracms.modules.targets import Plain, PlainMapping


@dataclass(frozen=True)
class Plan:
    """One plan of an offering: its parameters' JSON Schema and optional terms."""

    name: str
    title: str
    parameters: dict[str, Any] = field(default_factory=dict)
    price: str | None = None


@dataclass(frozen=True)
class ProvidedOffering:
    """One of a module's offerings as an organisation provides it to peers."""

    id: str
    """The offering's id in the node's catalog, e.g. ``coop-managed-postgresql``."""
    name: str
    """Which of the module's offerings (``Offering.name``)."""
    organisation: str
    """The providing organisation."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """The provider's base settings for every instance (plain data, secrets as references)."""


@dataclass(frozen=True)
class ServiceHost:
    """A host of the pool an offering's instances go on."""

    name: str
    address: str
    ssh_port: int = 22
    host_key: str | None = None
    """The pinned public key (``TYPE BASE64``), for the requester's known_hosts."""


@dataclass(frozen=True)
class Offering:
    """A service a module offers to peers through the node's catalog."""

    name: str
    title: str
    description: str
    plans: tuple[Plan, ...]
    kind: str = "service"
    plan_updateable: bool = False
    """Whether an instance may move to another of its plans (OSB ``plan_updateable``)."""

    def instance_settings(
        self, *, provided: ProvidedOffering, plan: Plan, parameters: PlainMapping
    ) -> dict[str, Plain] | None:
        """Return the module settings that provision this plan with these parameters."""
        return None

    def connection_details(
        self,
        *,
        provided: ProvidedOffering,
        plan: Plan,
        settings: PlainMapping,
        hosts: Sequence[ServiceHost],
    ) -> dict[str, Plain] | None:
        """Return the connection details handed to the requester at bind."""
        return None

    def updated_settings(
        self,
        *,
        provided: ProvidedOffering,
        plan: Plan,
        settings: PlainMapping,
        parameters: PlainMapping,
        previous: PlainMapping,
    ) -> dict[str, Plain] | None:
        """Return the instance's settings changed to this plan and these parameters."""
        return None

    def removal_settings(
        self,
        *,
        provided: ProvidedOffering,
        plan: Plan,
        settings: PlainMapping,
        parameters: PlainMapping,
    ) -> dict[str, Plain] | None:
        """Return the settings that remove this instance from its hosts (its entries marked
        absent), or None when removing it needs no run."""
        return None


OFFERING_METHODS = (
    "instance_settings",
    "connection_details",
    "updated_settings",
    "removal_settings",
)
"""What an Offering subclass may override: what each does for an instance."""
