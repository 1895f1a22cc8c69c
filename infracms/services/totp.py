"""Two-factor sign-in with TOTP (RFC 6238) for local accounts, and its recovery codes.

The secret is sealed with the node's keyring, bound to its user (as credentials are), and
signs in only once a first code confirmed the enrolment. A code is accepted for the time
step it was made in or one step either side (``valid_window=1``: a clock up to 30 s off),
and never twice: the last step accepted is kept and a code at or before it is refused.
Ten single-use recovery codes are shown once and stored as Argon2 hashes, like passwords.

Signing in with TOTP takes two steps: a right password gives a *login challenge*, not a
session; only the code (or a recovery code) turns the challenge into a web session
(services/auth.open_session). A challenge is no credential anywhere else, wrong codes count
towards the login rate limit, and a challenge dies after `MAX_FAILURES` or `CHALLENGE_TTL`.
Every enrolment, disable, reset and recovery-code use is an audit entry; no secret or code
ever is.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import segno
from sqlmodel import Session, col, delete, select

from infracms.config import Settings
from infracms.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from infracms.keys import Keyring
from infracms.models.base import utcnow
from infracms.models.user import LoginAttempt, LoginChallenge, RecoveryCode, User, UserPublic
from infracms.services import audit
from infracms.services.auth import check_rate, end_sessions, token_hash, user_actor
from infracms.services.authz import Action, authorize
from infracms.services.common import commit
from infracms.services.context import Actor
from infracms.services.passwords import hash_password, verify_password
from infracms.services.users import user_by_name

STEP_SECONDS = 30
VALID_WINDOW = 1  # steps accepted either side of the current one
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
CHALLENGE_TTL = timedelta(minutes=5)
MAX_FAILURES = 5
ISSUER = "infracms"


def sealing_context(user_id: uuid.UUID) -> str:
    """What a user's TOTP secret is sealed for: it opens for that user's row only."""
    return f"user-totp:{user_id}"


def enrolled(user: User) -> bool:
    """Whether the account signs in with a code after its password."""
    return user.totp_enabled_at is not None and user.totp_sealed is not None


def must_enrol(settings: Settings, user: User | UserPublic) -> bool:
    """Whether this account must enrol before anything else
    (``INFRACMS_REQUIRE_TOTP_FOR_ADMINS`` and a node admin without TOTP)."""
    return settings.require_totp_for_admins and user.is_admin and user.totp_enabled_at is None


# --- codes -----------------------------------------------------------------------


def matching_step(secret: str, code: str, *, last_step: int | None, now: datetime) -> int | None:
    """The time step `code` was made for, within the window around `now` and after
    `last_step` (a code already used, or older than one used, is refused), or None."""
    code = code.replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = totp.timecode(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _normal_recovery(code: str) -> str:
    return "".join(char for char in code.lower() if char.isalnum())


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def _replace_recovery_codes(session: Session, settings: Settings, user: User) -> list[str]:
    """Ten fresh codes for `user` (the old ones go), returned once in clear."""
    session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
    for code in codes:
        plain = _normal_recovery(code)
        session.add(
            RecoveryCode(
                user_id=user.id, lookup=plain[:4], code_hash=hash_password(settings, plain)
            )
        )
    return codes


def _use_recovery_code(
    session: Session, settings: Settings, user: User, code: str, now: datetime
) -> bool:
    """Spend one of the user's unused recovery codes, if `code` is one."""
    plain = _normal_recovery(code)
    if len(plain) != 16:
        return False
    rows = session.exec(
        select(RecoveryCode).where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.lookup == plain[:4],
            col(RecoveryCode.used_at).is_(None),
        )
    ).all()
    for row in rows:
        if verify_password(settings, row.code_hash, plain):
            row.used_at = now
            session.add(row)
            return True
    return False


def recovery_codes_left(*, session: Session, user_id: uuid.UUID) -> int:
    """How many recovery codes the user has not used."""
    rows = session.exec(
        select(RecoveryCode.id).where(
            RecoveryCode.user_id == user_id, col(RecoveryCode.used_at).is_(None)
        )
    ).all()
    return len(rows)


@dataclass(frozen=True)
class Proof:
    """How a code proved the second factor: a TOTP step, or a recovery code."""

    step: int | None
    recovery: bool


