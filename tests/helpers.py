"""Helpers for tests: acting identities, signed-in API clients, counting rows."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from infracms.db import session_scope
from infracms.models import AuditEntry, Role
from infracms.services import auth, organisations, users
from infracms.services.context import Actor, system_actor

ADMIN = system_actor("test-admin")


def member_actor(organisation_id: uuid.UUID, role: Role, name: str = "member") -> Actor:
    """An actor holding one role in one organisation."""
    return Actor(kind="user", id=name, name=name, roles={organisation_id: role})


def make_org(engine: Engine, name: str) -> uuid.UUID:
    """Create an organisation as the admin; its id."""
    with session_scope(engine, write=True) as session:
        return organisations.create_organisation(
            session=session, actor=ADMIN, data={"name": name}
        ).id


def make_user(engine: Engine, settings: Any, username: str, **memberships: Role) -> None:
    """Create a user with a password equal to its name twice, and roles by org name."""
    with session_scope(engine, write=True) as session:
        users.create_user(
            session=session,
            actor=ADMIN,
            settings=settings,
            data={"username": username, "password": password_of(username)},
        )
        for org, role in memberships.items():
            users.set_membership(
                session=session,
                actor=ADMIN,
                organisation=org,
                data={"username": username, "role": role},
            )


def password_of(username: str) -> str:
    """The test password of a user made by make_user."""
    return f"{username}-{username}-pw"


def sign_in(client: TestClient, engine: Engine, settings: Any, username: str, password: str) -> str:
    """Give `client` a session cookie; the CSRF token to send with unsafe calls."""
    with session_scope(engine, write=True) as session:
        result = auth.login(
            session=session, settings=settings, username=username, password=password, client="test"
        )
    client.cookies.set("infracms_session", result.token)
    client.headers["x-csrf-token"] = result.csrf_token
    return result.csrf_token


def count(engine: Engine, table: Any) -> int:
    """How many rows `table` has."""
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def audit_size(engine: Engine) -> int:
    """How many audit entries there are."""
    return count(engine, AuditEntry)
