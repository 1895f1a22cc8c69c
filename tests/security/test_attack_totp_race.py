"""One code, two sign-ins at once on PostgreSQL: the second waits for the first's row
lock and then finds the code used. Without the lock both would read the old last step
and both would be accepted."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.errors import AuthenticationFailed
from infracms.keys import load_keyring
from infracms.services import auth, totp, users
from infracms.services.setup import initialise
from tests.conftest import make_settings

pytestmark = [pytest.mark.postgres, pytest.mark.security]


@pytest.fixture
def pg(tmp_path: Path, fresh_postgres_database: str) -> Iterator[tuple[Settings, Engine]]:
    settings = make_settings(tmp_path / "var", database_url=fresh_postgres_database)
    engine = make_engine(settings)
    initialise(settings, engine)
    yield settings, engine
    engine.dispose()


def test_a_code_sent_twice_at_once_signs_in_once(pg: tuple[Settings, Engine]) -> None:
    settings, engine = pg
    keyring = load_keyring(settings)
    with session_scope(engine, write=True) as session:
        admin = users.user_by_name(session, username="admin")
        actor = auth.user_actor(admin, {})
        pending = totp.start_enrolment(
            session=session, actor=actor, settings=settings, keyring=keyring
        )
    clock = pyotp.TOTP(pending.secret)
    with session_scope(engine, write=True) as session:
        earlier = clock.at(time.time() - 30)  # enrolled a step ago: the current code is new
        totp.confirm_enrolment(
            session=session, actor=actor, settings=settings, keyring=keyring, code=earlier
        )
    challenges = []
    for _ in range(2):
        with session_scope(engine, write=True) as session:
            user = users.user_by_name(session, username="admin")
            challenges.append(totp.begin_challenge(session=session, user=user, client="race"))
    code = clock.now()
    second: list[str] = []

    def answer_second() -> None:
        with session_scope(engine, write=True) as session:
            try:
                totp.answer_challenge(
                    session=session,
                    settings=settings,
                    keyring=keyring,
                    raw=challenges[1],
                    code=code,
                )
                session.commit()
                second.append("accepted")
            except AuthenticationFailed as exc:
                second.append(exc.detail)

    with session_scope(engine, write=True) as session:
        totp.answer_challenge(
            session=session, settings=settings, keyring=keyring, raw=challenges[0], code=code
        )
        racer = threading.Thread(target=answer_second)
        racer.start()
        racer.join(1.0)  # it waits on the first's row lock, or has read the old step
        session.commit()
    racer.join()
    assert second == ["wrong code"]
