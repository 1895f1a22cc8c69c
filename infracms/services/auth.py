"""Signing in: web sessions (with their CSRF token), API tokens, and the login rate limit.

Raw session and API tokens are shown once and stored only as SHA-256 hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_
from sqlmodel import Session, col, func, select

from infracms.config import Settings
from infracms.errors import (
    AuthenticationFailed,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
)
from infracms.models.base import utcnow
from infracms.models.user import (
    ApiToken,
    ApiTokenCreate,
    ApiTokenIssued,
    ApiTokenPublic,
    LoginAttempt,
    Membership,
    Role,
    User,
    WebSession,
)
from infracms.services import audit
from infracms.services.authz import Action, authorize, role_covers
from infracms.services.common import Fields, commit, organisation_by_name, parse
from infracms.services.context import Actor
from infracms.services.passwords import burn_time, verify_password
from infracms.services.users import roles_of

TOKEN_PREFIX = "icms_"


def token_hash(raw: str) -> str:
    """The stored form of a session or API token."""
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class LoginResult:
    """A new web session: the raw cookie value (shown once) and its CSRF token."""

    token: str
    csrf_token: str
    user: User


def login(
    *, session: Session, settings: Settings, username: str, password: str, client: str
) -> LoginResult:
    """Check a password and open a web session, refusing after too many failures."""
    username = username.strip().lower()[:63]
    _check_rate(session, settings, username, client)
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        burn_time(settings)
    ok = (
        user is not None
        and user.is_active
        and verify_password(settings, user.password_hash, password)
    )
    session.add(LoginAttempt(username=username, client=client[:64], succeeded=ok, at=utcnow()))
    if not ok or user is None:
        session.commit()
        raise AuthenticationFailed("wrong user name or password")
    raw, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    web_session = WebSession(
        token_hash=token_hash(raw),
        csrf_token=csrf,
        user_id=user.id,
        expires_at=utcnow() + timedelta(hours=settings.session_hours),
    )
    session.add(web_session)
    audit.record(
        session,
        actor=user_actor(user, {}),
        action="session.login",
        subject=f"user:{user.username}",
        payload={"client": client[:64]},
    )
    commit(session)
    return LoginResult(token=raw, csrf_token=csrf, user=user)


def _check_rate(session: Session, settings: Settings, username: str, client: str) -> None:
    since = utcnow() - timedelta(seconds=settings.login_window_seconds)
    failures = (
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.at >= since, col(LoginAttempt.succeeded).is_(False))
    )
    by_user = session.exec(failures.where(LoginAttempt.username == username)).one()
    by_client = session.exec(failures.where(LoginAttempt.client == client[:64])).one()
    if by_user >= settings.login_attempts or by_client >= settings.login_attempts * 4:
        raise RateLimited(
            f"too many failed logins; try again in {settings.login_window_seconds} seconds"
        )


def logout(*, session: Session, raw_token: str) -> None:
    """End a web session."""
    web_session = session.exec(
        select(WebSession).where(WebSession.token_hash == token_hash(raw_token))
    ).first()
    if web_session is None:
        return
    user = session.get(User, web_session.user_id)
    session.delete(web_session)
    audit.record(
        session,
        actor=user_actor(user, {}) if user else Actor(kind="system", id=None, name="system"),
        action="session.logout",
        subject=f"user:{user.username if user else web_session.user_id}",
    )
    commit(session)


@dataclass(frozen=True)
class SessionInfo:
    """Who a web session belongs to, and its CSRF token."""

    actor: Actor
    user: User
    csrf_token: str


def session_info(
    *, session: Session, raw_token: str, request_id: str | None = None
) -> SessionInfo | None:
    """The signed-in user of a session cookie, or None if it is unknown or expired."""
    row = session.exec(
        select(WebSession, User)
        .join(User, WebSession.user_id == User.id)  # type: ignore[arg-type]
        .where(WebSession.token_hash == token_hash(raw_token))
    ).first()
    if row is None:
        return None
    web_session, user = row
    if web_session.expires_at <= utcnow() or not user.is_active:
        return None
    actor = user_actor(user, roles_of(session, user.id), request_id=request_id)
    return SessionInfo(actor=actor, user=user, csrf_token=web_session.csrf_token)


def check_csrf(expected: str, given: str | None) -> None:
    """Refuse a form or cookie-authenticated call without the session's CSRF token."""
    if not given or not hmac.compare_digest(expected, given):
        raise PermissionDenied("missing or wrong CSRF token: reload the page and try again")


