"""Errors: pages for browsers, problem documents for the API; and pages fit the CSP."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine

from tests.helpers import make_org
from tests.web.conftest import Site
from tests.web.test_inventory_pages import GOOD_HOST


def test_unknown_pages_are_html_404s(admin: Site) -> None:
    for url in ("/no-such-page", "/orgs/no-such-org", "/orgs/no-such-org/hosts/x"):
        response = admin.get(url)
        assert response.status_code == 404, url
        assert response.headers["content-type"].startswith("text/html")
    assert "Log out" in admin.get("/orgs/no-such-org").text, "known pages keep the navigation"


def test_a_bad_address_is_a_400_page(admin: Site) -> None:
    response = admin.post("/tokens/not-a-uuid/revoke", {})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("url", "status"),
    [("/api/v1/orgs/no-such-org", 401), ("/api/v1/no-such-route", 404), ("/api/v1/orgs", 401)],
)
def test_the_api_keeps_its_problem_documents(site: Site, url: str, status: int) -> None:
    response = site.get(url)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


def test_the_api_keeps_problem_documents_for_a_signed_in_browser(admin: Site) -> None:
    response = admin.client.get("/api/v1/orgs/no-such-org")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    forbidden = admin.client.post("/api/v1/orgs", json={"name": "x"})
    assert forbidden.status_code == 403, "the API checks its own CSRF header"
    assert forbidden.headers["content-type"] == "application/problem+json"


def test_pages_have_no_inline_script_or_style(admin: Site, engine: Engine) -> None:
    make_org(engine, "clinic")
    admin.post("/orgs/clinic/hosts/new", GOOD_HOST)
    admin.post("/orgs/clinic/groups/new", {"name": "web"})
    bad = admin.post("/orgs/clinic/hosts/new", {**GOOD_HOST, "address": "999.1.1.1"}).text
    urls = [
        "/",
        "/orgs",
        "/orgs/clinic",
        "/orgs/clinic/groups",
        "/orgs/clinic/groups/web",
        "/orgs/clinic/credentials",
        "/orgs/clinic/credentials/new",
        "/orgs/clinic/members",
        "/orgs/clinic/hosts/new",
        "/orgs/clinic/hosts/web-1",
        "/users",
        "/users/admin",
        "/account",
        "/tokens",
        "/nope",
    ]
    for html in [bad, *(admin.get(url).text for url in urls)]:
        assert not re.search(r"<script(?![^>]*\bsrc=)", html)
        assert not re.search(r"\sstyle=|<style|\son[a-z]+=", html)
        assert "http://" not in html and "https://" not in html, "no third-party links"
        assert "=&#34;" not in html, "attributes are written as attributes, not escaped text"


def test_static_files_are_served(site: Site) -> None:
    for name in ("app.css", "app.js", "favicon.svg"):
        assert site.get(f"/static/{name}").status_code == 200
