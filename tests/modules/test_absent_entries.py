"""What the modules remove when told: postgresql's absent databases and roles (dropped on
a real server), backup's absent served repositories; and the offering hooks that make
such settings for an instance that is deprovisioned, or change one that is updated
(their offerings' removal_settings and updated_settings)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from infracms.modules.backup.module import BackupSettings
from infracms.modules.contract import Offering, Plan, ProvidedOffering
from infracms.modules.postgresql.module import Postgresql, PostgresqlSettings
from infracms.plugins import Plugins
from tests.modules.conftest import errors_of
from tests.modules.samples import role_variables
from tests.modules.test_postgresql import _apply_objects
from tests.support.postgres import PostgresServer, start_private_cluster

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE9b6Y0f7l6mB2lA5j1ZJ3v6d1v1t0dJ0mCq2xj3xQ8A"
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq9bUrwv2yv9ViuB2+rs9RtxkX2Y7JbE8RbH8gbRi6J"
PLAN = Plan(name="small", title="Small")


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return Plugins.load(entry_points=False)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"absent_databases": ["postgres"]}, "PostgreSQL's own"),
        ({"absent_databases": ["all"]}, "keywords"),
        ({"absent_roles": ["postgres"]}, "PostgreSQL's own"),
        ({"absent_roles": ["a", "a"]}, "repeat"),
        (
            {"roles": [{"name": "app"}], "absent_roles": ["app"]},
            "roles listed both to keep and as absent: app",
        ),
        (
            {"databases": [{"name": "app"}], "absent_databases": ["app"]},
            "databases listed both to keep and as absent: app",
        ),
        (
            {"hba": [{"database": "app", "address": "10.0.0.0/8"}], "absent_databases": ["app"]},
            "client rules name what is absent: app",
        ),
    ],
)
def test_postgresql_refuses_absent_entries_that_are_still_used(
    data: dict[str, Any], words: str
) -> None:
    found = " ".join(errors_of(PostgresqlSettings, data).values())
    assert words in found, found


def test_backup_refuses_a_repository_both_served_and_absent() -> None:
    data = {"serve": [{"name": "web1", "ssh_public_key": KEY}], "absent_served": ["web1"]}
    assert "both as served and as absent: web1" in " ".join(
        errors_of(BackupSettings, data).values()
    )
    only_removing = BackupSettings.model_validate({"absent_served": ["web1"]})
    assert only_removing.serve == [] and only_removing.absent_served == ["web1"]


def declared(plugins: Plugins, module: str, offering: str) -> Offering:
    """The module's offering, as infracms finds it for a publication."""
    found = plugins.registry.modules[module].offering(offering)
    assert found is not None, f"{module} declares no offering {offering}"
    return found


def _offering(name: str, base: dict[str, Any] | None = None) -> ProvidedOffering:
    return ProvidedOffering(id="coop-x", name=name, organisation="coop", settings=base or {})


def test_postgresql_removal_drops_the_instances_database_role_and_rules(plugins: Plugins) -> None:
    settings = {
        "listen_addresses": ["*"],
        "roles": [
            {"name": "monitor", "login": True},
            {"name": "shop", "password": {"$credential": "svc-1"}, "login": True},
        ],
        "databases": [{"name": "shop", "owner": "shop"}],
        "hba": [
            {"type": "hostssl", "database": "shop", "user": "shop", "address": "10.1.0.0/24"},
            {"type": "hostssl", "database": "all", "user": "monitor", "address": "10.9.0.0/16"},
        ],
    }
    removal = declared(plugins, "postgresql", "managed-postgresql").removal_settings(
        provided=_offering("managed-postgresql"),
        plan=PLAN,
        settings=settings,
        parameters={"database": "shop"},
    )
    assert removal["roles"] == [{"name": "monitor", "login": True}]
    assert removal["databases"] == [] and [r["user"] for r in removal["hba"]] == ["monitor"]
    assert (removal["absent_databases"], removal["absent_roles"]) == (["shop"], ["shop"])
    assert "svc-1" not in repr(removal)  # the dropped role needs no password
    PostgresqlSettings.model_validate(removal)


