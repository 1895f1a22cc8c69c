"""Passwords after an account is made: a person's change, an admin's reset, the node's
recovery (`infracms user reset-password`).

A change needs the current password (failures count towards the login rate limit) and
ends the person's other web sessions. A reset sets a one-time password, given or
generated and shown once, that must be replaced at the next sign-in; it ends every web
session of the account; until it is replaced, its sessions reach nothing but the password
change (pages and API). API tokens are separate credentials: neither touches them.
No password ever reaches the audit log, only that it was changed or reset and by whom.
"""

from __future__ import annotations

import secrets

from sqlmodel import Session

from infracms.config import Settings
from infracms.errors import AuthenticationFailed, InvalidInput
from infracms.models.base import utcnow
from infracms.models.user import LoginAttempt, PasswordChange, PasswordIssued, PasswordReset, User
from infracms.services import audit
from infracms.services.auth import check_rate, end_sessions
from infracms.services.authz import Action, authorize
from infracms.services.common import Fields, commit, parse
from infracms.services.context import Actor
from infracms.services.passwords import hash_password, verify_password
from infracms.services.users import user_by_name


def change_password(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    data: PasswordChange | Fields,
    keep_session: str | None = None,
) -> User:
    """A signed-in person replaces their own password, giving the current one."""
    change = parse(PasswordChange, data)
    user = session.get(User, actor.user_id) if actor.user_id else None
    if actor.kind != "user" or user is None:
        raise AuthenticationFailed("a password is changed by its own user, signed in")
    check_rate(
        session, settings=settings, username=user.username, client=f"password:{user.username}"
    )
    if not verify_password(settings, user.password_hash, change.current_password):
        client = f"password:{user.username}"[:64]
        session.add(
            LoginAttempt(username=user.username, client=client, succeeded=False, at=utcnow())
        )
        session.commit()
        raise InvalidInput(
            "the current password is wrong: nothing was changed",
            errors={"current_password": "is wrong"},
        )
    if change.new_password == change.current_password:
        raise InvalidInput(
            "the new password is the current one", errors={"new_password": "must be new"}
        )
    user.password_hash = hash_password(settings, change.new_password)
    user.password_must_change = False
    session.add(user)
    ended = end_sessions(session, user_id=user.id, keep=keep_session)
    audit.record(
        session,
        actor=actor,
        action="user.password_change",
        subject=f"user:{user.username}",
        payload={"other_sessions_ended": ended},
    )
    commit(session)
    return user


def reset_password(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    username: str,
    data: PasswordReset | Fields | None = None,
) -> PasswordIssued:
    """A node admin (or the node's shell) sets a one-time password, given or generated;
    it is returned once and must be replaced at the next sign-in."""
    authorize(actor, Action.user_manage, None)
    reset = parse(PasswordReset, data or {})
    user = user_by_name(session, username=username)
    password = reset.password or generate_password()
    user.password_hash = hash_password(settings, password)
    user.password_must_change = True
    session.add(user)
    ended = end_sessions(session, user_id=user.id)
    audit.record(
        session,
        actor=actor,
        action="user.password_reset",
        subject=f"user:{user.username}",
        payload={"generated": reset.password is None, "sessions_ended": ended},
    )
    commit(session)
    return PasswordIssued(
        username=user.username, password=password, generated=reset.password is None
    )


def generate_password() -> str:
    """A one-time password: 18 random URL-safe characters (about 108 bits)."""
    return secrets.token_urlsafe(14)[:18]
