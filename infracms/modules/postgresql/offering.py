"""`managed-postgresql`: each instance is a database and an owner role of the same name,
with a generated password; an update changes the networks it is reached from, and
deprovisioning drops both. The steps it shares with backup's offering are in
``infracms/modules/instances.py``."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from urllib.parse import quote

from infracms.modules.instances import NamedEntryOffering, entries, names
from infracms.modules.offerings import Plan, ProvidedOffering, ServiceHost
from infracms.modules.postgresql.settings import IDENTIFIER_RE
from infracms.modules.targets import Plain, PlainMapping


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
