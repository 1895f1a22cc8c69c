"""`postgresql`: a PostgreSQL server with its databases, roles and client rules.

Installs Debian's PostgreSQL, sets where it listens, creates the roles (passwords are
secret references, hashed as SCRAM-SHA-256 on the controller so that the server and
its logs never see them) and the databases, and writes pg_hba.conf. Removing a database
or a role from the settings leaves it in place; listed in ``absent_databases`` or
``absent_roles`` it is dropped (a database with everything in it, its sessions ended).

The `managed-postgresql` offering gives each instance a database and an owner role of
the same name: an update changes the networks it is reached from, and deprovisioning
drops both (``offering_removal``).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infracms.hookspecs import hookimpl
from infracms.modules.contract import (
    Module,
    ModuleSettings,
    Offering,
    Plan,
    ProvidedOffering,
    SecretRef,
    ServiceHost,
)
from infracms.modules.fields import Network, Port, refuse_duplicates

IDENTIFIER_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
RESERVED_ROLES = frozenset({"postgres", "public"})
HBA_DATABASE_KEYWORDS = ("all", "sameuser", "samerole", "replication")


def _identifier(value: str) -> str:
    if not IDENTIFIER_RE.fullmatch(value) or value.startswith("pg_"):
        raise ValueError(
            f"{value!r}: expected 1-63 of a-z, 0-9 and '_', starting with a letter or '_', "
            "not pg_..."
        )
    return value


def _listen_address(value: str) -> str:
    if value in ("*", "localhost"):
        return value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise ValueError(f"{value!r}: expected *, localhost or an IP address") from exc


Identifier = Annotated[str, AfterValidator(_identifier)]


class DatabaseRole(BaseModel):
    """A role (a user, when it may log in)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_default=True)

    name: Identifier = Field(description="role name")
    password: SecretRef | None = Field(
        default=None, description="the role's password (none: no password, peer login only)"
    )
    login: bool = Field(default=True, description="may log in")
    createdb: bool = Field(default=False, description="may create databases")

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_ROLES:
            raise ValueError(f"{value!r} is PostgreSQL's own")
        return value


