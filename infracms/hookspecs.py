"""The plugin hooks: what concerns every module, declared once, with what it must return.

Implement hooks with ``@infracms.hookspecs.hookimpl`` in a module or plugin object and
register it through the ``infracms.modules`` entry point group (built-in modules are
registered the same way, from ``infracms/plugins.py``). Hooks are called with keyword
arguments; an implementation may accept fewer arguments than the spec.

What one module does (check its settings, derive variables per host, refuse to be
disabled, provide its offerings) is not a hook: it is a classmethod of its Module class,
or a method of one of its offerings, called for that module only (see
``infracms/modules/contract.py`` and ``infracms/modules/offerings.py``). The per-module
hooks of earlier versions are listed in ``RETIRED_HOOKS``: a plugin that still
implements one stops start-up with a message saying what to write instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from infracms.modules.contract import Module

PROJECT = "infracms"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_modules() -> list[type[Module]]:  # type: ignore[empty-body]
    """Return the Module classes this package provides."""


_CLASSMETHOD = "a classmethod of your Module subclass"
_OFFERING = "a method of an Offering subclass that your Module lists in `offerings`"
RETIRED_HOOKS: dict[str, str] = {
    "validate_settings": f"`validate_settings(cls, settings, target)`, {_CLASSMETHOD}",
    "extra_variables": f"`extra_variables(cls, settings, host)`, {_CLASSMETHOD}",
    "refuse_disable": f"`refuse_disable(cls, organisation, definitions)`, {_CLASSMETHOD}",
    "catalog_offerings": "`offerings = (Offering(...), ...)` on your Module subclass",
    "offering_settings": f"`instance_settings(self, *, provided, plan, parameters)`, {_OFFERING}",
    "offering_credentials": (
        f"`connection_details(self, *, provided, plan, settings, hosts)`, {_OFFERING}"
    ),
    "offering_update": (
        f"`updated_settings(self, *, provided, plan, settings, parameters, previous)`, {_OFFERING}"
    ),
    "offering_removal": (
        f"`removal_settings(self, *, provided, plan, settings, parameters)`, {_OFFERING}"
    ),
}
"""{per-module hook that infracms no longer calls: what replaces it}."""
