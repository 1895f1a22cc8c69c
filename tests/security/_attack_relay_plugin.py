"""A third-party plugin whose extra_variables hook passes a host variable on to its
role (as a plugin might, to let sysadmins tune it per host): what an editor writes in
the host's variables then reaches the role's settings."""

from __future__ import annotations

from typing import Any

from infracms.hookspecs import hookimpl
from infracms.modules.contract import Module


@hookimpl
def extra_variables(module: type[Module], host: dict[str, Any]) -> dict[str, Any] | None:
    """The host's `motd_banner` variable, as the motd role's banner."""
    if module.name != "motd" or "motd_banner" not in host["variables"]:
        return None
    return {"banner": host["variables"]["motd_banner"]}
