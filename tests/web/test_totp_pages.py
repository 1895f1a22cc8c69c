"""Two-factor sign-in in the pages: enrolment on the account page, the code asked after
the password, a half-signed-in browser that reaches nothing, and admins made to enrol."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from infracms.app import create_app
from infracms.config import Settings
from infracms.db import make_engine
from infracms.models import WebSession
from infracms.services.setup import initialise
from tests.helpers import count
from tests.support.seed import seed_database
from tests.web.conftest import ADMIN_PASSWORD, Site

SECRET_RE = re.compile(r'<code id="totp-secret">([A-Z2-7]+)</code>')
RECOVERY_RE = re.compile(r"<li><code>([a-z2-9-]{19})</code></li>")
CODE_COOKIE = "infracms_login_code"


def enrol(admin: Site) -> tuple[str, list[str]]:
    """Enrol the signed-in user through the account page: the secret and recovery codes."""
    assert admin.post("/account/totp/start", {}).status_code == 303
    page = admin.get("/account")
    assert page.status_code == 200
    assert '<figure class="qr"' in page.text and "<svg" in page.text
    found = SECRET_RE.search(page.text)
    assert found, page.text
    secret = found.group(1)
    answer = admin.post("/account/totp/confirm", {"code": pyotp.TOTP(secret).now()})
    assert answer.status_code == 200, answer.text
    codes = RECOVERY_RE.findall(answer.text)
    assert len(codes) == 10
    assert RECOVERY_RE.findall(admin.get("/account").text) == []  # shown once
    return secret, codes


def password_step(site: Site, next: str = "/") -> None:
    site.get("/login")
    response = site.post("/login", {"username": "admin", "password": ADMIN_PASSWORD, "next": next})
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/login/code")
    assert "infracms_session" not in response.headers.get("set-cookie", "")


def test_enrol_then_sign_in_with_a_recovery_code(admin: Site, engine: Engine) -> None:
    _, codes = enrol(admin)
    admin.post("/logout", {})
    admin.client.cookies.clear()
    password_step(admin, next="/tokens")
    page = admin.get("/login/code?next=/tokens")
    assert page.status_code == 200 and 'name="code"' in page.text
    wrong = admin.post("/login/code", {"code": "123456", "next": "/tokens"})
    assert wrong.status_code == 401 and "Wrong code" in wrong.text
    right = admin.post("/login/code", {"code": codes[0], "next": "/tokens"})
    assert right.status_code == 303 and right.headers["location"] == "/tokens"
    assert admin.get("/tokens").status_code == 200
    assert "9 recovery codes left" in admin.get("/account").text


@pytest.mark.security
def test_a_half_signed_in_browser_reaches_nothing(admin: Site, engine: Engine) -> None:
    enrol(admin)
    sessions = count(engine, WebSession)
    admin.post("/logout", {})
    admin.client.cookies.clear()
    password_step(admin)
    challenge = admin.client.cookies.get(CODE_COOKIE)
    assert challenge
    assert count(engine, WebSession) == sessions - 1  # the logout's; none opened
    for page in ("/", "/account", "/tokens", "/users", "/orgs"):
        response = admin.get(page)
        assert response.status_code == 303, (page, response.status_code)
        assert response.headers["location"].startswith("/login"), page
    assert admin.client.get("/api/v1/orgs").status_code == 401
    # the challenge token is no credential anywhere else: not as a session, not as a token
    bare = admin.client
    bare.cookies.clear()
    bare.cookies.set("infracms_session", challenge)
    assert bare.get("/api/v1/orgs").status_code == 401
    assert bare.get("/account", follow_redirects=False).status_code == 303
    bare.cookies.clear()
    headers = {"authorization": f"Bearer {challenge}"}
    assert bare.get("/api/v1/orgs", headers=headers).status_code == 401
    assert bare.get("/metrics", headers=headers).status_code == 401


@pytest.mark.security
def test_the_code_step_needs_the_password_step_first(site: Site) -> None:
    site.get("/login")
    assert site.get("/login/code").headers["location"] == "/login"
    response = site.post("/login/code", {"code": "123456"})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    site.client.cookies.set(CODE_COOKIE, "made-up", path="/login/code")
    response = site.post("/login/code", {"code": "123456"})
    assert response.status_code == 303 and response.headers["location"] == "/login"


@pytest.fixture
def strict_app(tmp_path: Path) -> Iterator[FastAPI]:
    settings = Settings(
        data_dir=tmp_path / "strict",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        admin_password=ADMIN_PASSWORD,
        require_totp_for_admins=True,
    )
    seed_database(settings)
    engine = make_engine(settings)
    initialise(settings, engine)
    engine.dispose()
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.mark.security
def test_admins_enrol_before_anything_else_when_the_node_asks(strict_app: FastAPI) -> None:
    with TestClient(strict_app) as client:
        site = Site(client)
        site.login()
        for page in ("/", "/tokens", "/users"):
            response = site.get(page)
            assert response.status_code == 303, page
            assert response.headers["location"] == "/account?notice=totp-required"
        api = client.get("/api/v1/orgs")
        assert api.status_code == 403 and "two-factor" in api.text
        page = site.get("/account?notice=totp-required")
        assert page.status_code == 200 and "set it up to go on" in page.text
        enrol(site)
        assert site.get("/").status_code == 200
        assert client.get("/api/v1/orgs").status_code == 200


def test_a_node_admin_resets_a_users_lost_device(admin: Site, other_site: Site) -> None:
    admin.post("/users", {"username": "tina", "password": "tina-tina-tina-pw", "display_name": ""})
    other_site.login("tina", "tina-tina-tina-pw")
    enrol(other_site)
    page = admin.get("/users/tina")
    assert "Reset two-factor sign-in" in page.text
    response = admin.post("/users/tina/totp-reset", {})
    assert response.status_code == 303
    assert response.headers["location"] == "/users/tina?notice=totp-reset"
    assert "Reset two-factor sign-in" not in admin.get("/users/tina").text
    assert other_site.get("/account").status_code == 303  # tina's sessions ended
    audit = admin.get("/audit?action=totp.reset").text
    assert "user:tina" in audit
