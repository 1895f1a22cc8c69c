"""The postgresql module: settings, offerings, SCRAM verifiers, and its SQL on a real server."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from infracms.modules.postgresql.module import Postgresql, PostgresqlSettings
from infracms.plugins import Registry
from tests.modules.ansible import run_playbook
from tests.modules.conftest import errors_of, refused_field
from tests.modules.samples import SECRETS, role_variables
from tests.support.postgres import PostgresServer, start_private_cluster

ROLE = Path(Postgresql.role)
# Made by PostgreSQL 15 itself (CREATE ROLE ... PASSWORD with scram-sha-256).
VECTORS = {
    "correct horse battery staple": "SCRAM-SHA-256$4096:xuOwgLUHKIR9HBO1UcMxNw==$Tv6+Pn4Xszi9PhwlefcXod3DhsWzSlFybgBq5jmnq7c=:lEs0iJn0RDSkKCEyehMf5b/9m6xFvMHzn9gT9thZN9o=",
    "pässwörd ǅ ﬁ": "SCRAM-SHA-256$4096:suL5QnJYnkyBSKCbdxaU0A==$/nXpg0UGUTaUEgCl4PmQWHQqby/LTMKhuFsk2gFeOUY=:a8bYqiVn2hIQ5s8vjNuCMhOda5V2tgPoD3pH/nqirzI=",
    'it\'s a \\ "quoted" $secret$': "SCRAM-SHA-256$4096:KyRKNASlNFqGrDQLy7rBpg==$O18g+Jafm70lULfYHetlaOqDKZXW0SzAmluZvok4Iu4=:qeWlKbhGZt4vaJTreTeyG0ZhghRTrFm7G8GP0/EMBCM=",
    "\u2168 \u2163 \uff21\uff22\uff23":  # Roman numerals, full-width ABC
    "SCRAM-SHA-256$4096:GsF4UN6vuXoOzarIORPL5g==$iWJpGsD13MHWEpc7FxWR1kVlHH1yL8hZUF65yNjoHzs=:IMsUa/5wu9JCSvNsOlMnEm9CipzckkOwlRF7bdg4dCU=",
}


def _scram() -> Any:
    spec = importlib.util.spec_from_file_location(
        "postgresql_scram", ROLE / "filter_plugins/scram.py"
    )
    assert spec is not None and spec.loader is not None
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    return plugin


SCRAM = _scram()


def test_defaults() -> None:
    settings = PostgresqlSettings.model_validate({})
    assert (settings.listen_addresses, settings.port, settings.max_connections) == (
        ["localhost"],
        5432,
        100,
    )
    assert settings.roles == settings.databases == settings.hba == []


@pytest.mark.parametrize(
    ("data", "location"),
    [
        ({"listen_addresses": ["db.example.org"]}, "listen_addresses.0"),
        ({"listen_addresses": []}, "listen_addresses"),
        ({"port": 70000}, "port"),
        ({"roles": [{"name": "pg_admin"}]}, "roles.0.name"),
        ({"roles": [{"name": "postgres"}]}, "roles.0.name"),
        ({"roles": [{"name": "App"}]}, "roles.0.name"),
        ({"roles": [{"name": "app", "password": "hunter2"}]}, "roles.0.password"),
        ({"roles": [{"name": "app"}, {"name": "app"}]}, "roles"),
        ({"databases": [{"name": "appdb", "owner": "nobody"}]}, "databases"),
        ({"databases": [{"name": "template1"}]}, "databases.0.name"),
        ({"databases": [{"name": "app-db"}]}, "databases.0.name"),
        ({"hba": [{"type": "host"}]}, "hba.0.address"),
        ({"hba": [{"type": "local", "address": "10.0.0.0/8"}]}, "hba.0.address"),
        ({"hba": [{"type": "host", "address": "10.0.0.0/8", "method": "peer"}]}, "hba.0.method"),
        ({"hba": [{"type": "host", "address": "10.0.0.0/8", "method": "cert"}]}, "hba.0.method"),
        ({"hba": [{"type": "host", "address": "10.0.0.0/8", "method": "trust"}]}, "hba.0.method"),
        ({"hba": [{"address": "10.0.0.1/8"}]}, "hba.0.address"),
    ],
)
def test_bad_values_are_refused(data: dict[str, Any], location: str) -> None:
    errors = errors_of(PostgresqlSettings, data)
    assert location in errors, errors


def test_unknown_fields_are_refused() -> None:
    assert refused_field(PostgresqlSettings, {"shared_buffers": "1GB"}) == "shared_buffers"


def test_offerings(registry: Registry) -> None:
    (offering,) = registry.modules["postgresql"].offerings
    assert offering.name == "managed-postgresql"
    assert [plan.name for plan in offering.plans] == ["small", "large"]
    for plan in offering.plans:
        schema = plan.parameters
        assert schema["type"] == "object" and schema["required"] == ["database"]
        assert schema["additionalProperties"] is False
        assert all(spec.get("description") for spec in schema["properties"].values())


@pytest.mark.parametrize("password", sorted(VECTORS))
def test_scram_matches_postgresql_verifiers(password: str) -> None:
    assert SCRAM.scram_matches(password, VECTORS[password])
    assert not SCRAM.scram_matches(password + "!", VECTORS[password])


@pytest.mark.parametrize(
    "verifier", [None, "", "md5abc", "SCRAM-SHA-256$x:y$z", "SCRAM-SHA-256$4096:!!$a:b"]
)
def test_scram_refuses_what_is_not_a_verifier(verifier: str | None) -> None:
    assert SCRAM.scram_matches("secret", verifier) is False


def test_scram_verifier_round_trip() -> None:
    made = SCRAM.scram_verifier("s3cret ü")
    assert made.startswith("SCRAM-SHA-256$4096:")
    assert SCRAM.scram_matches("s3cret ü", made) and not SCRAM.scram_matches("s3cret u", made)
    assert made != SCRAM.scram_verifier("s3cret ü")  # a fresh salt each time


def test_hba_lines(tmp_path: Path) -> None:
    from tests.modules.ansible import render

    text = render(ROLE, "pg_hba.conf.j2", role_variables(Postgresql), tmp_path)
    rules = [line.split() for line in text.splitlines() if line and not line.startswith("#")]
    assert rules[0] == ["local", "all", "postgres", "peer"]
    assert rules[1] == ["hostssl", "appdb", "app", "10.0.0.0/24", "scram-sha-256"]


@pytest.fixture
def cluster() -> Iterator[PostgresServer]:
    server = start_private_cluster()
    yield server
    server.stop()


def _apply_objects(
    server: PostgresServer, variables: dict[str, Any], tmp_path: Path, *options: str
) -> dict[str, int]:
    """objects.yml against `server`: the role's own psql (as the postgres account), sent
    to the cluster's socket directory by PGHOST, which runuser passes on."""
    assert server.directory is not None
    task = {"ansible.builtin.include_role": {"name": str(ROLE), "tasks_from": "objects.yml"}}
    play = [{"hosts": "all", "gather_facts": False, "tasks": [task]}]
    port = {"postgresql_port": str(server.port)}
    env = {"PGHOST": str(server.directory)}
    run = run_playbook(play, variables | port, tmp_path, *options, env=env).check()
    return run.recap()


