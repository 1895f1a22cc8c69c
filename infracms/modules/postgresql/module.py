"""`postgresql`: a PostgreSQL server with its databases, roles and client rules.

Installs Debian's PostgreSQL, sets where it listens, creates the roles (passwords are
secret references, hashed as SCRAM-SHA-256 on the controller so that the server and
its logs never see them) and the databases, and writes pg_hba.conf. Removing a database
or a role from the settings leaves it in place; listed in ``absent_databases`` or
``absent_roles`` it is dropped (a database with everything in it, its sessions ended).
The settings are in ``settings.py``; the `managed-postgresql` offering (a database and
its owner role for a peer) in ``offering.py``.
"""

from __future__ import annotations

from pathlib import Path

from infracms.hookspecs import hookimpl
from infracms.modules.contract import Module
from infracms.modules.postgresql.offering import OFFERINGS
from infracms.modules.postgresql.settings import PostgresqlSettings

__all__ = ["Postgresql", "PostgresqlSettings", "register_modules"]


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
