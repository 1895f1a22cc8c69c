"""Organisations, hosts, groups and credentials through the forms, as a browser posts them."""

from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import AuditEntry, Credential, Host, HostGroup, Organisation
from infracms.models.host import HostPublic
from infracms.services import inventory
from infracms.sshkeys import host_key_fingerprint
from tests.helpers import ADMIN, count, make_org, make_user, password_of
from tests.web.conftest import Site

GOOD_HOST = {
    "name": "web-1",
    "address": "198.51.100.10",
    "ssh_port": "2222",
    "ssh_user": "deploy",
    "credential": "",
    "variables": "",
    "host_key": "",
}


def field_errors(html: str) -> dict[str, str]:
    """The field-level messages of a page, by field name."""
    found = re.findall(r'<p class="field-error" id="error-([\w-]+)">(.*?)</p>', html, re.S)
    hidden = '<span class="visually-hidden">Error: </span>'
    return {name: message.replace(hidden, "") for name, message in found}


def stored_host(engine: Engine, org: str, name: str) -> HostPublic:
    with session_scope(engine) as session:
        return inventory.get_host(session=session, actor=ADMIN, organisation=org, name=name)


def public_key_line() -> str:
    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def private_key_text() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )


@pytest.fixture
def clinic(admin: Site, engine: Engine) -> str:
    make_org(engine, "clinic")
    return "clinic"


# --- organisations --------------------------------------------------------------


def test_an_admin_creates_an_organisation_and_sees_it_on_the_dashboard(
    admin: Site, engine: Engine
) -> None:
    response = admin.post("/orgs", {"name": "north-dental", "title": "North Dental"})
    assert response.status_code == 303
    assert response.headers["location"] == "/orgs/north-dental"
    assert admin.get("/orgs/north-dental").status_code == 200
    dashboard = admin.get("/").text
    assert "North Dental" in dashboard
    assert '<dt>Hosts</dt><dd><a href="/orgs/north-dental">0</a></dd>' in dashboard
    assert count(engine, Organisation) == 1


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [("Bad Name!", 422, "must be 1-63 lower-case letters"), ("clinic", 409, "is already taken")],
)
def test_a_refused_organisation_shows_why_beside_the_field(
    admin: Site, engine: Engine, clinic: str, name: str, status: int, message: str
) -> None:
    before = count(engine, AuditEntry)
    response = admin.post("/orgs", {"name": name, "title": "Kept title"})
    assert response.status_code == status
    assert message in field_errors(response.text)["name"]
    assert 'class="error-summary"' in response.text
    assert 'value="Kept title"' in response.text, "the user's values are kept"
    assert count(engine, Organisation) == 1
    assert count(engine, AuditEntry) == before


# --- hosts ------------------------------------------------------------------------


def test_a_host_is_created_with_groups_credential_variables_and_key(
    admin: Site, engine: Engine, clinic: str
) -> None:
    admin.post("/orgs/clinic/groups/new", {"name": "web", "parent": ""})
    admin.post("/orgs/clinic/groups/new", {"name": "eu", "parent": ""})
    admin.post(
        "/orgs/clinic/credentials/new",
        {"name": "deploy-pw", "kind": "password", "secret_password": "s3cret-Password"},
    )
    key = public_key_line()
    response = admin.post(
        "/orgs/clinic/hosts/new",
        {
            **GOOD_HOST,
            "credential": "deploy-pw",
            "groups": ["web", "eu"],
            "variables": "ntp_server: ntp.example.org\nports: [80, 443]\nsince: 2024-01-01\n",
            "host_key": f"web-1.example.org {key}",
        },
    )
    assert response.status_code == 303, field_errors(response.text)
    assert response.headers["location"] == "/orgs/clinic/hosts/web-1?notice=host-created"
    host = stored_host(engine, "clinic", "web-1")
    assert (host.address, host.ssh_port, host.ssh_user) == ("198.51.100.10", 2222, "deploy")
    assert host.credential == "deploy-pw"
    assert host.groups == ["eu", "web"]
    assert host.variables == {
        "ntp_server": "ntp.example.org",
        "ports": [80, 443],
        "since": "2024-01-01",
    }
    page = admin.get(response.headers["location"]).text
    assert "Host added." in page
    assert host_key_fingerprint(key) in page
    listing = admin.get("/orgs/clinic").text
    assert ">web-1</a>" in listing and "pinned" in listing


