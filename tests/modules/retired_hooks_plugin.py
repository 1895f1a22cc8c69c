"""A plugin written for the per-module hooks of earlier versions: every hook called for
every module, each implementation checking the module's name first."""

from __future__ import annotations

from typing import Any

from infracms.hookspecs import hookimpl
from infracms.modules.contract import Module


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return []


@hookimpl
def validate_settings(module: type[Module], settings: Any) -> dict[str, str] | None:
    """The old form: a name check, then the module's own answer."""
    if module.name != "old":
        return None
    return {}


@hookimpl
def offering_settings(module: type[Module], offering: Any) -> dict[str, Any] | None:
    """The old form, checking the offering's name too."""
    if module.name != "old" or offering.name != "old-service":
        return None
    return {}
