"""/account: your own account: names, and changing your password."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from infracms.api.deps import SESSION_COOKIE, SessionDep, SettingsDep
from infracms.errors import InvalidInput
from infracms.services import user_lifecycle, user_passwords
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()


@router.get("/account")
def account(request: Request, session: SessionDep, me: SignedIn, notice: str = "") -> Response:
    """Your names and the password form."""
    return _page(request, session, me, notice=notice)


@router.post("/account")
def update_account(request: Request, session: SessionDep, me: Poster, form: Form) -> Response:
    """Save your display name and email."""
    values = {"display_name": text(form, "display_name"), "email": text(form, "email")}

    def action() -> Response:
        user_lifecycle.update_user(
            session=session, actor=me.actor, username=me.user.username, data=values
        )
        return redirect("/account?notice=saved")

    return submit(
        session, action, lambda problem: _page(request, session, me, values, problem=problem)
    )


@router.post("/account/password")
def change_password(
    request: Request, session: SessionDep, settings: SettingsDep, me: Poster, form: Form
) -> Response:
    """Change your password, giving the current one; your other sessions end."""

    def action() -> Response:
        new = text(form, "new_password", strip=False)
        if new != text(form, "confirm_password", strip=False):
            raise InvalidInput(
                "the two new passwords differ", errors={"confirm_password": "does not match"}
            )
        user_passwords.change_password(
            session=session,
            actor=me.actor,
            settings=settings,
            data={"current_password": text(form, "current_password", strip=False)}
            | {"new_password": new},
            keep_session=request.cookies.get(SESSION_COOKIE),
        )
        return redirect("/account?notice=password-changed")

    return submit(
        session, action, lambda problem: _page(request, session, me, password_problem=problem)
    )


def _page(
    request: Request,
    session: Session,
    me: WebUser,
    values: dict[str, str] | None = None,
    *,
    problem: FormProblem | None = None,
    password_problem: FormProblem | None = None,
    notice: str = "",
) -> Response:
    user = user_lifecycle.get_user(session=session, actor=me.actor, username=me.user.username)
    context = {
        "user": user,
        "values": values or {"display_name": user.display_name, "email": user.email or ""},
        "problem": problem,
        "password_problem": password_problem,
        "notice": notice,
        "section": "account",
    }
    failed = problem or password_problem
    return render(request, "account.html", context, status=failed.status if failed else 200)