def _prove(
    session: Session, settings: Settings, keyring: Keyring, user: User, code: str, now: datetime
) -> Proof | None:
    """Check `code` (TOTP or recovery) for an enrolled `user`; spends what it uses."""
    if not enrolled(user) or user.totp_sealed is None:
        return None
    secret = keyring.open(user.totp_sealed, context=sealing_context(user.id))
    step = matching_step(secret, code, last_step=user.totp_last_step, now=now)
    if step is not None:
        user.totp_last_step = step
        session.add(user)
        return Proof(step=step, recovery=False)
    if _use_recovery_code(session, settings, user, code, now):
        return Proof(step=None, recovery=True)
    return None


# --- enrolment -------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    """A secret waiting for its first code: as text, as an otpauth URI, as an SVG QR code."""

    secret: str
    uri: str
    qr_svg: str


def _own(session: Session, actor: Actor, *, lock: bool = False) -> User:
    """The actor's own account; `lock` holds its row (PostgreSQL: FOR UPDATE) so that
    two requests at once cannot both accept one code."""
    user = session.get(User, actor.user_id, with_for_update=lock) if actor.user_id else None
    if actor.kind != "user" or user is None:
        raise AuthenticationFailed("two-factor sign-in is set up by its own user, signed in")
    return user


def _enrolment(settings: Settings, user: User, secret: str) -> Enrolment:
    uri = pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=f"{user.username}@{settings.node_name}", issuer_name=ISSUER
    )
    svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff")
    return Enrolment(secret=secret, uri=uri, qr_svg=svg)


def start_enrolment(
    *, session: Session, actor: Actor, settings: Settings, keyring: Keyring
) -> Enrolment:
    """Make a new secret for the signed-in user, pending until `confirm_enrolment`."""
    user = _own(session, actor)
    if enrolled(user):
        raise Conflict("two-factor sign-in is already on: turn it off first")
    secret = pyotp.random_base32()
    user.totp_sealed = keyring.seal(secret, context=sealing_context(user.id))
    user.totp_enabled_at, user.totp_last_step = None, None
    session.add(user)
    audit.record(session, actor=actor, action="totp.enrol_start", subject=f"user:{user.username}")
    commit(session)
    return _enrolment(settings, user, secret)


def pending_enrolment(
    *, session: Session, actor: Actor, settings: Settings, keyring: Keyring
) -> Enrolment | None:
    """The signed-in user's secret waiting for its first code, if any."""
    user = _own(session, actor)
    if enrolled(user) or user.totp_sealed is None:
        return None
    secret = keyring.open(user.totp_sealed, context=sealing_context(user.id))
    return _enrolment(settings, user, secret)


def confirm_enrolment(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    keyring: Keyring,
    code: str,
    now: datetime | None = None,
) -> list[str]:
    """Turn TOTP on with a first code; returns the ten recovery codes, shown once."""
    user = _own(session, actor, lock=True)
    if enrolled(user) or user.totp_sealed is None:
        raise Conflict("no two-factor set-up is waiting: start one first")
    secret = keyring.open(user.totp_sealed, context=sealing_context(user.id))
    step = matching_step(secret, code, last_step=None, now=now or utcnow())
    if step is None:
        raise InvalidInput(
            "the code is wrong: check your device's clock", errors={"code": "is wrong"}
        )
    user.totp_enabled_at, user.totp_last_step = utcnow(), step
    session.add(user)
    codes = _replace_recovery_codes(session, settings, user)
    audit.record(
        session,
        actor=actor,
        action="totp.enrol",
        subject=f"user:{user.username}",
        payload={"recovery_codes": len(codes)},
    )
    commit(session)
    return codes


def _proven_own(
    session: Session, actor: Actor, settings: Settings, keyring: Keyring, code: str
) -> tuple[User, Proof]:
    """The signed-in user, enrolled, with `code` checked (failures count as logins do)."""
    user = _own(session, actor, lock=True)
    if not enrolled(user):
        raise Conflict("two-factor sign-in is not on")
    client = f"totp:{user.username}"[:64]
    check_rate(session, settings=settings, username=user.username, client=client)
    proof = _prove(session, settings, keyring, user, code, utcnow())
    if proof is None:
        session.add(
            LoginAttempt(username=user.username, client=client, succeeded=False, at=utcnow())
        )
        session.commit()
        raise InvalidInput("the code is wrong: nothing was changed", errors={"code": "is wrong"})
    if proof.recovery:
        _record_recovery_use(session, actor, user)
    return user, proof


