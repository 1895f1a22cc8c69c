"""A session opened with a one-time password (an admin's reset) reaches nothing of the
API but the password change, as the pages open only the password page; the person's own
API tokens, separate credentials, keep working."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import Role
from infracms.services import auth, organisations, user_passwords
from tests.helpers import ADMIN, make_user, password_of, sign_in
from tests.web.conftest import Site

pytestmark = pytest.mark.security


@pytest.fixture
def olga(admin: Site, engine: Engine, settings: Settings) -> str:
    """olga, a viewer of clinic."""
    with session_scope(engine, write=True) as session:
        organisations.create_organisation(session=session, actor=ADMIN, data={"name": "clinic"})
    make_user(engine, settings, "olga", clinic=Role.viewer)
    return "olga"


def one_time_session(engine: Engine, settings: Settings, client: TestClient) -> str:
    """Reset olga's password (as a node admin) and sign her in with it: the password."""
    with session_scope(engine, write=True) as session:
        issued = user_passwords.reset_password(
            session=session, actor=ADMIN, settings=settings, username="olga"
        )
    sign_in(client, engine, settings, "olga", issued.password)
    return issued.password


def test_a_one_time_session_may_only_change_its_password(
    olga: str, other_site: Site, engine: Engine, settings: Settings
) -> None:
    client = other_site.client
    one_time = one_time_session(engine, settings, client)
    for method, url in (
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/orgs"),
        ("GET", "/api/v1/orgs/clinic/hosts"),
        ("POST", "/api/v1/tokens"),  # a token made now would outlive the reset
    ):
        body = {"name": "escape", "organisation": "clinic", "role": "viewer"}
        refused = client.request(method, url, json=body if method == "POST" else None)
        assert refused.status_code == 403, (url, refused.text)
        problem = refused.json()
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "one-time password" in problem["detail"]
        assert "/api/v1/me/password" in problem["detail"]
    changed = client.post(
        "/api/v1/me/password",
        json={"current_password": one_time, "new_password": "olga-chose-this-one"},
    )
    assert changed.status_code == 204, changed.text
    assert client.get("/api/v1/me").json()["name"] == "olga"


def test_a_reset_leaves_the_persons_own_tokens_working(
    olga: str, other_site: Site, engine: Engine, settings: Settings
) -> None:
    with session_scope(engine, write=True) as session:
        info = auth.login(
            session=session,
            settings=settings,
            username="olga",
            password=password_of("olga"),
            client="test",
        )
    with session_scope(engine, write=True) as session:
        actor = auth.session_info(session=session, raw_token=info.token)
        assert actor is not None
        issued = auth.issue_token(
            session=session,
            actor=actor.actor,
            data={"name": "backup script", "organisation": "clinic", "role": "viewer"},
        )
    one_time_session(engine, settings, other_site.client)
    bearer = {"authorization": f"Bearer {issued.token}"}  # it wins over the session cookie
    seen = other_site.client.get("/api/v1/orgs/clinic/hosts", headers=bearer)
    assert seen.status_code == 200, seen.text
    assert other_site.client.get("/api/v1/orgs/clinic/hosts").status_code == 403
