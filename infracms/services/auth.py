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
    TokenScope,
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
    user = check_password(
        session=session, settings=settings, username=username, password=password, client=client
    )
    return open_session(
        session=session, settings=settings, user=user, username=username, client=client
    )


def check_password(
    *, session: Session, settings: Settings, username: str, password: str, client: str
) -> User | None:
    """The account whose password this is (disabled or not: `open_session` refuses a
    disabled one), or None; reads only. The password hash is slow on purpose: give this
    a read session, never a writing transaction's, so that hashing does not hold the
    write lock (then `open_session` writes)."""
    username = username.strip().lower()[:63]
    _check_rate(session, settings, username, client)
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        burn_time(settings)
    right = user is not None and verify_password(settings, user.password_hash, password)
    return user if right else None


def open_session(
    *, session: Session, settings: Settings, user: User | None, username: str, client: str
) -> LoginResult:
    """Record a login attempt checked by `check_password` and, if `user` is set, open its
    web session. The rate is checked again here, under the write lock, so that attempts
    made at once cannot pass the limit: the answer to the extra ones is RateLimited."""
    username = username.strip().lower()[:63]
    _check_rate(session, settings, username, client)
    ok = user is not None and user.is_active
    session.add(LoginAttempt(username=username, client=client[:64], succeeded=ok, at=utcnow()))
    if not ok or user is None:
        session.commit()
        if user is not None:  # only who knows the password learns that it is disabled
            raise AuthenticationFailed("this account is disabled: ask a node administrator")
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


def check_rate(session: Session, *, settings: Settings, username: str, client: str) -> None:
    """Refuse another password guess after too many failures (RateLimited)."""
    _check_rate(session, settings, username, client)


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
    actor = user_actor(user, roles_of(session, user_id=user.id), request_id=request_id)
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
    """Make an API token for the acting user: scoped to one organisation and role, or
    (for node admins) to node-level actions."""
    token_in = parse(ApiTokenCreate, data)
    if actor.user_id is None or actor.kind != "user":
        raise AuthenticationFailed("API tokens are issued to signed-in users")
    org_id = _token_organisation(session, actor, token_in)
    if token_in.expires_at is not None and token_in.expires_at <= utcnow():
        raise InvalidInput("the token would be expired", errors={"expires_at": "is in the past"})
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=token_in.name,
        scope=token_in.scope,
        role=token_in.role,
        expires_at=token_in.expires_at,
        token_hash=token_hash(raw),
        prefix=raw[: len(TOKEN_PREFIX) + 6],
        user_id=actor.user_id,
        organisation_id=org_id,
    )
    session.add(token)
    audit.record(
        session,
        actor=actor,
        action="token.issue",
        subject=f"token:{token.prefix}",
        organisation_id=org_id,
        payload={
            "name": token.name,
            "scope": token.scope,
            "role": token.role,
            "expires_at": token.expires_at,
        },
    )
    commit(session)
    return ApiTokenIssued(**ApiTokenPublic.model_validate(token).model_dump(), token=raw)


def _token_organisation(
    session: Session, actor: Actor, token_in: ApiTokenCreate
) -> uuid.UUID | None:
    """The organisation a new token is for (None for a node token), once the actor may
    issue it: a node token needs a node admin, an organisation token no more rights than
    its owner has there."""
    if token_in.scope is TokenScope.node:
        authorize(actor, Action.node_token_create, None)
        return None
    org = organisation_by_name(session, name=str(token_in.organisation))
    authorize(actor, Action.token_create, org.id)
    own = actor.role_in(org.id)
    wanted = Role(token_in.role) if token_in.role else Role.owner
    if not actor.is_admin and (own is None or not role_covers(own, wanted)):
        raise InvalidInput(
            "a token cannot have more rights than its owner",
            errors={"role": f"must be no more than your role ({own})"},
        )
    return org.id


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
    if token.scope is TokenScope.node:
        return _node_token_actor(token, user, request_id)
    org, role = token.organisation_id, Role(token.role or Role.viewer)
    held = user.is_admin or (current is not None and role_covers(Role(current), role))
    roles = {org: role} if org is not None and token.role is not None and held else {}
    return Actor(
        kind="token",
        id=str(token.id),
        name=f"{user.username} ({token.prefix})",
        roles=roles,
        user_id=user.id,
        request_id=request_id,
    )


def _node_token_actor(token: ApiToken, user: User, request_id: str | None) -> Actor:
    """A node token acts for a node admin in node-level actions only (services/authz.py);
    it stops working when its user is no longer a node admin."""
    if not user.is_admin:
        raise AuthenticationFailed("the node token's user is no longer a node administrator")
    return Actor(
        kind="token",
        id=str(token.id),
        name=f"{user.username} ({token.prefix})",
        user_id=user.id,
        request_id=request_id,
        node_scope=True,
    )


def end_sessions(session: Session, *, user_id: uuid.UUID, keep: str | None = None) -> int:
    """Delete a user's web sessions (all but the raw token `keep`): they stop at once.
    Part of the caller's transaction, which records why."""
    query = select(WebSession).where(WebSession.user_id == user_id)
    if keep is not None:
        query = query.where(WebSession.token_hash != token_hash(keep))
    ended = 0
    for web_session in session.exec(query).all():
        session.delete(web_session)
        ended += 1
    return ended
