"""A third-party module package for the tests: `motd` uses every hook infracms has."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from infracms.hookspecs import hookimpl
from infracms.modules.contract import Dependency, Module, ModuleSettings, Offering, Plan, SecretRef

CALLS: list[str] = []


class MotdSettings(ModuleSettings):
    """Settings of the message of the day."""

    message: str = Field(default="Welcome", max_length=500, description="the message")
    lines: int = Field(default=1, ge=1, le=10, description="how many times")
    signature: SecretRef | None = Field(default=None, description="a secret signature")


class Motd(Module):
    """Writes /etc/motd."""

    name = "motd"
    version = "0.3.0"
    title = "Message of the day"
    description = "Writes /etc/motd on the host."
    settings = MotdSettings
    role = Path(__file__).parent / "role"
    requires = (Dependency("base", ">=1.0,<2"),)


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [Motd]


@hookimpl
def validate_settings(module: type[Module], settings: Any, target: Any) -> dict[str, str] | None:
    """Refuse a message that names another organisation."""
    if module is not Motd:
        return None
    CALLS.append("validate_settings")
    if "forbidden" in settings.message:
        return {"message": f"may not say 'forbidden' on {target.kind} {target.name}"}
    return None


@hookimpl
def extra_variables(
    module: type[Module], settings: Any, host: dict[str, Any]
) -> dict[str, Any] | None:
    """Add the host's name to the message."""
    if module is not Motd:
        return None
    CALLS.append("extra_variables")
    return {"greeting": f"{settings['message']}, {host['name']}"}


@hookimpl
def catalog_offerings(module: type[Module]) -> list[Offering] | None:
    """Offer a motd service to peers."""
    if module is not Motd:
        return None
    CALLS.append("catalog_offerings")
    plan = Plan(name="standard", title="Standard", parameters={"type": "object"})
    return [Offering(name="motd", title="Motd", description="A message", plans=(plan,))]


@hookimpl
def refuse_disable(module: type[Module], organisation: str, definitions: list[Any]) -> str | None:
    """Refuse to disable motd in an organisation called `sticky`."""
    if module is not Motd:
        return None
    CALLS.append("refuse_disable")
    return "sticky organisations keep their motd" if organisation == "sticky" else None
