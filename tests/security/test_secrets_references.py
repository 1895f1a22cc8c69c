"""An editor with an API token tries to make a definition read secrets that are not its
organisation's: a worker's ``INFRACMS_VAR_*`` variable, the node's key file, another
organisation's secret file, the node's own SSH key. Each is refused, at save where the
reference is a source (the same words whether the variable or file exists or not, and
nothing stored), or before the run sends anything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import InvalidInput
from infracms.keys import load_keyring, node_ssh_key_path
from infracms.models import AuditEntry, Definition, Role, Run
from infracms.plugins import Plugins
from infracms.services import definitions_io, inventory, modules, runs
from infracms.services.common import organisation_by_name
from infracms.services.run_input import load_run_input
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import ADMIN, audit_size, count, member_actor, sign_in
from tests.security._secrets_support import CLINIC, OTHER, bearer, field_errors, people

pytestmark = pytest.mark.security

VALUE = "hunter2-value-of-a-worker-variable"


@pytest.fixture
def world(engine: Engine, settings: Settings) -> dict[str, str]:
    """clinic with backup enabled and a host; other; the people's tokens."""
    tokens = people(engine, settings)
    plugins = Plugins.load()
    with session_scope(engine, write=True) as session:
        for name in ("base", "backup"):
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )
            for org in (CLINIC, OTHER):
                modules.enable_module(
                    session=session, actor=ADMIN, plugins=plugins, organisation=org, name=name
                )
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation=CLINIC,
            data={"name": "web1", "address": "198.51.100.10"},
        )
    return tokens


def backup(name: str, password: dict[str, str]) -> dict[str, Any]:
    """A backup definition on web1 whose password is `password`."""
    return {
        "name": name,
        "module": "backup",
        "target": {"host": "web1"},
        "settings": {"repository": "/srv/restic", "password": password, "paths": ["/etc"]},
    }


def save(client: TestClient, token: str, body: dict[str, Any]) -> Any:
    return client.post(f"/api/v1/orgs/{CLINIC}/definitions", json=body, headers=bearer(token))


def admin_grant(admin: TestClient, org: str, kind: str, name: str) -> None:
    response = admin.post(f"/api/v1/orgs/{org}/secret-grants", json={"kind": kind, "name": name})
    assert response.status_code == 201, response.text


@pytest.fixture
def admin(client: TestClient, engine: Engine, settings: Settings) -> Iterator[TestClient]:
    """A second client of the same app, signed in as the node's admin (API tokens never
    carry a node admin's powers)."""
    signed_in = TestClient(client.app)  # the app is started already: no second lifespan
    sign_in(signed_in, engine, settings, "admin", ADMIN_PASSWORD)
    yield signed_in


def listed(client: TestClient) -> list[tuple[str, str]]:
    """The grants of clinic, as (kind, name)."""
    response = client.get(f"/api/v1/orgs/{CLINIC}/secret-grants")
    assert response.status_code == 200, response.text
    return [(grant["kind"], grant["name"]) for grant in response.json()]


def refused_alike(responses: list[Any]) -> dict[str, str]:
    """Each response is a 422 naming settings.password with the same words; those."""
    bodies = []
    for response in responses:
        assert response.status_code == 422, response.text
        assert VALUE not in response.text
        body = response.json()
        bodies.append((body["detail"], field_errors(response)))
    assert all(b == bodies[0] for b in bodies), bodies
    assert list(bodies[0][1]) == ["settings.password"], bodies[0]
    return bodies[0][1]


