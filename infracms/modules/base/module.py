"""`base`: the ground every managed Debian host stands on.

Host name, time zone, a list of packages, and unattended security upgrades.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator

from infracms.hookspecs import hookimpl
from infracms.modules.contract import Module, ModuleSettings

PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]{1,99}$")
TIMEZONE_RE = re.compile(r"^(UTC|[A-Z][A-Za-z_+-]+(/[A-Za-z0-9_+-]+){1,2})$")


class BaseSettings(ModuleSettings):
    """Settings of the `base` module."""

    hostname: Annotated[str | None, Field(description="set the host name (blank: leave it)")] = None
    timezone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Berlin")
    packages: list[str] = Field(
        default_factory=list, max_length=200, description="packages to install"
    )
    unattended_upgrades: bool = Field(default=True, description="install security updates daily")

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", value):
            raise ValueError("must be a single DNS label: a-z, 0-9 and '-'")
        return value or None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if not TIMEZONE_RE.fullmatch(value):
            raise ValueError("must be an IANA time zone such as UTC or Europe/Berlin")
        return value

    @field_validator("packages")
    @classmethod
    def _packages(cls, value: list[str]) -> list[str]:
        bad = [name for name in value if not PACKAGE_RE.fullmatch(name)]
        if bad:
            raise ValueError(f"not Debian package names: {', '.join(bad)}")
        return sorted(set(value))


class Base(Module):
    """Host name, time zone, packages, unattended upgrades."""

    name = "base"
    version = "1.0.0"
    title = "Base system"
    description = "Host name, time zone, packages and unattended security upgrades."
    settings = BaseSettings
    role = Path(__file__).parent / "role"


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [Base]