def test_json_variables_are_accepted_too(admin: Site, engine: Engine, clinic: str) -> None:
    response = admin.post(
        "/orgs/clinic/hosts/new", {**GOOD_HOST, "variables": '{"tier": "gold", "n": 3}'}
    )
    assert response.status_code == 303
    assert stored_host(engine, "clinic", "web-1").variables == {"tier": "gold", "n": 3}


def test_bad_host_values_come_back_beside_their_fields_and_nothing_is_written(
    admin: Site, engine: Engine, clinic: str
) -> None:
    before = count(engine, AuditEntry)
    response = admin.post(
        "/orgs/clinic/hosts/new",
        {**GOOD_HOST, "address": "999.1.1.1", "ssh_port": "70000", "variables": "a: [1, 2"},
    )
    assert response.status_code == 422
    errors = field_errors(response.text)
    assert errors.keys() == {"address", "ssh_port", "variables"}, errors
    assert "999.1.1.1" in errors["address"]
    assert "not valid YAML or JSON" in errors["variables"]
    assert 'value="999.1.1.1"' in response.text, "the typed values are kept"
    assert "a: [1, 2</textarea>" in response.text
    assert 'aria-invalid="true"' in response.text
    assert count(engine, Host) == 0
    assert count(engine, AuditEntry) == before


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ("- a\n- b", "must be a mapping"),
        ("a: &x [1]\nb: *x", "aliases"),
        ("a: !!binary aGVsbG8=", "may hold only"),
        ("ansible_host: evil", "is reserved"),
    ],
)
def test_variables_that_are_not_a_plain_mapping_are_a_field_error(
    admin: Site, engine: Engine, clinic: str, variables: str, message: str
) -> None:
    response = admin.post("/orgs/clinic/hosts/new", {**GOOD_HOST, "variables": variables})
    assert response.status_code == 422
    assert message in field_errors(response.text)["variables"]
    assert count(engine, Host) == 0


def test_a_duplicate_host_name_is_a_field_error(admin: Site, engine: Engine, clinic: str) -> None:
    assert admin.post("/orgs/clinic/hosts/new", GOOD_HOST).status_code == 303
    response = admin.post("/orgs/clinic/hosts/new", {**GOOD_HOST, "address": "198.51.100.11"})
    assert response.status_code == 409
    assert field_errors(response.text) == {"name": "is already taken"}
    assert stored_host(engine, "clinic", "web-1").address == "198.51.100.10"


