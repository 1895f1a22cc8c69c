"""Who is signed in to the pages: the session cookie, the CSRF check, safe redirects."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response
from starlette.datastructures import FormData

from infracms.api.deps import SESSION_COOKIE, request_id, short_read
from infracms.config import Settings
from infracms.errors import AuthenticationFailed, PermissionDenied
from infracms.models.user import UserPublic
from infracms.services import auth, totp
from infracms.services.context import Actor

LOGIN_CSRF_COOKIE = "infracms_login_csrf"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class WebUser:
    """The signed-in user of a page, as an actor for services, with the session's CSRF token.

    `user` is a copy, not a row: error pages render after the database session has closed.
    """

    actor: Actor
    user: UserPublic
    csrf_token: str


async def current_user(request: Request) -> WebUser:
    """The signed-in user, or AuthenticationFailed (which sends the browser to /login).

    Looked up in a short read session of its own (`short_read`), so that a form post's
    write transaction starts in the page's own thread, not here: the form is read (an
    await) between this and the page, and no lock may be held across that."""
    cookie = request.cookies.get(SESSION_COOKIE)
    info = None
    if cookie:
        info = await short_read(
            request,
            lambda request, session: auth.session_info(
                session=session, raw_token=cookie, request_id=request_id(request)
            ),
        )
    if info is None:
        raise AuthenticationFailed("sign in to continue")
    user = UserPublic.model_validate(info.user)
    me = WebUser(actor=info.actor, user=user, csrf_token=info.csrf_token)
    request.state.web_user = me
    if user.password_must_change and request.url.path not in PASSWORD_PAGES:
        raise PasswordMustChange("choose a new password first: the one you used works once")
    if totp.must_enrol(request.app.state.settings, user) and request.url.path not in TOTP_PAGES:
        raise TotpMustEnrol("set up two-factor sign-in first: this node requires it of admins")
    return me


class PasswordMustChange(PermissionDenied):
    """A one-time password (an admin's reset) signed in: only the password page opens;
    the pages send the browser there (web/errors.py)."""


PASSWORD_PAGES = frozenset({"/account", "/account/password", "/logout"})


class TotpMustEnrol(PermissionDenied):
    """A node admin without TOTP where ``INFRACMS_REQUIRE_TOTP_FOR_ADMINS`` is set: only
    the enrolment opens; the pages send the browser there (web/errors.py)."""


TOTP_PAGES = frozenset({"/account", "/account/totp/start", "/account/totp/confirm", "/logout"})


async def read_form(request: Request) -> FormData:
    """The submitted form (read once; FastAPI caches dependencies per request)."""
    return await request.form()


SignedIn = Annotated[WebUser, Depends(current_user)]
Form = Annotated[FormData, Depends(read_form)]


def checked_user(me: SignedIn, form: Form) -> WebUser:
    """The signed-in user of a form post that carries the session's CSRF token."""
    given = form.get(CSRF_FIELD)
    auth.check_csrf(me.csrf_token, given if isinstance(given, str) else None)
    return me


Poster = Annotated[WebUser, Depends(checked_user)]


def safe_next(value: str | None) -> str:
    """`value` if it is a path on this site, else "/": never an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def login_url(request: Request) -> str:
    """Where to send a signed-out browser: /login, coming back here after (for GETs)."""
    if request.method != "GET":
        return "/login"
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login" if here == "/" else f"/login?next={quote(here, safe='')}"


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    """Give the browser its session cookie: HttpOnly, SameSite=Lax, Secure over TLS."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_hours * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )


def clear_cookie(response: Response, settings: Settings, name: str) -> None:
    """Make the browser forget a cookie set by `set_session_cookie` or `login_csrf`."""
    response.delete_cookie(
        name, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies
    )


def login_csrf(request: Request) -> str:
    """The pre-session CSRF value of the login form: the browser's cookie, or a fresh one."""
    current = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return current if 32 <= len(current) <= 64 else secrets.token_urlsafe(32)


def set_login_csrf(response: Response, settings: Settings, value: str) -> None:
    """Store the login form's CSRF value in a cookie (double submit)."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )


def login_csrf_ok(request: Request, given: str | None) -> bool:
    """Whether the login form's hidden field matches the browser's CSRF cookie."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not cookie or not given:
        return False
    return hmac.compare_digest(cookie.encode(), given.encode())
