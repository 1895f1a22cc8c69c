"""The settings of `postgresql`: where the server listens, its roles (passwords as secret
references), databases and client rules, and what to drop (``absent_databases``,
``absent_roles``)."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infracms.modules.contract import ModuleSettings, SecretRef
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
