"""Signing in and out of the pages: cookies, messages, CSRF, the rate limit, redirects."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from infracms.app import create_app
from infracms.config import Settings
from infracms.db import make_engine
from infracms.models import LoginAttempt, Organisation, WebSession
from infracms.services.setup import initialise
from tests.helpers import count
from tests.web.conftest import ADMIN_PASSWORD, Site


def set_cookie_headers(response: object, name: str) -> list[str]:
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    return [header for header in headers if header.startswith(f"{name}=")]


def test_the_login_form_carries_a_csrf_field_matching_its_cookie(site: Site) -> None:
    response = site.get("/login")
    assert response.status_code == 200
    assert 'name="csrf_token"' in response.text
    assert site.client.cookies.get("infracms_login_csrf") == site.csrf


def test_signing_in_sets_a_strict_session_cookie_and_goes_on(site: Site, engine: Engine) -> None:
    response = site.login(next="/tokens")
    assert response.status_code == 303
    assert response.headers["location"] == "/tokens"
    [cookie] = set_cookie_headers(response, "infracms_session")
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "path=/", "samesite=lax"} <= attributes, cookie
    assert "secure" not in attributes, "Secure is only set when base_url is https"
    assert count(engine, WebSession) == 1
    assert site.get("/").status_code == 200


def test_the_cookie_is_secure_when_the_node_is_served_over_tls(tmp_path: Path, app: object) -> None:
    settings = Settings(
        data_dir=app.state.settings.data_dir,  # type: ignore[attr-defined]
        base_url="https://cms.example.org",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
    )
    tls_app = create_app(settings)
    with TestClient(tls_app, base_url="https://testserver") as client:
        site = Site(client)
        response = site.login()
    tls_app.state.engine.dispose()
    [cookie] = set_cookie_headers(response, "infracms_session")
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}, cookie


def test_a_wrong_password_shows_a_message_and_opens_no_session(site: Site, engine: Engine) -> None:
    response = site.login(password="not the password")
    assert response.status_code == 401
    assert "Wrong user name or password." in response.text
    assert 'value="admin"' in response.text, "the user name is kept"
    assert not set_cookie_headers(response, "infracms_session")
    assert count(engine, WebSession) == 0
    assert site.get("/").status_code == 303


def test_too_many_failures_show_the_rate_limit(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        admin_password=ADMIN_PASSWORD,
        login_attempts=2,
    )
    engine = make_engine(settings)
    initialise(settings, engine)
    engine.dispose()
    limited = create_app(settings)
    with TestClient(limited) as client:
        site = Site(client)
        assert site.login(password="wrong one").status_code == 401
        assert site.login(password="wrong two").status_code == 401
        response = site.login()  # the right password, but too late
    limited.state.engine.dispose()
    assert response.status_code == 429
    assert "Too many failed logins; try again in" in response.text
    assert not set_cookie_headers(response, "infracms_session")


@pytest.mark.parametrize("given", ["", "forged-token-from-another-site-0123456789"])
def test_a_login_without_its_csrf_pair_is_refused(site: Site, engine: Engine, given: str) -> None:
    site.get("/login")
    form = {"username": "admin", "password": ADMIN_PASSWORD, "next": "/"}
    response = site.post("/login", form, csrf=given)
    assert response.status_code == 403
    assert "expired" in response.text
    assert not set_cookie_headers(response, "infracms_session")
    assert count(engine, WebSession) == 0
    assert count(engine, LoginAttempt) == 0, "a refused form must not count as an attempt"


def test_a_login_posted_without_the_cookie_is_refused(site: Site, engine: Engine) -> None:
    site.get("/login")
    token = site.csrf
    site.client.cookies.clear()
    form = {"username": "admin", "password": ADMIN_PASSWORD, "next": "/"}
    response = site.post("/login", form, csrf=token)
    assert response.status_code == 403
    assert count(engine, WebSession) == 0


@pytest.mark.parametrize(
    "url",
    ["/", "/orgs", "/orgs/clinic/hosts/web-1", "/users", "/tokens", "/orgs/x/groups/new"],
)
def test_signed_out_pages_send_the_browser_to_login(site: Site, url: str) -> None:
    response = site.get(url)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/login"), location


def test_the_redirect_to_login_remembers_the_page(site: Site) -> None:
    response = site.get("/orgs/clinic?page=2&q=web")
    assert response.headers["location"] == "/login?next=%2Forgs%2Fclinic%3Fpage%3D2%26q%3Dweb"
    form = site.get(response.headers["location"])
    assert 'name="next" value="/orgs/clinic?page=2&amp;q=web"' in form.text


def test_a_signed_out_post_is_sent_to_login_and_writes_nothing(site: Site, engine: Engine) -> None:
    response = site.post("/orgs", {"name": "sneaky"}, csrf="anything")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert count(engine, Organisation) == 0


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/\r\nLocation: https://evil.example",
        "/\t/evil.example",
        "evil.example",
        " //evil.example",
    ],
)
def test_next_never_leaves_the_site(site: Site, target: str) -> None:
    form = site.get("/login", params={"next": target})
    assert 'name="next" value="/"' in form.text
    response = site.post(
        "/login", {"username": "admin", "password": ADMIN_PASSWORD, "next": target}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_signed_in_the_login_page_goes_straight_on(admin: Site) -> None:
    response = admin.get("/login?next=/tokens")
    assert response.status_code == 303
    assert response.headers["location"] == "/tokens"


def test_logging_out_ends_the_session(admin: Site, engine: Engine) -> None:
    response = admin.post("/logout", {})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    [cookie] = set_cookie_headers(response, "infracms_session")
    assert "max-age=0" in cookie.lower()
    assert count(engine, WebSession) == 0
    assert admin.get("/").status_code == 303


def test_logging_out_without_the_csrf_token_is_refused(admin: Site, engine: Engine) -> None:
    response = admin.post("/logout", {}, csrf="")
    assert response.status_code == 403
    assert count(engine, WebSession) == 1
    assert admin.get("/").status_code == 200
