"""Small modules for the services tests: a stand-in `base`, and modules whose
dependencies are missing, too new, or circular."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from infracms.hookspecs import hookimpl
from infracms.modules.contract import Dependency, Module, ModuleSettings

ROLE = Path(__file__).parents[1] / "dummy_module" / "infracms_dummy" / "role"


class Empty(ModuleSettings):
    """No settings."""


class Sized(ModuleSettings):
    """One number."""

    size: int = Field(default=1, ge=1, le=100)


def module(
    name: str,
    *,
    version: str = "1.0.0",
    requires: tuple[Dependency, ...] = (),
    settings: type[ModuleSettings] = Empty,
    multiple: bool = False,
) -> type[Module]:
    return type(
        name.title(),
        (Module,),
        {
            "name": name,
            "version": version,
            "title": name.title(),
            "description": f"the {name} test module",
            "settings": settings,
            "role": ROLE,
            "requires": requires,
            "multiple": multiple,
        },
    )


BASE = module("base", settings=Sized)
SITE = module("site", settings=Sized, multiple=True, requires=(Dependency("base", ">=1.0,<2"),))
NEEDS_GHOST = module("haunted", requires=(Dependency("ghost"),))
NEEDS_NEW_BASE = module("picky", requires=(Dependency("base", ">=2"),))
CYCLE_A = module("cycle_a", requires=(Dependency("cycle_b"),))
CYCLE_B = module("cycle_b", requires=(Dependency("cycle_a"),))
TOP = module("top", requires=(Dependency("site"),))


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [BASE, SITE, NEEDS_GHOST, NEEDS_NEW_BASE, CYCLE_A, CYCLE_B, TOP]
