"""/login, /login/code and /logout: opening (with TOTP, in two steps) and closing a web
session."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from infracms import db
from infracms.api.deps import SESSION_COOKIE, KeyringDep, SessionDep, SettingsDep
from infracms.errors import AuthenticationFailed, RateLimited
from infracms.models.user import User
from infracms.services import auth, totp
from infracms.web.errors import redirect
from infracms.web.forms import text
from infracms.web.session import (
    LOGIN_CSRF_COOKIE,
    Form,
    Poster,
    clear_cookie,
    login_csrf,
    login_csrf_ok,
    safe_next,
    set_login_csrf,
    set_session_cookie,
)
from infracms.web.templating import render

router = APIRouter()
LOGIN_CODE_COOKIE = "infracms_login_code"


@router.get("/login")
def login_form(
    request: Request, session: SessionDep, settings: SettingsDep, next: str = "/"
) -> Response:
    """The login form (or straight on, when already signed in)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and auth.session_info(session=session, raw_token=cookie):
        return redirect(safe_next(next))
    return _form(request, settings, next=safe_next(next))


@router.post("/login")
def login(request: Request, session: SessionDep, settings: SettingsDep, form: Form) -> Response:
    """Check the password, set the session cookie and go on to `next`."""
    username, next_url = text(form, "username"), safe_next(text(form, "next"))
    if not login_csrf_ok(request, text(form, "csrf_token")):
        message = "The login form had expired. Please log in again."
        return _form(
            request, settings, next=next_url, username=username, message=message, status=403
        )
    client = request.client.host if request.client else "unknown"
    try:
        # the password is checked in a read session of its own: hashing it must not
        # hold the write lock, which `open_session` takes only to record the result
        with db.session_scope(request.app.state.engine) as reader:
            user = auth.check_password(
                session=reader,
                settings=settings,
                username=username,
                password=text(form, "password", strip=False),
                client=client,
            )
        if user is not None and user.is_active and totp.enrolled(user):
            return _second_step(session, settings, user, client, next_url)
        result = auth.open_session(
            session=session, settings=settings, user=user, username=username, client=client
        )
    except RateLimited as exc:
        return _form(
            request, settings, next=next_url, username=username, message=exc.detail, status=429
        )
    except AuthenticationFailed as exc:
        message = "Wrong user name or password." if "wrong" in exc.detail else exc.detail
        return _form(
            request, settings, next=next_url, username=username, message=message, status=401
        )
    response = redirect(next_url)
    set_session_cookie(response, settings, result.token)
    clear_cookie(response, settings, LOGIN_CSRF_COOKIE)
    return response


def _second_step(
    session: Session, settings: SettingsDep, user: User, client: str, next_url: str
) -> Response:
    """The password was right and the account has TOTP: a challenge, not a session."""
    raw = totp.begin_challenge(session=session, user=user, client=client)
    response = redirect(f"/login/code?next={quote(next_url, safe='')}")
    response.set_cookie(
        LOGIN_CODE_COOKIE,
        raw,
        max_age=int(totp.CHALLENGE_TTL.total_seconds()),
        path="/login/code",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    return response


@router.get("/login/code")
def code_form(
    request: Request, session: SessionDep, settings: SettingsDep, next: str = "/"
) -> Response:
    """The second step: the code from the authenticator app (or a recovery code)."""
    if not totp.challenge_open(session=session, raw=request.cookies.get(LOGIN_CODE_COOKIE, "")):
        return redirect("/login")
    return _code_form(request, settings, next=safe_next(next))


@router.post("/login/code")
def code(
    request: Request, session: SessionDep, settings: SettingsDep, keyring: KeyringDep, form: Form
) -> Response:
    """Check the code; a right one opens the session, as a password alone does elsewhere."""
    next_url = safe_next(text(form, "next"))
    if not login_csrf_ok(request, text(form, "csrf_token")):
        return redirect("/login")
    client = request.client.host if request.client else "unknown"
    try:
        user = totp.answer_challenge(
            session=session,
            settings=settings,
            keyring=keyring,
            raw=request.cookies.get(LOGIN_CODE_COOKIE, ""),
            code=text(form, "code"),
        )
        result = auth.open_session(
            session=session, settings=settings, user=user, username=user.username, client=client
        )
    except RateLimited as exc:
        return _code_form(request, settings, next=next_url, message=exc.detail, status=429)
    except AuthenticationFailed as exc:
        if "expired" in exc.detail:
            return redirect("/login")
        message = "Wrong code." if exc.detail == "wrong code" else exc.detail
        return _code_form(request, settings, next=next_url, message=message, status=401)
    response = redirect(next_url)
    set_session_cookie(response, settings, result.token)
    clear_cookie(response, settings, LOGIN_CSRF_COOKIE)
    response.delete_cookie(
        LOGIN_CODE_COOKIE,
        path="/login/code",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    return response


def _code_form(
    request: Request, settings: SettingsDep, *, next: str, message: str = "", status: int = 200
) -> Response:
    csrf = login_csrf(request)
    context = {"next": next, "message": message, "csrf": csrf}
    response = render(request, "login_code.html", context, status=status)
    set_login_csrf(response, settings, csrf)
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, settings: SettingsDep, me: Poster) -> Response:
    """End the session and forget the cookie."""
    auth.logout(session=session, raw_token=request.cookies.get(SESSION_COOKIE, ""))
    response = redirect("/login")
    clear_cookie(response, settings, SESSION_COOKIE)
    return response


def _form(
    request: Request,
    settings: SettingsDep,
    *,
    next: str,
    username: str = "",
    message: str = "",
    status: int = 200,
) -> Response:
    csrf = login_csrf(request)
    context = {"next": next, "username": username, "message": message, "csrf": csrf}
    response = render(request, "login.html", context, status=status)
    set_login_csrf(response, settings, csrf)
    return response
