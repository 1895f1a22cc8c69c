"""A third-party module package for the tests: `motd` uses every part of the contract.

Its one hook is `register_modules`; what `motd` does lives on its class (every method
of ``MODULE_METHODS``) and on its offerings: `motd` answers nothing, so infracms'
defaults apply (the federation tests rely on them), and `motd-banner` answers every
method of ``OFFERING_METHODS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import Field

from infracms.hookspecs import hookimpl
from infracms.modules.contract import (
    Dependency,
    Module,
    ModuleSettings,
    Offering,
    Plan,
    SecretRef,
    settings_as,
)
from infracms.modules.offerings import ProvidedOffering, ServiceHost
from infracms.modules.targets import DefinitionUse, HostFacts, Plain, PlainMapping, Target

CALLS: list[str] = []


class MotdSettings(ModuleSettings):
    """Settings of the message of the day."""

    message: str = Field(default="Welcome", max_length=500, description="the message")
    lines: int = Field(default=1, ge=1, le=10, description="how many times")
    signature: SecretRef | None = Field(default=None, description="a secret signature")


class Banner(Offering):
    """A banner is a message of the day a peer writes, signed with a generated secret."""

    def instance_settings(
        self, *, provided: ProvidedOffering, plan: Plan, parameters: PlainMapping
    ) -> dict[str, Plain] | None:
        """The requester's text as the message, signed with a new secret."""
        CALLS.append("instance_settings")
        return {**provided.settings, "message": str(parameters["text"]), "signature": "s3cret"}

    def connection_details(
        self,
        *,
        provided: ProvidedOffering,
        plan: Plan,
        settings: PlainMapping,
        hosts: Sequence[ServiceHost],
    ) -> dict[str, Plain] | None:
        """Where the banner shows, and the signature to check it by."""
        CALLS.append("connection_details")
        return {"hosts": [host.address for host in hosts], "signature": settings["signature"]}

    def updated_settings(
        self,
        *,
        provided: ProvidedOffering,
        plan: Plan,
        settings: PlainMapping,
        parameters: PlainMapping,
        previous: PlainMapping,
    ) -> dict[str, Plain] | None:
        """The new text; the banner cannot grow to more lines than it had."""
        CALLS.append("updated_settings")
        if parameters.get("lines", 1) != previous.get("lines", 1):
            raise ValueError("a banner keeps its number of lines")
        return {**settings, "message": str(parameters["text"])}

    def removal_settings(
        self,
        *,
        provided: ProvidedOffering,
        plan: Plan,
        settings: PlainMapping,
        parameters: PlainMapping,
    ) -> dict[str, Plain] | None:
        """The message back to the provider's own."""
        CALLS.append("removal_settings")
        return {**settings, "message": str(provided.settings.get("message", "Welcome"))}


TEXT = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
OFFERINGS = (
    Offering(
        name="motd",
        title="Motd",
        description="A message",
        plans=(Plan(name="standard", title="Standard", parameters={"type": "object"}),),
    ),
    Banner(
        name="motd-banner",
        title="Signed banner",
        description="A signed message of the day",
        plans=(Plan(name="standard", title="Standard", parameters=TEXT),),
    ),
)


class Motd(Module):
    """Writes /etc/motd."""

    name = "motd"
    version = "0.3.0"
    title = "Message of the day"
    description = "Writes /etc/motd on the host."
    settings = MotdSettings
    role = Path(__file__).parent / "role"
    requires = (Dependency("base", ">=1.0,<2"),)
    offerings = OFFERINGS

    @classmethod
    def validate_settings(cls, settings: ModuleSettings, target: Target) -> dict[str, str]:
        """Refuse a message that says 'forbidden'."""
        CALLS.append("validate_settings")
        if "forbidden" in settings_as(MotdSettings, settings).message:
            return {"message": f"may not say 'forbidden' on {target.kind} {target.name}"}
        return {}

    @classmethod
    def extra_variables(cls, settings: PlainMapping, host: HostFacts) -> dict[str, Plain]:
        """Add the host's name to the message."""
        CALLS.append("extra_variables")
        return {"greeting": f"{settings['message']}, {host.name}"}

    @classmethod
    def refuse_disable(cls, organisation: str, definitions: Sequence[DefinitionUse]) -> str | None:
        """Refuse to disable motd in an organisation called `sticky`."""
        CALLS.append("refuse_disable")
        return "sticky organisations keep their motd" if organisation == "sticky" else None


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [Motd]
