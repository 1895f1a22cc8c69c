"""The lifecycle of accounts in the services, on SQLite and PostgreSQL: disable ends
sessions, delete takes memberships, sessions and tokens and leaves the audit entries as
recorded, and the last active node admin stays."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import Conflict
from infracms.models import ApiToken, AuditEntry, Membership, User, WebSession
from infracms.models.user import Role
from infracms.services import auth, user_lifecycle, user_passwords, users
from tests.helpers import ADMIN, count, make_org, make_user, password_of


def _login(engine: Engine, settings: Settings, username: str, password: str) -> str:
    with session_scope(engine, write=True) as session:
        return auth.login(
            session=session, settings=settings, username=username, password=password, client="t"
        ).token


def test_delete_keeps_the_audit_entries_as_recorded(
    any_engine: Engine, any_db_settings: Settings
) -> None:
    engine, settings = any_engine, any_db_settings
    make_org(engine, "clinic")
    make_user(engine, settings, "olga", clinic=Role.owner)
    _login(engine, settings, "olga", password_of("olga"))
    with session_scope(engine, write=True) as session:
        user = users.user_by_name(session, username="olga")
        old_id = str(user.id)
        actor = auth.user_actor(user, users.roles_of(session, user_id=user.id))
        auth.issue_token(
            session=session,
            actor=actor,
            data={"name": "t", "organisation": "clinic", "role": "viewer"},
        )
    with session_scope(engine, write=True) as session:
        user_lifecycle.delete_user(session=session, actor=ADMIN, username="olga")
    for table in (Membership, WebSession, ApiToken):
        assert count(engine, table) == 0, table
    make_user(engine, settings, "olga")  # the name is free again, with a new id
    with Session(engine) as session:
        [login] = session.exec(select(AuditEntry).where(AuditEntry.action == "session.login"))
        new = session.exec(select(User).where(User.username == "olga")).one()
    assert (login.actor_name, login.actor_id) == ("olga", old_id)
    assert str(new.id) != old_id


def test_the_last_active_admin_stays(any_engine: Engine, any_db_settings: Settings) -> None:
    engine, settings = any_engine, any_db_settings
    make_user(engine, settings, "root2")
    with session_scope(engine, write=True) as session:
        user_lifecycle.update_user(
            session=session, actor=ADMIN, username="root2", data={"is_admin": True}
        )
    with session_scope(engine, write=True) as session:
        user_lifecycle.disable_user(session=session, actor=ADMIN, username="admin")
    for attempt in (user_lifecycle.disable_user, user_lifecycle.delete_user):
        with session_scope(engine, write=True) as session, pytest.raises(Conflict):
            attempt(session=session, actor=ADMIN, username="root2")
    with session_scope(engine, write=True) as session, pytest.raises(Conflict):
        user_lifecycle.update_user(
            session=session, actor=ADMIN, username="root2", data={"is_admin": False}
        )
    with session_scope(engine, write=True) as session:
        user_lifecycle.enable_user(session=session, actor=ADMIN, username="admin")
        user_lifecycle.update_user(
            session=session, actor=ADMIN, username="root2", data={"is_admin": False}
        )


def test_a_reset_ends_sessions_and_its_password_works_once_changed(
    any_engine: Engine, any_db_settings: Settings
) -> None:
    engine, settings = any_engine, any_db_settings
    make_user(engine, settings, "olga")
    raw = _login(engine, settings, "olga", password_of("olga"))
    with session_scope(engine, write=True) as session:
        issued = user_passwords.reset_password(
            session=session, actor=ADMIN, settings=settings, username="olga"
        )
    with session_scope(engine) as session:
        assert auth.session_info(session=session, raw_token=raw) is None
    fresh = _login(engine, settings, "olga", issued.password)
    with session_scope(engine) as session:
        info = auth.session_info(session=session, raw_token=fresh)
        assert info is not None and info.user.password_must_change
    with session_scope(engine, write=True) as session:
        user_passwords.change_password(
            session=session,
            actor=info.actor,
            settings=settings,
            data={"current_password": issued.password, "new_password": "olga-chose-this-one"},
            keep_session=fresh,
        )
    with session_scope(engine) as session:
        info = auth.session_info(session=session, raw_token=fresh)
        assert info is not None and not info.user.password_must_change
