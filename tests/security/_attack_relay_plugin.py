"""A third-party module whose extra_variables passes a host variable on to its role (as
a module might, to let sysadmins tune it per host): what an editor writes in the host's
variables then reaches the role's settings. It is the test package's `motd` with that
one method changed, so load it instead of the test package."""

from __future__ import annotations

from infracms.hookspecs import hookimpl
from infracms.modules.contract import Module
from infracms.modules.targets import HostFacts, Plain, PlainMapping
from tests.dummy_module.infracms_dummy import Motd


class RelayingMotd(Motd):
    """`motd`, relaying the host's `motd_banner` variable as the role's banner."""

    @classmethod
    def extra_variables(cls, settings: PlainMapping, host: HostFacts) -> dict[str, Plain]:
        """The host's `motd_banner` variable, as the motd role's banner."""
        if "motd_banner" not in host.variables:
            return {}
        return {"banner": host.variables["motd_banner"]}


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [RelayingMotd]
