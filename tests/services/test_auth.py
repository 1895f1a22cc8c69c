"""Signing in: Argon2 hashes, sessions, logout, and the login rate limit."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import AuthenticationFailed, RateLimited
from infracms.models import User
from infracms.services import auth
from tests.conftest import ADMIN_PASSWORD


def login(
    engine: Engine,
    settings: Settings,
    password: str,
    client: str = "10.0.0.1",
    username: str = "admin",
) -> auth.LoginResult:
    with session_scope(engine, write=True) as session:
        return auth.login(
            session=session, settings=settings, username=username, password=password, client=client
        )


def test_passwords_are_stored_as_argon2id(engine: Engine) -> None:
    with Session(engine) as session:
        user = session.exec(select(User)).one()
    assert user.password_hash.startswith("$argon2id$")
    assert ADMIN_PASSWORD not in user.password_hash


def test_login_then_logout(engine: Engine, settings: Settings) -> None:
    result = login(engine, settings, ADMIN_PASSWORD)
    with session_scope(engine) as session:
        info = auth.session_info(session=session, raw_token=result.token)
    assert info is not None and info.actor.is_admin and info.csrf_token == result.csrf_token
    with session_scope(engine, write=True) as session:
        auth.logout(session=session, raw_token=result.token)
    with session_scope(engine) as session:
        assert auth.session_info(session=session, raw_token=result.token) is None


def test_wrong_password_and_unknown_user_look_alike(engine: Engine, settings: Settings) -> None:
    with pytest.raises(AuthenticationFailed) as wrong:
        login(engine, settings, "nope")
    with pytest.raises(AuthenticationFailed) as unknown:
        login(engine, settings, "nope", username="ghost")
    assert wrong.value.detail == unknown.value.detail


def test_too_many_failures_are_rate_limited(engine: Engine, settings: Settings) -> None:
    for _ in range(settings.login_attempts):
        with pytest.raises(AuthenticationFailed):
            login(engine, settings, "wrong")
    with pytest.raises(RateLimited):
        login(engine, settings, ADMIN_PASSWORD)  # even the right password, for a while
    assert isinstance(RateLimited("x"), AuthenticationFailed)


def test_one_client_guessing_many_users_is_limited(engine: Engine, settings: Settings) -> None:
    for i in range(settings.login_attempts * 4):
        with pytest.raises(AuthenticationFailed):
            login(engine, settings, "wrong", username=f"user{i}", client="203.0.113.9")
    with pytest.raises(RateLimited):
        login(engine, settings, ADMIN_PASSWORD, client="203.0.113.9")
    assert login(engine, settings, ADMIN_PASSWORD, client="198.51.100.1").token
