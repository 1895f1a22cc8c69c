"""`postgresql`: a PostgreSQL server with its databases, roles and client rules.

Installs Debian's PostgreSQL, sets where it listens, creates the roles (passwords are
secret references, hashed as SCRAM-SHA-256 on the controller so that the server and
its logs never see them) and the databases, and writes pg_hba.conf. Removing a database
or a role from the settings leaves it in place; listed in ``absent_databases`` or
``absent_roles`` it is dropped (a database with everything in it, its sessions ended).

The `managed-postgresql` offering gives each instance a database and an owner role of
the same name: an update changes the networks it is reached from, and deprovisioning
drops both (``ManagedPostgresql``, its steps shared with backup's offering in
``infracms/modules/instances.py``).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal
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
from infracms.modules.contract import Module, ModuleSettings, SecretRef
from infracms.modules.fields import Network, Port, refuse_duplicates
from infracms.modules.instances import NamedEntryOffering, entries, names
from infracms.modules.offerings import Plan, ProvidedOffering, ServiceHost
from infracms.modules.targets import Plain, PlainMapping

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


class ManagedPostgresql(NamedEntryOffering):
    """An instance is a database and its owner role, both named by `database`."""

    key = "database"
    noun = "database"
    place = "on this server"
    rename_advice = "request another instance and move the data"
    lists = {"roles": "absent_roles", "databases": "absent_databases"}

    def provision(
        self, settings: dict[str, Plain], name: str, *, provided: ProvidedOffering,
        parameters: PlainMapping,
    ) -> dict[str, Plain]:  # fmt: skip
        """A database and its owner role (a new password) over the provider's base settings."""
        role: dict[str, Plain] = {
            "name": name,
            "password": secrets.token_urlsafe(24),
            "login": True,
        }
        return _reached(settings, provided, name, parameters) | {
            "roles": [*entries(settings, "roles"), role],
            "databases": [*entries(settings, "databases"), {"name": name, "owner": name}],
        }

    def update(
        self, settings: dict[str, Plain], name: str, *, provided: ProvidedOffering,
        parameters: PlainMapping,
    ) -> dict[str, Plain]:  # fmt: skip
        """The instance reached from the networks now asked for; its database keeps its
        name (and its role its password)."""
        return _reached(settings, provided, name, parameters)

    def remove(self, settings: dict[str, Plain], name: str) -> dict[str, Plain]:
        """The instance's client rules gone with its database and role."""
        return settings | {
            "hba": [rule for rule in entries(settings, "hba") if not _instance_rule(rule, name)]
        }

    def connection_details(
        self,
        *,
        provided: ProvidedOffering,
        plan: Plan,
        settings: PlainMapping,
        hosts: Sequence[ServiceHost],
    ) -> dict[str, Plain] | None:
        """Where the database is and how to log in: host, port, database, user, password."""
        database = self.last_entry(settings, "databases", hosts)
        owner = database.get("owner")
        role = next(r for r in entries(settings, "roles") if r.get("name") == owner)
        host, password = hosts[0].address, role.get("password")
        port = settings.get("port", 5432)
        if not isinstance(password, str):
            raise ValueError(f"the password of role {role.get('name')} is not available")
        if not isinstance(port, int):
            raise ValueError(f"port {port!r} is not a number")
        user, name = str(role.get("name")), str(database.get("name"))
        return {
            "host": host,
            "hosts": [h.address for h in hosts],
            "port": port,
            "database": name,
            "user": user,
            "password": password,
            "sslmode": "require",
            "uri": (
                f"postgresql://{user}:{quote(password, safe='')}@{_uri_host(host)}:{port}"
                f"/{name}?sslmode=require"
            ),
        }


MANAGED = "managed-postgresql"
OFFERINGS = (
    ManagedPostgresql(
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
    offerings = OFFERINGS


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [Postgresql]


def _reached(
    settings: dict[str, Plain],
    provided: ProvidedOffering,
    name: str,
    parameters: PlainMapping,
) -> dict[str, Plain]:
    """`settings` with the instance's client rules for its allowed networks (first), and
    listening everywhere when it has some (unless the provider's base settings say where)."""
    networks = names(parameters, "allowed_networks") if parameters.get("allowed_networks") else []
    rules = [
        {"type": "hostssl", "database": name, "user": name, "address": network}
        for network in networks
    ]
    others = [rule for rule in entries(settings, "hba") if not _instance_rule(rule, name)]
    if "listen_addresses" not in provided.settings:
        settings["listen_addresses"] = ["*"] if networks else ["localhost"]
    return settings | {"hba": [*rules, *others]}


def _instance_rule(rule: Mapping[str, Plain], name: str) -> bool:
    return rule.get("type") == "hostssl" and rule.get("database") == name == rule.get("user")


def _uri_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address
