"""The lifecycle of accounts on the pages: an admin edits, disables, enables, resets
and deletes; a person changes their own password; a one-time password must be replaced
before any other page opens; node tokens on the tokens page."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from infracms.config import Settings
from infracms.models import AuditEntry, User
from tests.helpers import make_user, password_of
from tests.web.conftest import Site
from tests.web.test_inventory_pages import field_errors


def _user(engine: Engine, username: str) -> User | None:
    with Session(engine) as session:
        return session.exec(select(User).where(User.username == username)).first()


@pytest.fixture
def olga(engine: Engine, settings: Settings) -> str:
    make_user(engine, settings, "olga")
    return "olga"


def test_an_admin_edits_disables_enables_and_deletes_a_user(
    admin: Site, other_site: Site, engine: Engine, olga: str
) -> None:
    assert '<a href="/users/olga">olga</a>' in admin.get("/users").text
    saved = admin.post("/users/olga", {"display_name": "Olga K", "email": "olga@example.org"})
    assert saved.headers["location"] == "/users/olga?notice=saved"
    assert _user(engine, "olga").display_name == "Olga K"  # type: ignore[union-attr]

    assert other_site.login("olga", password_of("olga")).status_code == 303
    assert other_site.get("/orgs").status_code == 200
    disabled = admin.post("/users/olga/disable", {})
    assert disabled.headers["location"] == "/users/olga?notice=user-disabled"
    assert other_site.get("/orgs").status_code == 303  # the live session ended at once
    refused = other_site.login("olga", password_of("olga"))
    assert "This account is disabled" in refused.text
    assert "disabled" in admin.get("/users/olga").text

    assert admin.post("/users/olga/enable", {}).status_code == 303
    assert other_site.login("olga", password_of("olga")).status_code == 303

    assert "Delete user olga?" in admin.get("/users/olga/delete").text
    deleted = admin.post("/users/olga/delete", {})
    assert deleted.headers["location"] == "/users?notice=user-deleted"
    assert _user(engine, "olga") is None
    with Session(engine) as session:
        logins = session.exec(select(AuditEntry).where(AuditEntry.action == "session.login"))
        assert "olga" in {entry.actor_name for entry in logins}  # kept as recorded


def test_an_admin_cannot_disable_themselves_and_is_told_why(admin: Site, engine: Engine) -> None:
    page = admin.get("/users/admin").text
    assert "/users/admin/disable" not in page  # no button for yourself
    refused = admin.post("/users/admin/disable", {})
    assert refused.status_code == 403
    assert "cannot disable your own account" in refused.text
    assert _user(engine, "admin").is_active  # type: ignore[union-attr]


def test_a_reset_shows_a_one_time_password_that_must_be_replaced(
    admin: Site, other_site: Site, engine: Engine, olga: str
) -> None:
    shown = admin.post("/users/olga/password-reset", {"password": ""})
    assert shown.status_code == 200 and "only time it is shown" in shown.text
    one_time = re.search(r'id="one-time-password" class="mono" value="([^"]+)"', shown.text)
    assert one_time is not None
    other_site.login("olga", one_time.group(1))
    assert other_site.get("/orgs").headers["location"] == "/account?notice=password-must-change"
    page = other_site.get("/account?notice=password-must-change").text
    assert "works once" in page
    wrong = other_site.post(
        "/account/password",
        {
            "current_password": "not it",
            "new_password": "olga-own-password",
            "confirm_password": "olga-own-password",
        },
    )
    assert wrong.status_code == 422 and field_errors(wrong.text) == {"current_password": "is wrong"}
    done = other_site.post(
        "/account/password",
        {
            "current_password": one_time.group(1),
            "new_password": "olga-own-password",
            "confirm_password": "olga-own-password",
        },
    )
    assert done.headers["location"] == "/account?notice=password-changed"
    assert other_site.get("/orgs").status_code == 200
    assert not _user(engine, "olga").password_must_change  # type: ignore[union-attr]


def test_new_passwords_that_differ_are_refused(admin: Site) -> None:
    refused = admin.post(
        "/account/password",
        {
            "current_password": "correct horse battery staple",
            "new_password": "one-new-password",
            "confirm_password": "another-new-password",
        },
    )
    assert refused.status_code == 422
    assert field_errors(refused.text) == {"confirm_password": "does not match"}


def test_a_user_edits_their_own_names_but_not_their_admin_flag(
    other_site: Site, engine: Engine, olga: str
) -> None:
    other_site.login("olga", password_of("olga"))
    saved = other_site.post("/account", {"display_name": "Olga", "email": "o@example.org"})
    assert saved.headers["location"] == "/account?notice=saved"
    assert _user(engine, "olga").email == "o@example.org"  # type: ignore[union-attr]
    assert other_site.get("/users/olga").status_code == 403
    assert other_site.post("/users/olga", {"is_admin": "on"}).status_code == 403
    assert not _user(engine, "olga").is_admin  # type: ignore[union-attr]


def test_an_admin_issues_a_node_token_shown_once(admin: Site) -> None:
    page = admin.get("/tokens").text
    assert "Node-level actions (node token)" in page
    issued = admin.post(
        "/tokens",
        {"name": "automation", "scope": "node", "organisation": "", "role": "viewer"},
    )
    assert issued.status_code == 200, issued.text
    assert "for node-level actions" in issued.text
    token = re.search(r'id="new-token" class="mono" value="([^"]+)"', issued.text)
    assert token is not None
    me = admin.client.get("/api/v1/me", headers={"authorization": f"Bearer {token.group(1)}"})
    admin.client.cookies.get("infracms_session")
    assert me.json()["node_scope"] is True
    assert "node-level actions" in admin.get("/tokens").text
