"""TOTP: enrolment, a real clock-skew window, replay, recovery codes, disable and reset,
each audited; the secret sealed for its own user."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import (
    AuthenticationFailed,
    InvalidInput,
    PermissionDenied,
    RateLimited,
    SecretError,
)
from infracms.keys import Keyring, load_keyring
from infracms.models.audit import AuditEntry
from infracms.models.user import LoginChallenge, RecoveryCode, User
from infracms.services import auth, setup, totp, users
from infracms.services.context import Actor
from tests.helpers import make_user


@dataclass
class Person:
    engine: Engine
    settings: Settings
    keyring: Keyring
    username: str

    def actor(self) -> Actor:
        with Session(self.engine) as session:
            return auth.user_actor(users.user_by_name(session, username=self.username), {})

    def user(self) -> User:
        with Session(self.engine) as session:
            return users.user_by_name(session, username=self.username)

    def sign_in(self, code: str) -> User:
        """The second step of a sign-in, through a challenge of its own."""
        with session_scope(self.engine, write=True) as session:
            raw = totp.begin_challenge(session=session, user=self.user(), client="test")
        with session_scope(self.engine, write=True) as session:
            user = totp.answer_challenge(
                session=session, settings=self.settings, keyring=self.keyring, raw=raw, code=code
            )
            session.commit()
            return user


@pytest.fixture
def tina(engine: Engine, settings: Settings) -> Iterator[Person]:
    make_user(engine, settings, "tina")
    yield Person(engine, settings, load_keyring(settings), "tina")


def enrol(person: Person, *, at: datetime | None = None) -> tuple[str, list[str]]:
    """Enrol `person`, confirming with the code of `at` (5 minutes ago by default, so
    that codes of the last minute are all still new); the secret and recovery codes."""
    at = at or datetime.now(UTC) - timedelta(minutes=5)
    with session_scope(person.engine, write=True) as session:
        pending = totp.start_enrolment(
            session=session, actor=person.actor(), settings=person.settings, keyring=person.keyring
        )
    code = pyotp.TOTP(pending.secret).at(at)
    with session_scope(person.engine, write=True) as session:
        codes = totp.confirm_enrolment(
            session=session,
            actor=person.actor(),
            settings=person.settings,
            keyring=person.keyring,
            code=code,
            now=at,
        )
    return pending.secret, codes


def actions(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [e.action for e in session.exec(select(AuditEntry)).all()]


def test_enrolment_needs_a_first_code_and_is_audited_without_the_secret(tina: Person) -> None:
    with session_scope(tina.engine, write=True) as session:
        pending = totp.start_enrolment(
            session=session, actor=tina.actor(), settings=tina.settings, keyring=tina.keyring
        )
    assert pending.qr_svg.startswith("<svg") and "otpauth://totp/" in pending.uri
    assert not totp.enrolled(tina.user())  # pending: the password alone still signs in
    wrong = f"{(int(pyotp.TOTP(pending.secret).now()) + 1) % 10**6:06d}"
    with session_scope(tina.engine, write=True) as session, pytest.raises(InvalidInput):
        totp.confirm_enrolment(
            session=session,
            actor=tina.actor(),
            settings=tina.settings,
            keyring=tina.keyring,
            code=wrong,
        )
    assert not totp.enrolled(tina.user())
    with session_scope(tina.engine, write=True) as session:
        codes = totp.confirm_enrolment(
            session=session,
            actor=tina.actor(),
            settings=tina.settings,
            keyring=tina.keyring,
            code=pyotp.TOTP(pending.secret).now(),
        )
    assert len(codes) == len(set(codes)) == 10
    user = tina.user()
    assert totp.enrolled(user) and user.totp_sealed and pending.secret not in user.totp_sealed
    assert actions(tina.engine)[-2:] == ["totp.enrol_start", "totp.enrol"]
    with Session(tina.engine) as session:
        stored = " ".join(r.code_hash for r in session.exec(select(RecoveryCode)).all())
        payloads = " ".join(str(e.payload) for e in session.exec(select(AuditEntry)).all())
    assert stored.count("$argon2id$") == 10
    for secret in (pending.secret, *codes, codes[0].replace("-", "")):
        assert secret not in stored and secret not in payloads


def test_the_sealed_secret_opens_for_its_own_user_only(tina: Person, engine: Engine) -> None:
    enrol(tina)
    sealed = tina.user().totp_sealed
    assert sealed is not None
    with Session(engine) as session:
        admin = users.user_by_name(session, username="admin")
    with pytest.raises(SecretError):
        tina.keyring.open(sealed, context=totp.sealing_context(admin.id))


def test_a_clock_skew_of_one_step_either_way_is_accepted_three_steps_is_not(
    tina: Person,
) -> None:
    secret, _ = enrol(tina)
    clock = pyotp.TOTP(secret)
    now = time.time()
    for far in (now + 90, now - 90):
        with pytest.raises(AuthenticationFailed, match="wrong code"):
            tina.sign_in(clock.at(far))
    assert tina.sign_in(clock.at(now - 30)).username == "tina"  # a device 30 s slow
    assert tina.sign_in(clock.at(now + 30)).username == "tina"  # a device 30 s fast
    at = datetime.now(UTC)
    for seconds in (-90, 90):
        code = clock.at(at + timedelta(seconds=seconds))
        assert totp.matching_step(secret, code, last_step=None, now=at) is None


def test_a_code_is_accepted_once(tina: Person) -> None:
    secret, _ = enrol(tina)
    code = pyotp.TOTP(secret).now()
    tina.sign_in(code)
    with pytest.raises(AuthenticationFailed, match="wrong code"):
        tina.sign_in(code)  # replayed within its window


def test_a_recovery_code_signs_in_once_and_its_use_is_audited(tina: Person) -> None:
    _, codes = enrol(tina)
    assert tina.sign_in(codes[3].upper()).username == "tina"  # case and dashes do not matter
    assert actions(tina.engine)[-1] == "totp.recovery_code_use"
    with pytest.raises(AuthenticationFailed):
        tina.sign_in(codes[3])
    with Session(tina.engine) as session:
        assert totp.recovery_codes_left(session=session, user_id=tina.user().id) == 9


def test_wrong_codes_end_the_challenge_and_count_as_failed_logins(tina: Person) -> None:
    secret, _ = enrol(tina)
    with session_scope(tina.engine, write=True) as session:
        raw = totp.begin_challenge(session=session, user=tina.user(), client="attacker")
    refusals = []
    for guess in range(totp.MAX_FAILURES + 1):
        with session_scope(tina.engine, write=True) as session:
            try:
                totp.answer_challenge(
                    session=session,
                    settings=tina.settings,
                    keyring=tina.keyring,
                    raw=raw,
                    code=f"{guess:06d}",
                )
            except AuthenticationFailed as exc:
                refusals.append(type(exc).__name__ + ": " + exc.detail)
    assert refusals[-1] in {
        "AuthenticationFailed: the sign-in has expired: enter your password again",
        f"RateLimited: too many failed logins; try again in {tina.settings.login_window_seconds} seconds",
    }
    with Session(tina.engine) as session:
        assert session.exec(select(LoginChallenge)).all() == []
    with session_scope(tina.engine, write=True) as session, pytest.raises(RateLimited):
        auth.check_rate(session, settings=tina.settings, username="tina", client="elsewhere")
    assert pyotp.TOTP(secret).now()  # the right code was never tried


def test_turning_off_needs_a_code_and_is_audited(tina: Person) -> None:
    secret, _ = enrol(tina)
    with session_scope(tina.engine, write=True) as session, pytest.raises(InvalidInput):
        totp.disable(
            session=session,
            actor=tina.actor(),
            settings=tina.settings,
            keyring=tina.keyring,
            code="000000" if pyotp.TOTP(secret).now() != "000000" else "111111",
        )
    assert totp.enrolled(tina.user())
    with session_scope(tina.engine, write=True) as session:
        totp.disable(
            session=session,
            actor=tina.actor(),
            settings=tina.settings,
            keyring=tina.keyring,
            code=pyotp.TOTP(secret).now(),
        )
    user = tina.user()
    assert not totp.enrolled(user) and user.totp_sealed is None
    assert actions(tina.engine)[-1] == "totp.disable"


def test_new_recovery_codes_replace_the_old_ones(tina: Person) -> None:
    secret, old = enrol(tina)
    with session_scope(tina.engine, write=True) as session:
        new = totp.new_recovery_codes(
            session=session,
            actor=tina.actor(),
            settings=tina.settings,
            keyring=tina.keyring,
            code=pyotp.TOTP(secret).now(),
        )
    assert set(new).isdisjoint(old)
    assert actions(tina.engine)[-1] == "totp.recovery_codes_reset"
    with pytest.raises(AuthenticationFailed):
        tina.sign_in(old[0])
    tina.sign_in(new[0])


def test_a_node_admin_resets_another_users_totp_a_member_cannot(
    tina: Person, engine: Engine, settings: Settings
) -> None:
    enrol(tina)
    make_user(engine, settings, "mallory")
    mallory = Person(engine, settings, tina.keyring, "mallory")
    with session_scope(engine, write=True) as session, pytest.raises(PermissionDenied):
        totp.reset_for(session=session, actor=mallory.actor(), username="tina")
    assert totp.enrolled(tina.user())
    with session_scope(engine, write=True) as session:
        admin = auth.user_actor(users.user_by_name(session, username="admin"), {})
    with session_scope(engine, write=True) as session:
        totp.reset_for(session=session, actor=admin, username="tina")
    assert not totp.enrolled(tina.user())
    with Session(engine) as session:
        last = session.exec(select(AuditEntry).order_by(col(AuditEntry.index).desc())).first()
    assert last is not None and (last.action, last.subject) == ("totp.reset", "user:tina")


def test_rotating_the_keyring_reseals_totp_secrets(tina: Person) -> None:
    secret, _ = enrol(tina)
    setup.rotate_secrets(tina.settings, tina.engine)
    rotated = load_keyring(tina.settings)
    assert list(rotated.keys) != list(tina.keyring.keys)
    user = tina.user()
    assert user.totp_sealed is not None
    assert rotated.open(user.totp_sealed, context=totp.sealing_context(user.id)) == secret


def test_must_enrol_only_admins_and_only_when_the_setting_asks(
    tina: Person, settings: Settings
) -> None:
    required = settings.model_copy(update={"require_totp_for_admins": True})
    with Session(tina.engine) as session:
        admin = users.user_by_name(session, username="admin")
    assert totp.must_enrol(required, admin)
    assert not totp.must_enrol(settings, admin)
    assert not totp.must_enrol(required, tina.user())
