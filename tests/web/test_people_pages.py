"""Roles on the pages, members, users and API tokens."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.models import ApiToken, AuditEntry, Host, Role, User
from tests.helpers import count, make_org, make_user, password_of
from tests.web.conftest import Site
from tests.web.test_inventory_pages import GOOD_HOST, field_errors


@pytest.fixture
def clinic(admin: Site, engine: Engine) -> str:
    make_org(engine, "clinic")
    admin.post("/orgs/clinic/hosts/new", GOOD_HOST)
    admin.post("/orgs/clinic/groups/new", {"name": "web", "parent": ""})
    admin.post(
        "/orgs/clinic/credentials/new",
        {"name": "pw", "kind": "password", "secret_password": "a password"},
    )
    return "clinic"


def signed_in(site: Site, engine: Engine, settings: Settings, username: str, **roles: Role) -> Site:
    make_user(engine, settings, username, **roles)
    assert site.login(username, password_of(username)).status_code == 303
    return site


@pytest.fixture
def viewer(other_site: Site, engine: Engine, settings: Settings, clinic: str) -> Site:
    return signed_in(other_site, engine, settings, "vera", clinic=Role.viewer)


# --- a viewer -----------------------------------------------------------------------


def test_a_viewer_sees_no_edit_forms(viewer: Site) -> None:
    for url in ("/orgs/clinic", "/orgs/clinic/groups", "/orgs/clinic/credentials"):
        page = viewer.get(url).text
        assert "/new" not in page, url
        assert "/delete" not in page, url
    host = viewer.get("/orgs/clinic/hosts/web-1").text
    assert "198.51.100.10" in host
    assert "<form" not in host.replace('action="/logout"', "").split("<main", 1)[1]
    group = viewer.get("/orgs/clinic/groups/web").text
    assert 'action="/orgs/clinic/groups/web"' not in group
    members = viewer.get("/orgs/clinic/members").text
    assert "vera" in members and "<select" not in members
    nav = viewer.get("/").text
    assert 'href="/users"' not in nav, "Users is for admins"


@pytest.mark.parametrize(
    "url", ["/orgs/clinic/hosts/new", "/orgs/clinic/groups/new", "/orgs/clinic/credentials/new"]
)
def test_a_viewer_gets_403_on_the_add_forms(viewer: Site, url: str) -> None:
    response = viewer.get(url)
    assert response.status_code == 403
    assert "<h1>Not allowed</h1>" in response.text
    assert "The viewer role may not" in response.text


@pytest.mark.parametrize(
    ("url", "form"),
    [
        ("/orgs/clinic/hosts/new", {**GOOD_HOST, "name": "web-2"}),
        ("/orgs/clinic/hosts/web-1", {**GOOD_HOST, "address": "198.51.100.99"}),
        ("/orgs/clinic/hosts/web-1/delete", {}),
        ("/orgs/clinic/groups/new", {"name": "db"}),
        ("/orgs/clinic/groups/web/delete", {}),
        ("/orgs/clinic/credentials/new", {"name": "k", "kind": "password", "secret_password": "x"}),
        ("/orgs/clinic/credentials/pw/delete", {}),
        ("/orgs/clinic/members", {"username": "vera", "role": "owner"}),
        ("/orgs", {"name": "mine"}),
        ("/users", {"username": "eve", "password": "long enough password"}),
    ],
)
def test_a_viewer_posting_anyway_gets_403_and_writes_nothing(
    viewer: Site, engine: Engine, url: str, form: dict[str, str]
) -> None:
    before = count(engine, AuditEntry)
    response = viewer.post(url, form)
    assert response.status_code == 403, response.text
    assert count(engine, AuditEntry) == before
    assert count(engine, Host) == 1


def test_a_non_member_gets_404_for_someone_elses_org(
    other_site: Site, engine: Engine, settings: Settings, clinic: str
) -> None:
    make_org(engine, "elsewhere")
    site = signed_in(other_site, engine, settings, "olga", elsewhere=Role.owner)
    assert site.get("/orgs/clinic").status_code == 403
    dashboard = site.get("/").text
    assert "elsewhere" in dashboard and "clinic" not in dashboard
    assert site.get("/users").status_code == 403


# --- members ------------------------------------------------------------------------


def test_an_owner_sets_roles_and_removes_members(
    other_site: Site, engine: Engine, settings: Settings, clinic: str
) -> None:
    owner = signed_in(other_site, engine, settings, "otto", clinic=Role.owner)
    make_user(engine, settings, "eddie")
    page = owner.get("/orgs/clinic/members").text
    assert "<select" in page and "Add a member" in page
    response = owner.post("/orgs/clinic/members", {"username": "eddie", "role": "editor"})
    assert response.headers["location"] == "/orgs/clinic/members?notice=member-saved"
    assert re.search(
        r"eddie</th>.*?value=\"editor\" selected",
        owner.get(response.headers["location"]).text,
        re.S,
    )
    unknown = owner.post("/orgs/clinic/members", {"username": "nobody", "role": "editor"})
    assert unknown.status_code == 422
    assert field_errors(unknown.text) == {"username": "no such user"}
    removed = owner.post("/orgs/clinic/members/eddie/remove", {})
    assert removed.status_code == 303
    assert "eddie" not in owner.get("/orgs/clinic/members").text


# --- users --------------------------------------------------------------------------


def test_an_admin_creates_a_user_who_can_then_sign_in(
    admin: Site, other_site: Site, engine: Engine
) -> None:
    form = {
        "username": "alice",
        "display_name": "Alice A.",
        "email": "alice@example.org",
        "password": "a long password",
    }
    response = admin.post("/users", form)
    assert response.headers["location"] == "/users?notice=user-created"
    listing = admin.get(response.headers["location"]).text
    assert "Alice A." in listing and "User created." in listing
    assert other_site.login("alice", "a long password").status_code == 303
    assert "Alice A." in other_site.get("/").text


def test_a_bad_user_is_refused_beside_its_fields_without_echoing_the_password(
    admin: Site, engine: Engine
) -> None:
    response = admin.post("/users", {"username": "bob", "password": "short-PW-xy"})
    assert response.status_code == 422
    assert field_errors(response.text) == {"password": "must have at least 12 characters"}
    assert 'value="bob"' in response.text
    assert "short-PW-xy" not in response.text
    assert count(engine, User) == 1


# --- tokens -------------------------------------------------------------------------


def test_a_token_is_shown_once_and_works_until_revoked(
    admin: Site, engine: Engine, clinic: str
) -> None:
    response = admin.post(
        "/tokens",
        {"name": "backup", "organisation": "clinic", "role": "viewer", "expires_at": "2099-12-31"},
    )
    assert response.status_code == 200
    assert "only time the token is shown" in response.text
    assert response.headers["cache-control"] == "no-store"
    [raw] = re.findall(r'value="(icms_[^"]+)"', response.text)
    listing = admin.get("/tokens").text
    assert raw not in listing
    assert raw[:11] in listing, "the prefix identifies it"
    assert "2099-12-31 23:59 UTC" in listing, "valid through the last day"
    bearer = {"authorization": f"Bearer {raw}"}
    api = admin.client
    assert api.get("/api/v1/orgs/clinic/hosts", headers=bearer).status_code == 200
    [token_id] = re.findall(r'action="/tokens/([0-9a-f-]+)/revoke"', listing)
    assert admin.post(f"/tokens/{token_id}/revoke", {}).status_code == 303
    assert api.get("/api/v1/orgs/clinic/hosts", headers=bearer).status_code == 401
    assert ">revoked<" in admin.get("/tokens").text


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"role": "owner"}, "role", "must be no more than your role (viewer)"),
        ({"expires_at": "2001-01-01"}, "expires_at", "is in the past"),
        ({"expires_at": "next week"}, "expires_at", "must be a date"),
        ({"name": ""}, "name", "must not be empty"),
    ],
)
def test_a_refused_token_shows_why_and_issues_nothing(
    viewer: Site, engine: Engine, form: dict[str, str], field: str, message: str
) -> None:
    data = {"name": "t", "organisation": "clinic", "role": "viewer", "expires_at": "", **form}
    response = viewer.post("/tokens", data)
    assert response.status_code == 422
    assert message in field_errors(response.text)[field]
    assert count(engine, ApiToken) == 0
