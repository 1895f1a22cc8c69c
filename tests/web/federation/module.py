"""A module for the federation page tests: `webspace`, which offers hosted web space
with two plans whose parameters cover the kinds of field the request form generates."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from infracms.hookspecs import hookimpl
from infracms.modules.contract import Module, ModuleSettings, Offering, Plan
from tests.services.fake_modules import ROLE


class WebspaceSettings(ModuleSettings):
    """Settings of hosted web space."""

    site: str = Field(default="www", max_length=40, description="the site's name")
    disk_gb: int = Field(default=5, ge=1, le=100, description="disk space")
    php: Literal["none", "8.2", "8.3"] = Field(default="none", description="PHP version")
    backups: bool = Field(default=True, description="back the site up nightly")
    aliases: list[str] = Field(default_factory=list, max_length=10, description="other names")


def parameters(most_gb: int) -> dict[str, Any]:
    """A plan's parameters: a required name with a pattern, bounds, a choice, a fixed size."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["site"],
        "properties": {
            "site": {
                "type": "string",
                "pattern": "^[a-z][a-z0-9-]{0,39}$",
                "description": "the site's name: small letters, digits and dashes",
            },
            "disk_gb": {
                "type": "integer",
                "minimum": 1,
                "maximum": most_gb,
                "default": 1,
                "description": "disk space in GB",
            },
            "php": {"enum": ["none", "8.2", "8.3"], "default": "none", "description": "PHP"},
            "backups": {"type": "boolean", "default": True, "description": "nightly backups"},
            "aliases": {
                "type": "array",
                "items": {"type": "string"},
                "maxItems": 10,
                "description": "other names of the site",
            },
        },
    }


OFFERING = Offering(
    name="webspace",
    title="Hosted web space",
    description="Web space for a site on the provider's servers, with PHP if you like.",
    kind="web",
    plans=(
        Plan(name="small", title="Small: up to 5 GB", parameters=parameters(5)),
        Plan(name="large", title="Large: up to 50 GB", parameters=parameters(50)),
    ),
)


class Webspace(Module):
    """Hosted web space."""

    name = "webspace"
    version = "1.0.0"
    title = "Web space"
    description = "Hosted web space for a site."
    settings = WebspaceSettings
    role = ROLE
    offerings = (OFFERING,)


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [Webspace]