def user_actor(user: User, roles: dict[Any, Any], request_id: str | None = None) -> Actor:
    """The actor of an account with its roles (one per organisation), as a request names it."""
    return Actor(
        kind="user",
        id=str(user.id),
        name=user.username,
        is_admin=user.is_admin,
        roles=roles,
        user_id=user.id,
        request_id=request_id,
    )


def issue_token(*, session: Session, actor: Actor, data: ApiTokenCreate | Fields) -> ApiTokenIssued:
    """Make an API token for the acting user, scoped to one organisation and role."""
    token_in = parse(ApiTokenCreate, data)
    if actor.user_id is None or actor.kind != "user":
        raise AuthenticationFailed("API tokens are issued to signed-in users")
    org = organisation_by_name(session, token_in.organisation)
    authorize(actor, Action.token_create, org.id)
    own = actor.role_in(org.id)
    if not actor.is_admin and (own is None or not role_covers(own, token_in.role)):
        raise InvalidInput(
            "a token cannot have more rights than its owner",
            errors={"role": f"must be no more than your role ({own})"},
        )
    if token_in.expires_at is not None and token_in.expires_at <= utcnow():
        raise InvalidInput("the token would be expired", errors={"expires_at": "is in the past"})
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=token_in.name,
        role=token_in.role,
        expires_at=token_in.expires_at,
        token_hash=token_hash(raw),
        prefix=raw[: len(TOKEN_PREFIX) + 6],
        user_id=actor.user_id,
        organisation_id=org.id,
    )
    session.add(token)
    audit.record(
        session,
        actor=actor,
        action="token.issue",
        subject=f"token:{token.prefix}",
        organisation_id=org.id,
        payload={"name": token.name, "role": token.role, "expires_at": token.expires_at},
    )
    commit(session)
    return ApiTokenIssued(**ApiTokenPublic.model_validate(token).model_dump(), token=raw)


def list_tokens(*, session: Session, actor: Actor) -> list[ApiToken]:
    """The acting user's tokens (admins see everyone's)."""
    query = select(ApiToken).order_by(col(ApiToken.created_at).desc())
    if not actor.is_admin:
        query = query.where(ApiToken.user_id == actor.user_id)
    return list(session.exec(query).all())


def revoke_token(*, session: Session, actor: Actor, token_id: uuid.UUID) -> ApiToken:
    """Revoke a token: it stops working at once."""
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != actor.user_id and not actor.is_admin):
        raise NotFound("no such token")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        audit.record(
            session,
            actor=actor,
            action="token.revoke",
            subject=f"token:{token.prefix}",
            organisation_id=token.organisation_id,
        )
        commit(session)
    return token


def token_actor(*, session: Session, raw: str, request_id: str | None = None) -> Actor:
    """The actor an API token stands for: its user, limited to the token's organisation
    and to the lesser of the token's role and the user's current one."""
    row = session.exec(
        select(ApiToken, User, Membership.role)
        .join(User, ApiToken.user_id == User.id)  # type: ignore[arg-type]
        .outerjoin(
            Membership,
            and_(
                Membership.user_id == User.id,  # type: ignore[arg-type]
                Membership.organisation_id == ApiToken.organisation_id,  # type: ignore[arg-type]
            ),
        )
        .where(ApiToken.token_hash == token_hash(raw))
    ).first()
    if row is None:
        raise AuthenticationFailed("unknown API token")
    token, user, current = row
    now: datetime = utcnow()
    if token.revoked_at is not None:
        raise AuthenticationFailed("this API token has been revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise AuthenticationFailed("this API token has expired")
    if not user.is_active:
        raise AuthenticationFailed("the token's user is disabled")
    roles = {}
    if user.is_admin or (current is not None and role_covers(Role(current), token.role)):
        roles = {token.organisation_id: token.role}
    return Actor(
        kind="token",
        id=str(token.id),
        name=f"{user.username} ({token.prefix})",
        roles=roles,
        user_id=user.id,
        request_id=request_id,
    )
