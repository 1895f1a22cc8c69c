"""Definitions through the form generated from each module's settings schema: field
errors beside their fields with nothing saved, revisions, diffs, rollback, publishing."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import AuditEntry, Role
from infracms.models.definition import Definition, Revision
from infracms.plugins import Plugins
from infracms.services import definitions
from tests.helpers import ADMIN, count
from tests.web.conftest import Site
from tests.web.test_inventory_pages import GOOD_HOST
from tests.web.test_people_pages import signed_in

BACKUP: dict[str, Any] = {
    "module": "backup",
    "name": "nightly",
    "description": "",
    "target": "group:web",
    "message": "first",
    "settings.repository": "sftp:backup@store.example:/srv/restic/web",
    "settings.password": "credential:restic",
    "settings.password.ref": "",
    "settings.s3_access_key_id": "",
    "settings.s3_secret_access_key": "",
    "settings.s3_secret_access_key.ref": "",
    "settings.paths": "/etc\n/srv\n",
    "settings.exclude": "*.tmp",
    "settings.one_file_system": "on",
    "settings.schedule": "daily",
    "settings.randomized_delay_minutes": "30",
    "settings.keep_daily": "7",
    "settings.keep_weekly": "4",
    "settings.keep_monthly": "6",
    "settings.keep_yearly": "0",
    "settings.initialise": "on",
}


@pytest.fixture
def plugins() -> Plugins:
    """The built-in modules only."""
    return Plugins.load(entry_points=False)


@pytest.fixture
def clinic(admin: Site) -> str:
    """An organisation with a host in a group, a credential, and backup and firewall enabled."""
    admin.post("/orgs", {"name": "clinic", "title": ""})
    admin.post("/orgs/clinic/groups/new", {"name": "web", "parent": ""})
    admin.post("/orgs/clinic/hosts/new", {**GOOD_HOST, "groups": ["web"]})
    admin.post(
        "/orgs/clinic/credentials/new",
        {"name": "restic", "kind": "password", "secret_password": "a long password"},
    )
    for name in ("backup", "firewall", "base"):
        admin.post(f"/modules/{name}/availability", {"available": "yes"})
        assert admin.post(f"/orgs/clinic/modules/{name}/enable", {}).status_code == 303
    return "clinic"


def field_errors(page: str) -> dict[str, str]:
    """The field-level messages of a page, by field name (setting names have dots)."""
    found = re.findall(r'<p class="field-error" id="error-([\w.-]+)">(.*?)</p>', page, re.S)
    hidden = '<span class="visually-hidden">Error: </span>'
    return {name: html.unescape(message.replace(hidden, "")) for name, message in found}


def saved(engine: Engine) -> tuple[int, int, int]:
    return count(engine, Definition), count(engine, Revision), count(engine, AuditEntry)


def settings_of(engine: Engine, name: str, number: int | None = None) -> dict[str, Any]:
    with session_scope(engine) as session:
        revisions = definitions.history(
            session=session, actor=ADMIN, organisation="clinic", name=name
        )
    chosen = revisions[0] if number is None else next(r for r in revisions if r.number == number)
    return chosen.settings


def test_the_form_is_generated_from_the_settings_schema(clinic: str, admin: Site) -> None:
    chooser = admin.get("/orgs/clinic/definitions/new").text
    assert 'href="/orgs/clinic/definitions/new?module=backup"' in chooser
    page = admin.get("/orgs/clinic/definitions/new?module=backup").text
    assert re.search(
        r'<input id="settings.repository" name="settings.repository" type="text"', page
    )
    assert '<option value="credential:restic">Credential: restic</option>' in page, "secret"
    assert 'name="settings.password.ref"' in page, "a $env/$file reference may be typed"
    assert re.search(r'id="settings.keep_daily"[^>]*type="number"[^>]*min="0" max="3650"', page)
    paths = re.search(r'<textarea id="settings.paths"[^>]*>(.*?)</textarea>', page, re.S)
    assert paths and paths.group(1) == "/etc\n/home\n/root\n/srv\n/var/lib", "defaults prefilled"
    assert re.search(
        r'type="checkbox" id="settings.initialise" name="settings.initialise" checked', page
    )
    assert '<option value="group:web">web (group)</option>' in page
    firewall = admin.get("/orgs/clinic/definitions/new?module=firewall").text
    assert re.search(
        r'<select id="settings.input_policy"[^>]*>\s*<option value="drop" selected>', firewall
    )
    assert "a list of mappings with proto, ports, sources, comment" in firewall, "YAML textarea"
    assert 'placeholder="- ports: …"' in firewall, "the placeholder names a key the rules take"


def test_ports_typed_as_a_yaml_list_are_stored_as_numbers(
    clinic: str, admin: Site, engine: Engine
) -> None:
    form = {
        "name": "edge",
        "module": "firewall",
        "target": "group:web",
        "description": "",
        "message": "",
        "settings.input_policy": "drop",
        "settings.forward_policy": "drop",
        "settings.ssh_port": "22",
        "settings.ssh_sources": "",
        "settings.rules": "- ports: [80, 443]\r\n- ports: [8000-8100]\r\n  proto: udp\r\n",
        "settings.allow_ping": "on",
    }
    response = admin.post("/orgs/clinic/definitions/new", form)
    assert response.status_code == 303, field_errors(response.text) or response.text
    rules = settings_of(engine, "edge")["rules"]
    assert [rule["ports"] for rule in rules] == [[80, 443], ["8000-8100"]]


def test_a_definition_is_created_through_the_form(clinic: str, admin: Site, engine: Engine) -> None:
    response = admin.post("/orgs/clinic/definitions/new", BACKUP)
    assert response.status_code == 303, field_errors(response.text) or response.text
    assert (
        response.headers["location"] == "/orgs/clinic/definitions/nightly?notice=definition-created"
    )
    stored = settings_of(engine, "nightly")
    assert stored["password"] == {"$credential": "restic"}
    assert stored["paths"] == ["/etc", "/srv"] and stored["exclude"] == ["*.tmp"]
    assert stored["keep_daily"] == 7 and stored["one_file_system"] is True
    page = admin.get(response.headers["location"]).text
    assert "credential restic" in page and "revision 1, published" in page
    host = admin.get("/orgs/clinic/hosts/web-1").text
    assert "What this host gets" in host and "sftp:backup@store.example:/srv/restic/web" in host


def test_bad_settings_are_shown_beside_their_fields_and_nothing_is_saved(
    clinic: str, admin: Site, engine: Engine
) -> None:
    before = saved(engine)
    bad = {
        **BACKUP,
        "settings.keep_daily": "-1",
        "settings.paths": "/etc\nrelative/path",
        "settings.one_file_system": "",
    }
    del bad["settings.one_file_system"]
    response = admin.post("/orgs/clinic/definitions/new", bad)
    assert response.status_code == 422
    errors = field_errors(response.text)
    assert "greater than or equal to 0" in errors["settings.keep_daily"]
    assert errors["settings.paths"].startswith("item 2: 'relative/path'")
    assert saved(engine) == before
    assert 'value="-1"' in response.text, "the typed values come back"
    assert re.search(
        r'id="settings.one_file_system" name="settings.one_file_system"(?! checked)', response.text
    )
    assert 'href="#settings.keep_daily">Keep daily</a>' in response.text, "summary links"


def test_references_yaml_and_the_other_fields_are_checked_too(
    clinic: str, admin: Site, engine: Engine
) -> None:
    before = saved(engine)
    typed = {**BACKUP, "settings.password": "other", "settings.password.ref": "RESTIC_PW"}
    response = admin.post("/orgs/clinic/definitions/new", typed)
    assert (
        "type $env:VARIABLE or $file:/absolute/path"
        in field_errors(response.text)["settings.password"]
    )
    rules = {
        "module": "firewall",
        "name": "fw",
        "target": "host:web-1",
        "settings.rules": "- ports: [443\n",
    }
    response = admin.post("/orgs/clinic/definitions/new", rules)
    assert field_errors(response.text)["settings.rules"].startswith("is not valid YAML or JSON")
    nameless = admin.post("/orgs/clinic/definitions/new", {**BACKUP, "name": "", "target": ""})
    assert set(field_errors(nameless.text)) >= {"name", "target"}
    assert field_errors(nameless.text)["target"] == "choose a host or a group (one, not both)"
    assert saved(engine) == before
    env = {**typed, "settings.password.ref": "$env:INFRACMS_VAR_RESTIC_PW"}
    refused = admin.post("/orgs/clinic/definitions/new", env)  # not granted to clinic
    assert "not granted" in field_errors(refused.text)["settings.password"]
    assert saved(engine) == before
    admin.client.post(
        "/api/v1/orgs/clinic/secret-grants",
        json={"kind": "env", "name": "INFRACMS_VAR_RESTIC_PW"},
        headers={"x-csrf-token": admin.csrf},
    ).raise_for_status()
    assert admin.post("/orgs/clinic/definitions/new", env).status_code == 303
    assert settings_of(engine, "nightly")["password"] == {"$env": "INFRACMS_VAR_RESTIC_PW"}
    rules["settings.rules"] = "- ports: [443]\n  comment: web\n"
    assert admin.post("/orgs/clinic/definitions/new", rules).status_code == 303
    assert settings_of(engine, "fw")["rules"][0]["comment"] == "web"


def test_revisions_diffs_and_rolling_back(clinic: str, admin: Site, engine: Engine) -> None:
    admin.post("/orgs/clinic/definitions/new", BACKUP)
    edit = admin.get("/orgs/clinic/definitions/nightly/edit").text
    assert 'value="sftp:backup@store.example:/srv/restic/web"' in edit
    second = {key: value for key, value in BACKUP.items() if key.startswith("settings.")}
    second.update({"settings.keep_daily": "14", "message": "two weeks", "publish": "on"})
    response = admin.post("/orgs/clinic/definitions/nightly/edit", second)
    assert response.headers["location"] == "/orgs/clinic/definitions/nightly?notice=revision-saved"
    diff = admin.get("/orgs/clinic/definitions/nightly/diff?old=1&new=2").text
    assert re.search(
        r'<th scope="row" class="mono">keep_daily</th>\s*<td[^>]*><del class="mono">7</del>', diff
    )
    assert '<span class="diff-remove">-keep_daily: 7</span>' in diff
    assert '<span class="diff-add">+keep_daily: 14</span>' in diff
    before = count(engine, Revision)
    rolled = admin.post("/orgs/clinic/definitions/nightly/rollback", {"revision": "1"})
    assert rolled.headers["location"] == "/orgs/clinic/definitions/nightly?notice=rolled-back"
    assert count(engine, Revision) == before + 1, "a rollback is a new revision"
    assert settings_of(engine, "nightly") == settings_of(engine, "nightly", 1)
    page = admin.get(rolled.headers["location"]).text
    assert "roll back to revision 1" in page
    assert re.search(r'<th scope="row" class="nowrap">3 <span class="pill pill-ok">published', page)


def test_a_draft_is_published_later(clinic: str, admin: Site, engine: Engine) -> None:
    admin.post("/orgs/clinic/definitions/new", BACKUP)
    draft = {key: value for key, value in BACKUP.items() if key.startswith("settings.")}
    draft["settings.keep_weekly"] = "8"
    response = admin.post("/orgs/clinic/definitions/nightly/edit", draft)
    assert response.headers["location"].endswith("notice=draft-saved")
    page = admin.get("/orgs/clinic/definitions/nightly").text
    assert "Revision 2 is a draft" in page and "Publish revision 2" in page
    admin.post("/orgs/clinic/definitions/nightly/publish", {"revision": "2"})
    assert "Revision 2 is a draft" not in admin.get("/orgs/clinic/definitions/nightly").text


def test_viewers_read_definitions_and_change_nothing(
    clinic: str, admin: Site, other_site: Site, engine: Engine, settings: Settings
) -> None:
    admin.post("/orgs/clinic/definitions/new", BACKUP)
    viewer = signed_in(other_site, engine, settings, "vera", clinic=Role.viewer)
    page = viewer.get("/orgs/clinic/definitions/nightly").text
    assert "sftp:backup@store.example:/srv/restic/web" in page
    main = page.replace('action="/logout"', "").split("<main", 1)[1]
    assert 'method="post"' not in main and "/edit" not in main
    assert "Roll back" not in page
    assert viewer.get("/orgs/clinic/definitions/nightly/diff?old=1&new=1").status_code == 200
    before = saved(engine)
    assert viewer.get("/orgs/clinic/definitions/new?module=backup").status_code == 403
    assert viewer.get("/orgs/clinic/definitions/nightly/edit").status_code == 403
    assert viewer.post("/orgs/clinic/definitions/new", BACKUP).status_code == 403
    assert (
        viewer.post("/orgs/clinic/definitions/nightly/rollback", {"revision": "1"}).status_code
        == 403
    )
    assert saved(engine) == before
    assert "nightly" in viewer.get("/definitions").text


def test_a_definition_is_retired_and_its_history_stays(clinic: str, admin: Site) -> None:
    admin.post("/orgs/clinic/definitions/new", BACKUP)
    assert "Retire definition nightly?" in admin.get("/orgs/clinic/definitions/nightly/retire").text
    response = admin.post("/orgs/clinic/definitions/nightly/retire", {})
    assert response.headers["location"] == "/orgs/clinic/definitions?notice=definition-retired"
    assert "nightly" not in admin.get("/orgs/clinic/definitions").text.split('class="tabs"')[1]
    assert "nightly" in admin.get("/orgs/clinic/definitions?retired=true").text
    page = admin.get("/orgs/clinic/definitions/nightly").text
    assert "retired" in page and "Edit settings" not in page
