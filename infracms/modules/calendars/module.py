"""`calendars`: shared calendars and address books (CalDAV and CardDAV) with Radicale.

One Radicale server per host, from Debian's package, with the organisation's people as
its users: each person has their own collections (calendars, address books) that only
they can read and write. Passwords come from credential references and are stored on
the host as bcrypt hashes. The server listens on the host itself unless it serves TLS:
exposing it to the network over plain HTTP would send every password in the clear.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from infracms.hookspecs import hookimpl
from infracms.modules.contract import Dependency, Module, ModuleSettings, SecretRef
from infracms.modules.fields import AbsolutePath, Port, UnixName, refuse_duplicates


class CalendarUser(BaseModel):
    """A person who signs in to the calendar server."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: UnixName = Field(
        description="sign-in name (also the first part of their collections' URL)"
    )
    password: SecretRef = Field(description="their password: a credential reference")


class CalendarsSettings(ModuleSettings):
    """Settings of the `calendars` definition of a host."""

    users: list[CalendarUser] = Field(
        min_length=1, max_length=1000, description="who may sign in; each has their own collections"
    )
    port: Port = Field(default=5232, description="the port Radicale listens on")
    tls_certificate_path: AbsolutePath | None = Field(
        default=None,
        description="certificate chain (PEM) on the host; needed to listen on the network",
    )
    tls_key: SecretRef | None = Field(
        default=None, description="the certificate's private key (PEM): a credential reference"
    )
    # After the TLS fields: its check reads them.
    listen: Literal["localhost", "network"] = Field(
        default="localhost",
        description="localhost: only the host itself (behind a proxy); network: every address",
    )
    max_content_length: int = Field(
        default=100_000_000, ge=1_000, le=1_000_000_000, description="largest request body, bytes"
    )

    @field_validator("users")
    @classmethod
    def _unique_users(cls, value: list[CalendarUser]) -> list[CalendarUser]:
        refuse_duplicates((user.name for user in value), "user names")
        return value

    @field_validator("tls_key")
    @classmethod
    def _tls_pair(cls, value: dict[str, str] | None, info: ValidationInfo) -> dict[str, str] | None:
        if (value is None) != (info.data.get("tls_certificate_path") is None):
            raise ValueError("give both tls_certificate_path and tls_key, or neither")
        return value

    @field_validator("listen")
    @classmethod
    def _tls_on_the_network(cls, value: str, info: ValidationInfo) -> str:
        if value == "network" and info.data.get("tls_certificate_path") is None:
            raise ValueError(
                "on the network the server needs TLS (tls_certificate_path and tls_key): "
                "without it every password would cross the network in the clear"
            )
        return value


class Calendars(Module):
    """Radicale: CalDAV and CardDAV for an office."""

    name = "calendars"
    version = "1.0.0"
    title = "Calendars and contacts (Radicale)"
    description = (
        "Shared calendars and address books over CalDAV and CardDAV: one Radicale server, "
        "a private set of collections for each person, optional TLS."
    )
    settings = CalendarsSettings
    role = Path(__file__).parent / "role"
    requires = (Dependency("base", ">=1.0,<2"),)
    data_paths = ("/var/lib/radicale/collections", "/etc/radicale")


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [Calendars]
