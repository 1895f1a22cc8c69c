"""/metrics is for node administrators: no caller, a viewer's token, an organisation
owner's token and a viewer's web session are all refused; a node token reads it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.services import auth, users
from tests.helpers import make_org, make_user, password_of, sign_in

pytestmark = pytest.mark.security


def issued(engine: Engine, username: str, data: dict[str, str]) -> str:
    with session_scope(engine, write=True) as session:
        user = users.user_by_name(session, username=username)
        actor = auth.user_actor(user, users.roles_of(session, user_id=user.id))
        return auth.issue_token(session=session, actor=actor, data=data).token


def test_only_a_node_admin_reads_the_metrics(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    make_org(engine, "acme")
    make_user(engine, settings, "vera", acme="viewer")
    make_user(engine, settings, "olga", acme="owner")
    viewer = issued(engine, "vera", {"name": "v", "role": "viewer", "organisation": "acme"})
    owner = issued(engine, "olga", {"name": "o", "role": "owner", "organisation": "acme"})
    node = issued(engine, "admin", {"name": "scrape", "scope": "node"})

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"authorization": "Bearer icms_nope"}).status_code == 401
    for token in (viewer, owner):
        response = client.get("/metrics", headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 403, response.text
        assert "infracms_runs" not in response.text
    sign_in(client, engine, settings, "vera", password_of("vera"))
    assert client.get("/metrics").status_code == 403
    client.cookies.clear()

    response = client.get("/metrics", headers={"authorization": f"Bearer {node}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "infracms_queue_depth 0.0" in response.text
