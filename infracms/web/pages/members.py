"""/orgs/{org}/members: who belongs to an organisation; owners set roles and remove people."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from infracms.api.deps import SessionDep
from infracms.models.user import Role
from infracms.services import users
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text
from infracms.web.pages.orgs import org_view
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()

ROLES = [role.value for role in Role]


@router.get("/orgs/{org}/members")
def org_members(
    org: str, request: Request, session: SessionDep, me: SignedIn, notice: str = ""
) -> Response:
    """The people of an organisation and their roles."""
    return _page(
        request, session, me, org, {"username": "", "role": Role.viewer.value}, notice=notice
    )


@router.post("/orgs/{org}/members")
def set_member(org: str, request: Request, session: SessionDep, me: Poster, form: Form) -> Response:
    """Give someone a role here, or change theirs (owners)."""
    values = {"username": text(form, "username"), "role": text(form, "role")}

    def action() -> Response:
        users.set_membership(session=session, actor=me.actor, organisation=org, data=values)
        return redirect(f"/orgs/{org}/members?notice=member-saved")

    return submit(
        session, action, lambda problem: _page(request, session, me, org, values, problem)
    )


@router.post("/orgs/{org}/members/{username}/remove")
def remove_member(
    org: str, username: str, request: Request, session: SessionDep, me: Poster
) -> Response:
    """Take someone's role here away (owners)."""
    blank = {"username": "", "role": Role.viewer.value}

    def action() -> Response:
        users.remove_membership(
            session=session, actor=me.actor, organisation=org, username=username
        )
        return redirect(f"/orgs/{org}/members?notice=member-removed")

    return submit(session, action, lambda problem: _page(request, session, me, org, blank, problem))


def _page(
    request: Request,
    session: Session,
    me: WebUser,
    org: str,
    values: dict[str, str],
    problem: FormProblem | None = None,
    notice: str = "",
) -> Response:
    view = org_view(session, me.actor, org)
    context = {
        "view": view,
        "tab": "members",
        "members": users.list_members(session=session, actor=me.actor, organisation=org),
        "roles": ROLES,
        "values": values,
        "problem": problem,
        "notice": notice,
    }
    return render(request, "org_members.html", context, status=problem.status if problem else 200)