def _record_recovery_use(session: Session, actor: Actor, user: User) -> None:
    audit.record(
        session,
        actor=actor,
        action="totp.recovery_code_use",
        subject=f"user:{user.username}",
        payload={"left": recovery_codes_left(session=session, user_id=user.id)},
    )


def _clear(session: Session, user: User) -> None:
    user.totp_sealed, user.totp_enabled_at, user.totp_last_step = None, None, None
    session.add(user)
    session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
    session.exec(delete(LoginChallenge).where(col(LoginChallenge.user_id) == user.id))


def disable(
    *, session: Session, actor: Actor, settings: Settings, keyring: Keyring, code: str
) -> None:
    """The signed-in user turns TOTP off, proving it with a code or a recovery code."""
    user, _ = _proven_own(session, actor, settings, keyring, code)
    _clear(session, user)
    audit.record(session, actor=actor, action="totp.disable", subject=f"user:{user.username}")
    commit(session)


def new_recovery_codes(
    *, session: Session, actor: Actor, settings: Settings, keyring: Keyring, code: str
) -> list[str]:
    """The signed-in user replaces their recovery codes (proving it with a code)."""
    user, _ = _proven_own(session, actor, settings, keyring, code)
    codes = _replace_recovery_codes(session, settings, user)
    audit.record(
        session,
        actor=actor,
        action="totp.recovery_codes_reset",
        subject=f"user:{user.username}",
        payload={"recovery_codes": len(codes)},
    )
    commit(session)
    return codes


def reset_for(*, session: Session, actor: Actor, username: str) -> None:
    """A node admin turns another user's TOTP off (a lost device); their sessions end."""
    authorize(actor, Action.user_manage, None)
    user = user_by_name(session, username=username)
    if actor.user_id == user.id:
        raise Conflict("turn your own two-factor sign-in off on your account page, with a code")
    if not enrolled(user) and user.totp_sealed is None:
        raise NotFound(f"{username} has no two-factor sign-in to reset")
    _clear(session, user)
    ended = end_sessions(session, user_id=user.id)
    audit.record(
        session,
        actor=actor,
        action="totp.reset",
        subject=f"user:{user.username}",
        payload={"sessions_ended": ended},
    )
    commit(session)


# --- the sign-in's second step ---------------------------------------------------


def begin_challenge(*, session: Session, user: User, client: str) -> str:
    """A right password for an enrolled account: the raw challenge token (a cookie),
    which only `answer_challenge` accepts."""
    raw = secrets.token_urlsafe(32)
    session.exec(delete(LoginChallenge).where(col(LoginChallenge.expires_at) <= utcnow()))
    session.add(
        LoginChallenge(
            token_hash=token_hash(raw),
            user_id=user.id,
            client=client[:64],
            expires_at=utcnow() + CHALLENGE_TTL,
        )
    )
    session.commit()
    return raw


def _challenge(session: Session, raw: str) -> LoginChallenge | None:
    row = session.exec(
        select(LoginChallenge).where(LoginChallenge.token_hash == token_hash(raw))
    ).first()
    if row is None or row.expires_at <= utcnow():
        return None
    return row


def challenge_open(*, session: Session, raw: str) -> bool:
    """Whether the challenge token is one waiting for its code."""
    return bool(raw) and _challenge(session, raw) is not None


def answer_challenge(
    *,
    session: Session,
    settings: Settings,
    keyring: Keyring,
    raw: str,
    code: str,
    now: datetime | None = None,
) -> User:
    """The user whose challenge `code` answers (the challenge ends; the caller opens the
    session in the same transaction), or AuthenticationFailed (the failure counts)."""
    challenge = _challenge(session, raw) if raw else None
    user = session.get(User, challenge.user_id, with_for_update=True) if challenge else None
    if challenge is None or user is None:
        raise AuthenticationFailed("the sign-in has expired: enter your password again")
    check_rate(session, settings=settings, username=user.username, client=challenge.client)
    proof = _prove(session, settings, keyring, user, code, now or utcnow())
    if proof is None:
        _fail(session, challenge, user)
        raise AuthenticationFailed("wrong code")
    session.delete(challenge)
    if proof.recovery:
        _record_recovery_use(session, user_actor(user, {}), user)
    return user


def _fail(session: Session, challenge: LoginChallenge, user: User) -> None:
    challenge.failures += 1
    if challenge.failures >= MAX_FAILURES:
        session.delete(challenge)
    else:
        session.add(challenge)
    session.add(
        LoginAttempt(username=user.username, client=challenge.client, succeeded=False, at=utcnow())
    )
    session.commit()
