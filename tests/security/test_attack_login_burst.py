"""An attacker guessing a password with many sign-ins at once.

The password is checked outside the write lock (hashing is slow on purpose), so guesses
sent together are all checked before any is recorded. The rate is checked again when
each is recorded, under the write lock: past the limit, even the right password gets
RateLimited and no session, so a burst learns nothing a slow attacker could not.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import col, func, select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import AuthenticationFailed, RateLimited
from infracms.models.user import LoginAttempt, WebSession
from infracms.services import auth
from tests.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.security


def test_guesses_sent_at_once_cannot_pass_the_limit(engine: Engine, settings: Settings) -> None:
    guesses = [f"guess-{i}" for i in range(settings.login_attempts + 3)] + [ADMIN_PASSWORD]
    checked = []
    for guess in guesses:  # every guess in flight: checked, none recorded yet
        with session_scope(engine) as reader:
            user = auth.check_password(
                session=reader, settings=settings, username="admin", password=guess, client="x"
            )
        checked.append(user)
    assert checked[-1] is not None  # the right password was among them
    answers = []
    for user in checked:
        with session_scope(engine, write=True) as session:
            try:
                auth.open_session(
                    session=session, settings=settings, user=user, username="admin", client="x"
                )
                answers.append("session")
            except RateLimited:
                answers.append("rate limited")
            except AuthenticationFailed:
                answers.append("wrong")
    assert answers == ["wrong"] * settings.login_attempts + ["rate limited"] * 4
    with session_scope(engine) as session:
        sessions = session.exec(select(func.count()).select_from(WebSession)).one()
        failures = session.exec(
            select(func.count())
            .select_from(LoginAttempt)
            .where(col(LoginAttempt.succeeded).is_(False))
        ).one()
    assert (sessions, failures) == (0, settings.login_attempts)