def _state(server: PostgresServer) -> dict[str, Any]:
    with psycopg.connect(
        host=server.host, port=server.port, user="postgres", dbname="postgres"
    ) as db:
        rows = db.execute(
            "SELECT rolname, rolcanlogin, rolpassword FROM pg_authid"
            " WHERE rolname IN ('app', 'reporting')"
        ).fetchall()
        roles = {name: (login, password) for name, login, password in rows}
        owners = dict(
            db.execute(
                "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'appdb'"
            ).fetchall()
        )
    return {"roles": roles, "owners": owners}


@pytest.mark.slow
@pytest.mark.postgres
def test_roles_and_databases_on_a_real_server(cluster: PostgresServer, tmp_path: Path) -> None:
    variables = role_variables(Postgresql)
    plan = _apply_objects(cluster, variables, tmp_path, "--check")
    assert plan["changed"] == 3 and _state(cluster)["roles"] == {}

    first = _apply_objects(cluster, variables, tmp_path)
    state = _state(cluster)
    assert first["changed"] == 3, first
    assert state["owners"] == {"appdb": "app"}
    login, verifier = state["roles"]["app"]
    assert login and SCRAM.scram_matches(SECRETS["app-db"], verifier)
    assert state["roles"]["reporting"] == (False, None)

    assert _apply_objects(cluster, variables, tmp_path)["changed"] == 0

    variables["postgresql"]["roles"][0]["password"] = "a new password"
    variables["postgresql"]["roles"][1]["login"] = True
    assert _apply_objects(cluster, variables, tmp_path)["changed"] == 2
    login, verifier = _state(cluster)["roles"]["app"]
    assert SCRAM.scram_matches("a new password", verifier)
    assert _state(cluster)["roles"]["reporting"][0] is True