class Database(BaseModel):
    """A database (UTF-8, the cluster's locale) and its owner."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_default=True)

    name: Identifier = Field(description="database name")
    owner: Identifier = Field(
        default="postgres", description="the role that owns it (postgres or one of the roles)"
    )

    @field_validator("name")
    @classmethod
    def _not_keyword(cls, value: str) -> str:
        if value in HBA_DATABASE_KEYWORDS or value in ("postgres", "template0", "template1"):
            raise ValueError(f"{value!r} is a keyword or PostgreSQL's own database")
        return value


class HbaRule(BaseModel):
    """One pg_hba.conf line: who may connect to what, from where, proving it how."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_default=True)

    type: Literal["local", "host", "hostssl", "hostnossl"] = Field(
        default="hostssl", description="local socket, or TCP (with or without TLS)"
    )
    database: Identifier = Field(
        default="all", description="a database name, or all, sameuser, samerole, replication"
    )
    user: Identifier = Field(default="all", description="a role name, or all")
    address: Network | None = Field(
        default=None, description="client network for TCP rules, e.g. 10.0.0.0/24"
    )
    method: Literal["scram-sha-256", "peer", "cert", "reject"] = Field(
        default="scram-sha-256", description="how the client proves who it is"
    )

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if kind == "local" and value is not None:
            raise ValueError("local (socket) rules take no address")
        if kind not in (None, "local") and value is None:
            raise ValueError(f"{kind} rules need the client network")
        return value

    @field_validator("method")
    @classmethod
    def _method(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("type")
        if value == "peer" and kind != "local":
            raise ValueError("peer works on local (socket) rules only")
        if value == "cert" and kind != "hostssl":
            raise ValueError("cert works on hostssl rules only")
        return value


class PostgresqlSettings(ModuleSettings):
    """Settings of the `postgresql` module."""

    listen_addresses: list[Annotated[str, AfterValidator(_listen_address)]] = Field(
        default_factory=lambda: ["localhost"],
        min_length=1,
        max_length=20,
        description="where the server listens: localhost, * (everywhere) or IP addresses",
    )
    port: Port = Field(default=5432, description="TCP port")
    max_connections: int = Field(default=100, ge=10, le=10000, description="connection limit")
    roles: list[DatabaseRole] = Field(default_factory=list, max_length=500, description="roles")
    databases: list[Database] = Field(default_factory=list, max_length=500, description="databases")
    hba: list[HbaRule] = Field(
        default_factory=list,
        max_length=500,
        description="client rules, after the built-in local ones (postgres by peer)",
    )
    absent_databases: list[Identifier] = Field(
        default_factory=list,
        max_length=500,
        description="databases to drop, with everything in them (their sessions are ended)",
    )
    absent_roles: list[Identifier] = Field(
        default_factory=list,
        max_length=500,
        description="roles to drop (after the absent databases)",
    )

    @field_validator("listen_addresses")
    @classmethod
    def _unique_addresses(cls, value: list[str]) -> list[str]:
        refuse_duplicates(value, "listen addresses")
        return value

    @field_validator("roles")
    @classmethod
    def _unique_roles(cls, value: list[DatabaseRole]) -> list[DatabaseRole]:
        refuse_duplicates((role.name for role in value), "role names")
        return value

    @field_validator("databases")
    @classmethod
    def _databases(cls, value: list[Database], info: ValidationInfo) -> list[Database]:
        refuse_duplicates((database.name for database in value), "database names")
        roles = {role.name for role in info.data.get("roles", [])} | {"postgres"}
        strangers = sorted({db.owner for db in value} - roles)
        if strangers:
            raise ValueError(f"owners that are not among the roles: {', '.join(strangers)}")
        return value

    @field_validator("absent_databases")
    @classmethod
    def _absent_databases(cls, value: list[str]) -> list[str]:
        refuse_duplicates(value, "absent database names")
        own = sorted(set(value) & {"postgres", "template0", "template1", *HBA_DATABASE_KEYWORDS})
        if own:
            raise ValueError(f"keywords or PostgreSQL's own databases: {', '.join(own)}")
        return value

    @field_validator("absent_roles")
    @classmethod
    def _absent_roles(cls, value: list[str]) -> list[str]:
        refuse_duplicates(value, "absent role names")
        own = sorted(set(value) & RESERVED_ROLES)
        if own:
            raise ValueError(f"PostgreSQL's own roles cannot be dropped: {', '.join(own)}")
        return value

    @model_validator(mode="after")
    def _absent_are_not_used(self) -> PostgresqlSettings:
        for kind, kept, dropped in (
            ("databases", {d.name for d in self.databases}, set(self.absent_databases)),
            ("roles", {r.name for r in self.roles}, set(self.absent_roles)),
        ):
            both = sorted(kept & dropped)
            if both:
                raise ValueError(f"{kind} listed both to keep and as absent: {', '.join(both)}")
        used = sorted(
            {r.database for r in self.hba} & set(self.absent_databases)
            | {r.user for r in self.hba} & set(self.absent_roles)
        )
        if used:
            raise ValueError(f"client rules name what is absent: {', '.join(used)}")
        return self


class Postgresql(Module):
    """A PostgreSQL server."""

    name = "postgresql"
    version = "1.0.0"
    title = "PostgreSQL"
    description = (
        "A PostgreSQL server: listen addresses, roles with secret passwords, databases "
        "and client rules (pg_hba.conf)."
    )
    settings = PostgresqlSettings
    role = Path(__file__).parent / "role"


def _plan_parameters() -> dict[str, object]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["database"],
        "properties": {
            "database": {
                "type": "string",
                "pattern": IDENTIFIER_RE.pattern,
                "description": "name of the database (its owner role gets the same name)",
            },
            "allowed_networks": {
                "type": "array",
                "items": {
                    "type": "string",
                    "maxLength": 43,
                    "description": "a client network, e.g. 10.0.0.0/24",
                },
                "maxItems": 10,
                "default": [],
                "description": "networks that may connect over TLS (empty: the provider's default)",
            },
        },
    }


MANAGED = "managed-postgresql"
OFFERINGS = (
    Offering(
        name=MANAGED,
        title="Managed PostgreSQL database",
        description=(
            "A PostgreSQL 15 database with its own owner role on the provider's servers, "
            "reached over TLS with a password; the provider runs, updates and backs it up."
        ),
        plan_updateable=True,
        plans=(
            Plan(
                name="small",
                title="Small: 5 GB, up to 20 connections",
                parameters=_plan_parameters(),
            ),
            Plan(
                name="large",
                title="Large: 50 GB, up to 100 connections",
                parameters=_plan_parameters(),
            ),
        ),
    ),
)


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [Postgresql]


