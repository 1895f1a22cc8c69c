"""Shared parts of the people attacks: a node with two organisations, an owner of each,
a node admin, API tokens and sessions, and what an attack must leave unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import ApiToken, User, WebSession
from infracms.models.user import Role
from infracms.services import auth, users
from infracms.services.common import organisation_by_name
from tests.helpers import ADMIN, audit_size, make_org, make_user, password_of
from tests.support.apps import AppPool

API = "/api/v1"


@dataclass
class People:
    """The node's app and the raw credentials of its people."""

    engine: Engine
    settings: Settings
    client: TestClient

    def bearer(self, token: str) -> dict[str, str]:
        """The header that presents an API token."""
        return {"authorization": f"Bearer {token}"}


def issue(engine: Engine, username: str, **data: Any) -> str:
    """An API token of `username`, issued as they would (their own actor)."""
    with session_scope(engine, write=True) as session:
        user = users.user_by_name(session, username=username)
        roles = users.roles_of(session, user_id=user.id)
        actor = auth.user_actor(user, roles)
        return auth.issue_token(session=session, actor=actor, data={"name": "t", **data}).token


def login(engine: Engine, settings: Settings, username: str, password: str | None = None) -> Any:
    """A live web session of `username` (its raw cookie and CSRF token)."""
    with session_scope(engine, write=True) as session:
        return auth.login(
            session=session,
            settings=settings,
            username=username,
            password=password or password_of(username),
            client="test",
        )


def build(engine: Engine, settings: Settings) -> None:
    """clinic and bakery, an owner of each (olga, boris), a second node admin (root2)."""
    make_org(engine, "clinic")
    make_org(engine, "bakery")
    make_user(engine, settings, "olga", clinic=Role.owner)
    make_user(engine, settings, "boris", bakery=Role.owner)
    make_user(engine, settings, "root2")
    with session_scope(engine, write=True) as session:
        root2 = users.user_by_name(session, username="root2")
        root2.is_admin = True
        session.add(root2)
        session.commit()


def state(engine: Engine) -> tuple[Any, ...]:
    """What the attacks must leave as it was: every account, session, token, the log."""
    with Session(engine) as session:
        accounts = sorted(
            (u.username, u.password_hash, u.is_active, u.is_admin, u.display_name, u.email)
            for u in session.exec(select(User)).all()
        )
        sessions = sorted(str(s.id) for s in session.exec(select(WebSession)).all())
        tokens = sorted((str(t.id), t.revoked_at) for t in session.exec(select(ApiToken)).all())
    return accounts, sessions, tokens, audit_size(engine)


def org_id(engine: Engine, name: str) -> Any:
    with session_scope(engine) as session:
        return organisation_by_name(session, name=name).id


@pytest.fixture
def people(settings: Settings, engine: Engine, app_pool: AppPool) -> Iterator[People]:
    """The node, built, with a TestClient (not signed in)."""
    build(engine, settings)
    app = app_pool.app(settings)
    with TestClient(app) as client:
        yield People(engine=engine, settings=settings, client=client)
    app.state.engine.dispose()


__all__ = ["ADMIN", "API", "People", "issue", "login", "org_id", "people", "state"]
