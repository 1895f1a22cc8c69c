"""The module plugin contract: every hook, declared once, with what it must return.

Implement hooks with ``@infracms.hookspecs.hookimpl`` in a module or plugin object and
register it through the ``infracms.modules`` entry point group (built-in modules are
registered the same way, from ``infracms/plugins.py``). Hooks are called with keyword
arguments; an implementation may accept fewer arguments than the spec. Hooks that take
a ``module`` are called for every module: return None for modules that are not yours.

The ``offering_*`` hooks answer with the first result that is not None. A secret field
of the settings ``offering_settings`` (or ``offering_update``) returns may hold the
secret itself (a password it generated, say): infracms stores it as a credential of the
providing organisation and keeps only the reference in the definition's revisions;
``offering_credentials`` gets the instance's settings with those references resolved.
``offering_update`` changes an instance's settings to a new plan or parameters;
``offering_removal`` gives the settings of the last revision, whose run removes from the
hosts what the instance created.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from infracms.modules.contract import (
        Module,
        ModuleSettings,
        Offering,
        Plan,
        ProvidedOffering,
        ServiceHost,
    )
    from infracms.modules.targets import DefinitionUse, Target

PROJECT = "infracms"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_modules() -> list[type[Module]]:  # type: ignore[empty-body]
    """Return the Module classes this package provides."""


@hookspec
def validate_settings(
    module: type[Module], settings: ModuleSettings, target: Target
) -> dict[str, str] | None:
    """Return problems with these settings on this target as {field: message}, or None."""


@hookspec
def extra_variables(
    module: type[Module], settings: Mapping[str, Any], host: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Return variables derived for one host (`name`, `variables`, `ssh_user`,
    `ssh_port`) to merge into the module's published settings (plain data), or None."""


@hookspec
def catalog_offerings(module: type[Module]) -> list[Offering] | None:
    """Return the offerings this module provides to peers, or None."""


@hookspec(firstresult=True)
def offering_settings(
    module: type[Module],
    offering: ProvidedOffering,
    plan: Plan,
    parameters: Mapping[str, Any],
) -> dict[str, Any] | None:
    """Return the module settings that provision this plan with these parameters."""


@hookspec(firstresult=True)
def offering_credentials(
    module: type[Module],
    offering: ProvidedOffering,
    plan: Plan,
    settings: Mapping[str, Any],
    hosts: list[ServiceHost],
) -> dict[str, Any] | None:
    """Return the connection details handed to the requester at bind."""


@hookspec(firstresult=True)
def offering_update(
    module: type[Module],
    offering: ProvidedOffering,
    plan: Plan,
    settings: Mapping[str, Any],
    parameters: Mapping[str, Any],
    previous: Mapping[str, Any],
) -> dict[str, Any] | None:
    """Return the instance's settings changed to this plan and these parameters."""


@hookspec(firstresult=True)
def offering_removal(
    module: type[Module],
    offering: ProvidedOffering,
    plan: Plan,
    settings: Mapping[str, Any],
    parameters: Mapping[str, Any],
) -> dict[str, Any] | None:
    """Return the settings that remove this instance from its hosts (its entries marked
    absent), or None when removing it needs no run."""


@hookspec
def refuse_disable(
    module: type[Module], organisation: str, definitions: list[DefinitionUse]
) -> str | None:
    """Return why the module may not be disabled in this organisation now, or None."""