def test_a_host_is_edited_and_its_pinned_key_kept(admin: Site, engine: Engine, clinic: str) -> None:
    # a pinned key is no longer a form field: it is replaced only after a scan
    admin.post("/orgs/clinic/groups/new", {"name": "web", "parent": ""})
    key = public_key_line()
    admin.post(
        "/orgs/clinic/hosts/new",
        {**GOOD_HOST, "groups": ["web"], "host_key": key, "variables": "a: 1"},
    )
    form = admin.get("/orgs/clinic/hosts/web-1").text
    assert 'action="/orgs/clinic/hosts/web-1"' in form
    assert "a: 1\n</textarea>" in form, "variables are shown as YAML"
    assert 'name="host_key"' not in form and ">scan it and replace the key</a>" in form
    assert "/api/v1" not in form, "the form speaks the API"
    response = admin.post(
        "/orgs/clinic/hosts/web-1",
        {**GOOD_HOST, "address": "web-1.example.org", "ssh_port": "22", "variables": "b: two"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/orgs/clinic/hosts/web-1?notice=saved"
    host = stored_host(engine, "clinic", "web-1")
    assert (host.address, host.ssh_port, host.groups) == ("web-1.example.org", 22, [])
    assert host.variables == {"b": "two"}
    assert host.host_key == key


def test_an_editor_edits_variables_but_not_where_ssh_goes(
    admin: Site, other_site: Site, engine: Engine, settings: Settings, clinic: str
) -> None:
    admin.post(
        "/orgs/clinic/credentials/new",
        {"name": "root-pw", "kind": "password", "secret_password": "s3cret-Password"},
    )
    admin.post("/orgs/clinic/hosts/new", GOOD_HOST)
    make_user(engine, settings, "eddie", clinic="editor")
    site = other_site
    site.login("eddie", password_of("eddie"))
    assert "/orgs/clinic/hosts/new" not in site.get("/orgs/clinic").text
    assert site.get("/orgs/clinic/hosts/new").status_code == 403
    form = site.get("/orgs/clinic/hosts/web-1").text
    assert 'name="address"' not in form and 'name="credential"' not in form
    forged = {**GOOD_HOST, "address": "203.0.113.66", "credential": "root-pw", "variables": "b: 2"}
    assert site.post("/orgs/clinic/hosts/web-1", forged).status_code == 303
    host = stored_host(engine, "clinic", "web-1")
    assert (host.address, host.credential, host.variables) == ("198.51.100.10", None, {"b": 2})


def test_a_bad_edit_changes_nothing(admin: Site, engine: Engine, clinic: str) -> None:
    admin.post("/orgs/clinic/hosts/new", GOOD_HOST)
    response = admin.post(
        "/orgs/clinic/hosts/web-1",
        {**GOOD_HOST, "address": "198.51.100.99", "groups": ["no-such-group"]},
    )
    assert response.status_code == 422
    assert "no-such-group" in field_errors(response.text)["groups"]
    assert 'value="198.51.100.99"' in response.text
    assert stored_host(engine, "clinic", "web-1").address == "198.51.100.10"


def test_a_host_is_removed_after_a_confirmation(admin: Site, engine: Engine, clinic: str) -> None:
    admin.post("/orgs/clinic/hosts/new", GOOD_HOST)
    confirm = admin.get("/orgs/clinic/hosts/web-1/delete")
    assert confirm.status_code == 200
    assert 'action="/orgs/clinic/hosts/web-1/delete"' in confirm.text
    assert count(engine, Host) == 1, "asking is not deleting"
    response = admin.post("/orgs/clinic/hosts/web-1/delete", {})
    assert response.headers["location"] == "/orgs/clinic?notice=host-deleted"
    assert count(engine, Host) == 0
    assert admin.get("/orgs/clinic/hosts/web-1").status_code == 404


def test_hosts_are_paged_and_searched(admin: Site, engine: Engine, clinic: str) -> None:
    for number in range(30):
        admin.post(
            "/orgs/clinic/hosts/new",
            {**GOOD_HOST, "name": f"h-{number:02}", "address": f"198.51.100.{number + 1}"},
        )
    first = admin.get("/orgs/clinic").text
    assert "Showing 1\u201325 of 30 hosts" in first
    assert ">h-24</a>" in first and ">h-25</a>" not in first
    second = admin.get("/orgs/clinic?page=2").text
    assert "Showing 26\u201330 of 30 hosts" in second and ">h-25</a>" in second
    found = admin.get("/orgs/clinic?q=h-1").text
    assert "10 hosts matching" in found


# --- groups -----------------------------------------------------------------------


def test_groups_nest_and_show_as_a_tree(admin: Site, engine: Engine, clinic: str) -> None:
    assert admin.post("/orgs/clinic/groups/new", {"name": "all", "parent": ""}).status_code == 303
    response = admin.post(
        "/orgs/clinic/groups/new",
        {"name": "web", "parent": "all", "description": "Web servers", "variables": "tier: 1"},
    )
    assert response.status_code == 303
    tree = admin.get("/orgs/clinic/groups").text
    assert re.search(r">all</a>.*?<ul>.*?>web</a>.*?Web servers", tree, re.S)
    assert count(engine, HostGroup) == 2


def test_a_group_cannot_be_put_inside_itself(admin: Site, engine: Engine, clinic: str) -> None:
    admin.post("/orgs/clinic/groups/new", {"name": "all", "parent": ""})
    admin.post("/orgs/clinic/groups/new", {"name": "web", "parent": "all"})
    form = admin.get("/orgs/clinic/groups/all").text
    assert '<option value="web"' not in form, "a descendant is not offered as a parent"
    response = admin.post("/orgs/clinic/groups/all", {"parent": "web", "description": ""})
    assert response.status_code == 422
    assert "would contain itself" in field_errors(response.text)["parent"]


def test_a_group_with_children_is_not_deleted(admin: Site, engine: Engine, clinic: str) -> None:
    admin.post("/orgs/clinic/groups/new", {"name": "all", "parent": ""})
    admin.post("/orgs/clinic/groups/new", {"name": "web", "parent": "all"})
    response = admin.post("/orgs/clinic/groups/all/delete", {})
    assert response.status_code == 409
    assert "has child groups: web" in response.text
    assert count(engine, HostGroup) == 2
    assert admin.post("/orgs/clinic/groups/web/delete", {}).status_code == 303
    assert admin.post("/orgs/clinic/groups/all/delete", {}).status_code == 303
    assert count(engine, HostGroup) == 0


def test_a_bad_group_shows_field_errors(admin: Site, engine: Engine, clinic: str) -> None:
    response = admin.post(
        "/orgs/clinic/groups/new", {"name": "Web!", "parent": "nope", "variables": "[1"}
    )
    assert response.status_code == 422
    assert field_errors(response.text).keys() == {"name", "variables"}
    assert count(engine, HostGroup) == 0


# --- credentials --------------------------------------------------------------------


def test_credential_secrets_never_appear_in_any_page(
    admin: Site, engine: Engine, clinic: str
) -> None:
    password, key = "Pa55word-that-is-secret", private_key_text()
    assert (
        admin.post(
            "/orgs/clinic/credentials/new",
            {
                "name": "root-pw",
                "kind": "password",
                "username": "root",
                "secret_password": password,
            },
        ).status_code
        == 303
    )
    assert (
        admin.post(
            "/orgs/clinic/credentials/new",
            {"name": "deploy-key", "kind": "ssh_key", "secret_key": key},
        ).status_code
        == 303
    )
    refused = admin.post(
        "/orgs/clinic/credentials/new",
        {"name": "root-pw", "kind": "password", "secret_password": password},
    )
    assert refused.status_code == 409
    admin.post("/orgs/clinic/hosts/new", {**GOOD_HOST, "credential": "deploy-key"})
    pages = [refused.text] + [
        admin.get(url).text
        for url in (
            "/",
            "/orgs",
            "/orgs/clinic",
            "/orgs/clinic/credentials",
            "/orgs/clinic/credentials/new",
            "/orgs/clinic/hosts/new",
            "/orgs/clinic/hosts/web-1",
            "/orgs/clinic/credentials/deploy-key/delete",
        )
    ]
    key_body = key.splitlines()[1]
    for html in pages:
        assert password not in html
        assert key_body not in html
    listing = admin.get("/orgs/clinic/credentials").text
    assert "root-pw" in listing and "deploy-key" in listing and "SHA256:" in listing


def test_a_bad_key_is_a_field_error_and_the_secret_is_not_echoed(
    admin: Site, engine: Engine, clinic: str
) -> None:
    response = admin.post(
        "/orgs/clinic/credentials/new",
        {"name": "k", "kind": "ssh_key", "secret_key": "not-a-key-but-a-secret-XYZZY"},
    )
    assert response.status_code == 422
    assert "secret" in field_errors(response.text)
    assert "XYZZY" not in response.text
    assert count(engine, Credential) == 0


def test_a_credential_in_use_is_not_deleted(admin: Site, engine: Engine, clinic: str) -> None:
    admin.post(
        "/orgs/clinic/credentials/new",
        {"name": "pw", "kind": "password", "secret_password": "some password"},
    )
    admin.post("/orgs/clinic/hosts/new", {**GOOD_HOST, "credential": "pw"})
    response = admin.post("/orgs/clinic/credentials/pw/delete", {})
    assert response.status_code == 409
    assert "used by hosts: web-1" in response.text
    assert count(engine, Credential) == 1


# --- CSRF ---------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "wrong-token"])
@pytest.mark.parametrize(
    ("url", "form"),
    [
        ("/orgs", {"name": "forged"}),
        ("/orgs/clinic/hosts/new", GOOD_HOST),
        ("/orgs/clinic/groups/new", {"name": "forged"}),
        ("/orgs/clinic/credentials/new", {"name": "f", "kind": "password", "secret_password": "x"}),
        ("/orgs/clinic/members", {"username": "admin", "role": "viewer"}),
        ("/users", {"username": "forged", "password": "long enough password"}),
        ("/tokens", {"name": "forged", "organisation": "clinic", "role": "viewer"}),
    ],
)
def test_a_form_without_the_session_csrf_token_writes_nothing(
    admin: Site, engine: Engine, clinic: str, url: str, form: dict[str, str], token: str
) -> None:
    before = count(engine, AuditEntry)
    response = admin.post(url, form, csrf=token)
    assert response.status_code == 403
    assert "CSRF" in response.text
    assert count(engine, AuditEntry) == before
    api = admin.client.get("/api/v1/orgs", headers={"x-csrf-token": admin.csrf})
    assert [org["name"] for org in api.json()] == ["clinic"]