def test_postgresql_update_changes_the_networks_and_keeps_the_password(plugins: Plugins) -> None:
    settings = {
        "listen_addresses": ["*"],
        "roles": [{"name": "shop", "password": {"$credential": "svc-1"}, "login": True}],
        "databases": [{"name": "shop", "owner": "shop"}],
        "hba": [
            {"type": "hostssl", "database": "shop", "user": "shop", "address": "10.1.0.0/24"},
            {"type": "hostssl", "database": "all", "user": "all", "address": "10.9.0.0/16"},
        ],
    }

    def update(parameters: dict[str, Any], base: dict[str, Any] | None = None) -> Any:
        return declared(plugins, "postgresql", "managed-postgresql").updated_settings(
            provided=_offering("managed-postgresql", base),
            plan=PLAN,
            settings=settings,
            parameters=parameters,
            previous={"database": "shop", "allowed_networks": ["10.1.0.0/24"]},
        )

    moved = update({"database": "shop", "allowed_networks": ["10.2.0.0/24", "10.3.0.0/24"]})
    assert [r["address"] for r in moved["hba"]] == ["10.2.0.0/24", "10.3.0.0/24", "10.9.0.0/16"]
    assert moved["roles"] == settings["roles"] and moved["listen_addresses"] == ["*"]
    closed = update({"database": "shop", "allowed_networks": []})
    assert [r["address"] for r in closed["hba"]] == ["10.9.0.0/16"]
    assert closed["listen_addresses"] == ["localhost"]
    assert update({"database": "shop"}, {"listen_addresses": ["10.0.0.5"]})["listen_addresses"] == [
        "*"
    ]  # the base's own value was in the settings already
    with pytest.raises(ValueError, match="cannot be renamed"):
        update({"database": "shop2"})


def test_backup_update_and_removal_of_a_served_repository(plugins: Plugins) -> None:
    settings = {
        "serve": [{"name": "keep", "ssh_public_key": KEY}, {"name": "web1", "ssh_public_key": KEY}]
    }
    offering = _offering("offsite-backup")
    updated = declared(plugins, "backup", "offsite-backup").updated_settings(
        provided=offering,
        plan=PLAN,
        settings=settings,
        parameters={"name": "web1", "ssh_public_key": OTHER_KEY},
        previous={"name": "web1", "ssh_public_key": KEY},
    )
    assert [r["ssh_public_key"] for r in updated["serve"]] == [KEY, OTHER_KEY]
    removal = declared(plugins, "backup", "offsite-backup").removal_settings(
        provided=offering, plan=PLAN, settings=updated, parameters={"name": "web1"}
    )
    assert removal["serve"] == [{"name": "keep", "ssh_public_key": KEY}]
    assert removal["absent_served"] == ["web1"]
    BackupSettings.model_validate(removal)
    with pytest.raises(ValueError, match="cannot be renamed"):
        declared(plugins, "backup", "offsite-backup").updated_settings(
            provided=offering,
            plan=PLAN,
            settings=settings,
            parameters={"name": "web2", "ssh_public_key": KEY},
            previous={"name": "web1", "ssh_public_key": KEY},
        )


@pytest.fixture
def cluster() -> Iterator[PostgresServer]:
    server = start_private_cluster()
    yield server
    server.stop()


def _names(server: PostgresServer) -> tuple[set[str], set[str]]:
    with psycopg.connect(
        host=server.host, port=server.port, user="postgres", dbname="postgres"
    ) as db:
        databases = {row[0] for row in db.execute("SELECT datname FROM pg_database")}
        roles = {row[0] for row in db.execute("SELECT rolname FROM pg_roles")}
    return databases, roles


@pytest.mark.slow
@pytest.mark.postgres
def test_absent_databases_and_roles_are_dropped_on_a_real_server(
    cluster: PostgresServer, tmp_path: Path
) -> None:
    made = {
        "roles": [{"name": "shop", "password": {"$credential": "app-db"}}, {"name": "keep"}],
        "databases": [{"name": "shop", "owner": "shop"}],
    }
    _apply_objects(cluster, role_variables(Postgresql, made), tmp_path)
    databases, roles = _names(cluster)
    assert "shop" in databases and {"shop", "keep"} <= roles
    # a client still connected: the drop ends its session
    with psycopg.connect(
        host=cluster.host, port=cluster.port, user="postgres", dbname="shop"
    ) as connected:
        removal = {
            "roles": [{"name": "keep"}],
            "absent_databases": ["shop"],
            "absent_roles": ["shop"],
        }
        variables = role_variables(Postgresql, removal)
        plan = _apply_objects(cluster, variables, tmp_path, "--check")
        assert plan["changed"] == 2 and "shop" in _names(cluster)[0]
        first = _apply_objects(cluster, variables, tmp_path)
        assert first["changed"] == 2, first
        with pytest.raises(psycopg.OperationalError):
            connected.execute("SELECT 1")
    databases, roles = _names(cluster)
    assert "shop" not in databases and "shop" not in roles and "keep" in roles
    assert _apply_objects(cluster, variables, tmp_path)["changed"] == 0
