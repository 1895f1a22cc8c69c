"""/login and /logout: opening and closing a web session."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from infracms import db
from infracms.api.deps import SESSION_COOKIE, SessionDep, SettingsDep
from infracms.errors import AuthenticationFailed, RateLimited
from infracms.services import auth
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