def test_an_ungranted_worker_variable_is_refused_as_if_it_did_not_exist(
    client: TestClient, engine: Engine, world: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFRACMS_VAR_DB_PASSWORD", VALUE)
    before = count(engine, Definition), audit_size(engine)
    responses = [
        save(client, world["eddie"], backup(f"b{n}", {"$env": name}))
        for n, name in enumerate(
            ["INFRACMS_VAR_DB_PASSWORD", "INFRACMS_VAR_NO_SUCH_THING", "INFRACMS_SECRET_KEY"]
        )
    ]
    errors = refused_alike(responses)
    assert "not granted" in errors["settings.password"]
    assert (count(engine, Definition), audit_size(engine)) == before


def test_files_outside_the_grants_are_refused_alike(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    world: dict[str, str],
    admin: TestClient,
) -> None:
    secrets = Path(settings.data_dir).resolve() / "secrets"
    (secrets / "clinic").mkdir(parents=True)
    (secrets / "clinic" / "db").write_text(VALUE)
    (secrets / "other-org-file").write_text(VALUE)
    admin_grant(admin, CLINIC, "file", "clinic/")
    admin_grant(admin, OTHER, "file", "other-org-file")
    before = count(engine, Definition), audit_size(engine)
    tried = [
        str(Path(settings.data_dir).resolve() / "secret.key"),  # the node's keyring
        str(node_ssh_key_path(settings).resolve()),
        "/etc/shadow",
        str(secrets / "other-org-file"),  # another organisation's, granted to it
        str(secrets / "clinic" / ".." / "other-org-file"),
        str(secrets / "clinic-db"),  # next to the granted directory, not in it
        str(secrets / "no-such-file"),
    ]
    responses = [
        save(client, world["eddie"], backup(f"f{n}", {"$file": path}))
        for n, path in enumerate(tried)
    ]
    refused_alike(responses)
    assert (count(engine, Definition), audit_size(engine)) == before
    granted = save(client, world["eddie"], backup("ok", {"$file": str(secrets / "clinic/db")}))
    assert granted.status_code == 201, granted.text


def test_another_organisations_grant_does_not_apply(
    client: TestClient,
    engine: Engine,
    world: dict[str, str],
    admin: TestClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INFRACMS_VAR_OTHERS_DB", VALUE)
    admin_grant(admin, OTHER, "env", "INFRACMS_VAR_OTHERS_DB")
    response = save(client, world["eddie"], backup("b", {"$env": "INFRACMS_VAR_OTHERS_DB"}))
    refused_alike([response])
    # an import takes the same check
    files = {"b.yaml": "module: backup\ntarget: {host: web1}\nsettings:\n  repository: /r\n"
             "  paths: [/etc]\n  password: {$env: INFRACMS_VAR_OTHERS_DB}\n"}  # fmt: skip
    with session_scope(engine, write=True) as session:
        editor = member_actor(organisation_by_name(session, name=CLINIC).id, Role.editor)
        with pytest.raises(InvalidInput) as refused:
            definitions_io.import_definitions(
                session=session,
                actor=editor,
                plugins=Plugins.load(),
                organisation=CLINIC,
                files=files,
            )
    assert any("not granted" in message for message in refused.value.errors.values())
    assert count(engine, Definition) == 0


def test_only_a_node_admin_grants_and_it_is_audited(
    client: TestClient, engine: Engine, world: dict[str, str], admin: TestClient
) -> None:
    grant = {"kind": "env", "name": "INFRACMS_VAR_DB_PASSWORD"}
    # members are refused; the owner of another organisation does not even see clinic
    for who, status in (("eddie", 403), ("olga", 403), ("otto", 404)):
        response = client.post(
            f"/api/v1/orgs/{CLINIC}/secret-grants", json=grant, headers=bearer(world[who])
        )
        assert response.status_code == status, (who, response.text)
    assert listed(admin) == []
    admin_grant(admin, CLINIC, "env", "INFRACMS_VAR_DB_PASSWORD")
    seen = client.get(f"/api/v1/orgs/{CLINIC}/secret-grants", headers=bearer(world["eddie"]))
    assert [(g["kind"], g["name"]) for g in seen.json()] == [("env", grant["name"])]
    with session_scope(engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == "secret_source.grant")
        entry = session.exec(query).one()
    assert json.loads(entry.payload) == grant and entry.subject == f"org:{CLINIC}"
    ok = save(client, world["eddie"], backup("b", {"$env": grant["name"]}))
    assert ok.status_code == 201, ok.text
    revoked = client.delete(
        f"/api/v1/orgs/{CLINIC}/secret-grants", params=grant, headers=bearer(world["eddie"])
    )
    assert revoked.status_code == 403
    revoked = admin.delete(f"/api/v1/orgs/{CLINIC}/secret-grants", params=grant)
    assert revoked.status_code == 204, revoked.text
    assert listed(admin) == []


def test_the_nodes_own_ssh_key_is_not_a_credential(
    client: TestClient, engine: Engine, settings: Settings, world: dict[str, str]
) -> None:
    """``{"$credential": "__node__"}`` named the node's private key in the resolver."""
    saved = save(client, world["eddie"], backup("b", {"$credential": "__node__"}))
    assert saved.status_code in (201, 422), saved.text
    if saved.status_code == 422:
        return
    plugins = Plugins.load()
    with session_scope(engine, write=True) as session:
        editor = member_actor(organisation_by_name(session, name=CLINIC).id, Role.editor)
        run_id = runs.create_run(
            session=session,
            actor=editor,
            plugins=plugins,
            organisation=CLINIC,
            data={"kind": "plan"},
        ).id
    node_key = node_ssh_key_path(settings).read_text()
    with session_scope(engine) as session:
        run = session.get(Run, run_id)
        assert run is not None
        with pytest.raises(InvalidInput) as refused:
            load_run_input(
                session, run=run, settings=settings, plugins=plugins, keyring=load_keyring(settings)
            )
    assert "__node__" in str(refused.value) and node_key not in str(refused.value)
