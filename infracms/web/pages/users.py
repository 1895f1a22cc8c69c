"""/users: every account on the node, and the form to create one (node admins)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from infracms.api.deps import SessionDep, SettingsDep
from infracms.services import users
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import or_none, text
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()

NEW_USER = {"username": "", "display_name": "", "email": "", "is_admin": ""}


@router.get("/users")
def list_users(request: Request, session: SessionDep, me: SignedIn, notice: str = "") -> Response:
    """All accounts, with the create form."""
    return _page(request, session, me, NEW_USER, notice=notice)


@router.post("/users")
def create_user(
    request: Request, session: SessionDep, settings: SettingsDep, me: Poster, form: Form
) -> Response:
    """Create an account; on error the form comes back without the password."""
    values = {key: text(form, key) for key in NEW_USER}

    def action() -> Response:
        data = {
            "username": values["username"],
            "display_name": values["display_name"],
            "email": or_none(values["email"]),
            "password": text(form, "password", strip=False),
            "is_admin": values["is_admin"] == "on",
        }
        users.create_user(session=session, actor=me.actor, settings=settings, data=data)
        return redirect("/users?notice=user-created")

    return submit(session, action, lambda problem: _page(request, session, me, values, problem))


def _page(
    request: Request,
    session: Session,
    me: WebUser,
    values: dict[str, str],
    problem: FormProblem | None = None,
    notice: str = "",
) -> Response:
    context = {
        "users": users.list_users(session=session, actor=me.actor),
        "values": values,
        "problem": problem,
        "notice": notice,
        "section": "users",
    }
    return render(request, "users.html", context, status=problem.status if problem else 200)