@hookimpl
def catalog_offerings(module: type[Module]) -> list[Offering] | None:
    """Offer managed databases to peers."""
    if module.name != Postgresql.name:
        return None
    return list(OFFERINGS)


@hookimpl
def offering_settings(
    module: type[Module], offering: ProvidedOffering, parameters: Mapping[str, Any]
) -> dict[str, Any] | None:
    """A database and its owner role (a new password) over the provider's base settings."""
    if module.name != Postgresql.name or offering.name != MANAGED:
        return None
    settings = dict(offering.settings)
    name = str(parameters["database"])
    roles, databases = list(settings.get("roles", [])), list(settings.get("databases", []))
    if name in {r.get("name") for r in roles} | {d.get("name") for d in databases}:
        raise ValueError(f"database {name!r} is taken on this server")
    roles.append({"name": name, "password": secrets.token_urlsafe(24), "login": True})
    databases.append({"name": name, "owner": name})
    return _reached(settings, offering, name, parameters) | {
        "roles": roles,
        "databases": databases,
    }


@hookimpl
def offering_update(
    module: type[Module],
    offering: ProvidedOffering,
    settings: Mapping[str, Any],
    parameters: Mapping[str, Any],
    previous: Mapping[str, Any],
) -> dict[str, Any] | None:
    """The instance reached from the networks now asked for; its database keeps its name
    (and its role its password)."""
    if module.name != Postgresql.name or offering.name != MANAGED:
        return None
    name = str(previous["database"])
    if parameters["database"] != name:
        raise ValueError(
            f"database {name!r} cannot be renamed: request another instance and move the data"
        )
    return _reached(dict(settings), offering, name, parameters)


@hookimpl
def offering_removal(
    module: type[Module],
    offering: ProvidedOffering,
    settings: Mapping[str, Any],
    parameters: Mapping[str, Any],
) -> dict[str, Any] | None:
    """The instance's database and role dropped, and its client rules gone."""
    if module.name != Postgresql.name or offering.name != MANAGED:
        return None
    name = str(parameters["database"])
    return dict(settings) | {
        "roles": [r for r in settings.get("roles", []) if r.get("name") != name],
        "databases": [d for d in settings.get("databases", []) if d.get("name") != name],
        "hba": [r for r in settings.get("hba", []) if not _instance_rule(r, name)],
        "absent_databases": sorted({*settings.get("absent_databases", []), name}),
        "absent_roles": sorted({*settings.get("absent_roles", []), name}),
    }


def _reached(
    settings: dict[str, Any],
    offering: ProvidedOffering,
    name: str,
    parameters: Mapping[str, Any],
) -> dict[str, Any]:
    """`settings` with the instance's client rules for its allowed networks (first), and
    listening everywhere when it has some (unless the provider's base settings say where)."""
    networks = list(parameters.get("allowed_networks") or [])
    rules = [
        {"type": "hostssl", "database": name, "user": name, "address": network}
        for network in networks
    ]
    others = [rule for rule in settings.get("hba", []) if not _instance_rule(rule, name)]
    if "listen_addresses" not in offering.settings:
        settings["listen_addresses"] = ["*"] if networks else ["localhost"]
    return settings | {"hba": rules + others}


def _instance_rule(rule: Mapping[str, Any], name: str) -> bool:
    return rule.get("type") == "hostssl" and rule.get("database") == name == rule.get("user")


@hookimpl
def offering_credentials(
    module: type[Module],
    offering: ProvidedOffering,
    settings: Mapping[str, Any],
    hosts: list[ServiceHost],
) -> dict[str, Any] | None:
    """Where the database is and how to log in: host, port, database, user, password."""
    if module.name != Postgresql.name or offering.name != MANAGED:
        return None
    if not settings.get("databases") or not hosts:
        raise ValueError("the instance has no database or no host")
    database = settings["databases"][-1]  # offering_settings adds the instance's last
    role = next(r for r in settings["roles"] if r["name"] == database["owner"])
    host, port, password = hosts[0].address, int(settings.get("port", 5432)), role["password"]
    if not isinstance(password, str):
        raise ValueError(f"the password of role {role['name']} is not available")
    return {
        "host": host,
        "hosts": [h.address for h in hosts],
        "port": port,
        "database": database["name"],
        "user": role["name"],
        "password": password,
        "sslmode": "require",
        "uri": (
            f"postgresql://{role['name']}:{quote(password, safe='')}@{_uri_host(host)}:{port}"
            f"/{database['name']}?sslmode=require"
        ),
    }


def _uri_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address
