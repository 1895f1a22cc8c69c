"""/users/{name}: one account for node admins: edit, disable or enable, reset the
password (shown once), delete."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from infracms.api.deps import SessionDep, SettingsDep
from infracms.models.user import User
from infracms.services import totp, user_lifecycle, user_passwords
from infracms.services.authz import Action, authorize
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()


@router.get("/users/{username}")
def show_user(
    username: str, request: Request, session: SessionDep, me: SignedIn, notice: str = ""
) -> Response:
    """An account, with what a node admin can do to it."""
    authorize(me.actor, Action.user_manage, None)
    return _page(request, session, me, username, notice=notice)


@router.post("/users/{username}")
def update_user(
    username: str, request: Request, session: SessionDep, me: Poster, form: Form
) -> Response:
    """Save an account's names and admin flag."""
    values = {
        "display_name": text(form, "display_name"),
        "email": text(form, "email"),
        "is_admin": "on" if text(form, "is_admin") == "on" else "",
    }

    def action() -> Response:
        data = {**values, "is_admin": values["is_admin"] == "on"}
        user_lifecycle.update_user(session=session, actor=me.actor, username=username, data=data)
        return redirect(f"/users/{username}?notice=saved")

    return submit(
        session, action, lambda problem: _page(request, session, me, username, values, problem)
    )


@router.post("/users/{username}/disable")
def disable_user(username: str, request: Request, session: SessionDep, me: Poster) -> Response:
    """Disable the account: its sessions end and its tokens are refused at once."""

    def action() -> Response:
        user_lifecycle.disable_user(session=session, actor=me.actor, username=username)
        return redirect(f"/users/{username}?notice=user-disabled")

    return submit(
        session, action, lambda problem: _page(request, session, me, username, refused=problem)
    )


@router.post("/users/{username}/enable")
def enable_user(username: str, session: SessionDep, me: Poster) -> Response:
    """Enable the account again."""
    user_lifecycle.enable_user(session=session, actor=me.actor, username=username)
    return redirect(f"/users/{username}?notice=user-enabled")


@router.post("/users/{username}/totp-reset")
def reset_totp(username: str, session: SessionDep, me: Poster) -> Response:
    """Turn another user's two-factor sign-in off (a lost device); audited."""
    totp.reset_for(session=session, actor=me.actor, username=username)
    return redirect(f"/users/{username}?notice=totp-reset")


@router.post("/users/{username}/password-reset")
def reset_password(
    username: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Poster,
    form: Form,
) -> Response:
    """Set a one-time password, given or generated, and show it this once."""

    def action() -> Response:
        issued = user_passwords.reset_password(
            session=session,
            actor=me.actor,
            settings=settings,
            username=username,
            data={"password": text(form, "password", strip=False) or None},
        )
        return render(request, "password_issued.html", {"issued": issued, "section": "users"})

    return submit(
        session, action, lambda problem: _page(request, session, me, username, reset=problem)
    )


@router.get("/users/{username}/delete")
def confirm_delete(username: str, request: Request, session: SessionDep, me: SignedIn) -> Response:
    """Ask before deleting an account."""
    authorize(me.actor, Action.user_manage, None)
    user_lifecycle.get_user(session=session, actor=me.actor, username=username)
    return _confirm(request, username)


@router.post("/users/{username}/delete")
def delete_user(username: str, request: Request, session: SessionDep, me: Poster) -> Response:
    """Delete the account; its audit entries keep the name they recorded."""

    def action() -> Response:
        user_lifecycle.delete_user(session=session, actor=me.actor, username=username)
        return redirect("/users?notice=user-deleted")

    return submit(session, action, lambda problem: _confirm(request, username, problem))


def _values(user: User) -> dict[str, str]:
    return {
        "display_name": user.display_name,
        "email": user.email or "",
        "is_admin": "on" if user.is_admin else "",
    }


def _page(
    request: Request,
    session: Session,
    me: WebUser,
    username: str,
    values: dict[str, str] | None = None,
    problem: FormProblem | None = None,
    *,
    refused: FormProblem | None = None,
    reset: FormProblem | None = None,
    notice: str = "",
) -> Response:
    user = user_lifecycle.get_user(session=session, actor=me.actor, username=username)
    context = {
        "user": user,
        "values": values or _values(user),
        "problem": problem,
        "refused": refused,
        "reset": reset,
        "is_me": user.id == me.user.id,
        "notice": notice,
        "section": "users",
    }
    failed = problem or refused or reset
    return render(request, "user.html", context, status=failed.status if failed else 200)


def _confirm(request: Request, username: str, problem: FormProblem | None = None) -> Response:
    context = {
        "title": f"Delete user {username}?",
        "message": (
            "The account, its roles in organisations, its sessions and its API tokens are "
            "deleted. Its audit entries stay as they were recorded, with this name."
        ),
        "action": f"/users/{username}/delete",
        "cancel": f"/users/{username}",
        "button": "Delete user",
        "problem": problem,
        "section": "users",
    }
    return render(request, "confirm.html", context, status=problem.status if problem else 200)
