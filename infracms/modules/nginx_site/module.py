"""`nginx_site`: one nginx virtual host per definition.

Serves files from a directory or passes requests to an upstream, over HTTP or HTTPS
with an optional HSTS header. Several definitions may apply to one host (one site
each). Each site file is checked with ``nginx -t`` before it replaces the old one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from infracms.hookspecs import hookimpl
from infracms.modules.contract import (
    Dependency,
    Module,
    ModuleSettings,
    SecretRef,
    settings_as,
)
from infracms.modules.fields import AbsolutePath, DnsName, Port, refuse_duplicates
from infracms.modules.targets import Target

SITE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# No whitespace, quotes, ';', braces or '$': nginx would read them as syntax or variables.
UPSTREAM_RE = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/%+-]*)?$")
SIZE_RE = re.compile(r"^[0-9]{1,6}[kKmMgG]?$")


def _site_name(value: str) -> str:
    if not SITE_NAME_RE.fullmatch(value):
        raise ValueError("expected 1-63 of a-z, 0-9, '_' and '-', starting with a letter or digit")
    return value


def _upstream(value: str) -> str:
    parts = urlsplit(value)
    if not UPSTREAM_RE.fullmatch(value) or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(
            "expected an http:// or https:// URL such as http://127.0.0.1:8080 "
            "(host, optional port and path; no query, spaces, quotes, ';', braces or '$')"
        )
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise ValueError(f"{value!r} has an invalid port") from exc
    return value


def _size(value: str) -> str:
    if not SIZE_RE.fullmatch(value):
        raise ValueError("expected a size such as 1m, 512k or 2g")
    return value.lower()


class NginxSiteSettings(ModuleSettings):
    """Settings of one `nginx_site` definition."""

    name: Annotated[str, AfterValidator(_site_name)] = Field(
        description="a short name for the site, unique on the host (names its files)"
    )
    server_names: list[DnsName] = Field(
        min_length=1, max_length=50, description="host names the site answers to"
    )
    root: AbsolutePath | None = Field(
        default=None, description="serve files from this directory (or give an upstream)"
    )
    proxy_pass: Annotated[str, AfterValidator(_upstream)] | None = Field(
        default=None, description="pass requests to this upstream URL (or give a root)"
    )
    http_port: Port = Field(default=80, description="port for plain HTTP")
    tls: bool = Field(default=False, description="serve HTTPS")
    https_port: Port = Field(default=443, description="port for HTTPS")
    tls_certificate_path: AbsolutePath | None = Field(
        default=None,
        description="certificate chain (PEM) on the host, e.g. Let's Encrypt fullchain",
    )
    tls_key_path: AbsolutePath | None = Field(
        default=None, description="private key (PEM) already on the host; or give tls_key"
    )
    tls_key: SecretRef | None = Field(
        default=None, description="private key (PEM) to install on the host; or give tls_key_path"
    )
    redirect_http: bool = Field(default=True, description="with TLS, redirect HTTP to HTTPS")
    hsts: bool = Field(default=False, description="send Strict-Transport-Security (needs TLS)")
    hsts_max_age: int = Field(
        default=31536000, ge=300, le=63072000, description="HSTS max-age in seconds"
    )
    client_max_body_size: Annotated[str, AfterValidator(_size)] = Field(
        default="10m", description="largest request body accepted, e.g. 10m"
    )

    @field_validator("server_names")
    @classmethod
    def _unique_names(cls, value: list[str]) -> list[str]:
        refuse_duplicates(value, "server names")
        return value

    @field_validator("proxy_pass")
    @classmethod
    def _root_or_upstream(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "root" in info.data and (info.data["root"] is None) == (value is None):
            raise ValueError("give exactly one of root (serve files) and proxy_pass (an upstream)")
        return value

    @field_validator("https_port")
    @classmethod
    def _ports_differ(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("tls") and value == info.data.get("http_port"):
            raise ValueError("must differ from http_port")
        return value

    @field_validator("tls_certificate_path")
    @classmethod
    def _certificate(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("tls") and value is None:
            raise ValueError("tls needs the certificate chain's path")
        return value

    @field_validator("tls_key")
    @classmethod
    def _key(cls, value: dict[str, str] | None, info: ValidationInfo) -> dict[str, str] | None:
        if info.data.get("tls") and (info.data.get("tls_key_path") is None) == (value is None):
            raise ValueError("tls needs exactly one of tls_key_path and tls_key")
        return value

    @field_validator("hsts")
    @classmethod
    def _hsts(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not info.data.get("tls"):
            raise ValueError("hsts needs tls")
        return value


class NginxSite(Module):
    """A virtual host on nginx."""

    name = "nginx_site"
    version = "1.0.0"
    title = "Web site (nginx)"
    description = (
        "An nginx virtual host: server names, a document root or an upstream, "
        "optional TLS and HSTS."
    )
    settings = NginxSiteSettings
    role = Path(__file__).parent / "role"
    requires = (Dependency("base", ">=1.0,<2"),)
    multiple = True

    @classmethod
    def validate_settings(cls, settings: ModuleSettings, target: Target) -> dict[str, str]:
        """Refuse a site whose HTTPS port is a well-known plain-HTTP one and vice versa."""
        site = settings_as(NginxSiteSettings, settings)
        problems: dict[str, str] = {}
        if site.tls and site.https_port == 80:
            problems["https_port"] = "port 80 is for plain HTTP: browsers would not speak TLS to it"
        if site.http_port == 443:
            problems["http_port"] = "port 443 is for HTTPS: browsers would speak TLS to it"
        return problems


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [NginxSite]
