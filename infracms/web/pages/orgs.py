"""/orgs: the organisations list and create form, and the header every org page shares."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from infracms.api.deps import SessionDep
from infracms.models.organisation import Organisation
from infracms.services import credentials, inventory, organisations, users
from infracms.services.authz import Action, is_allowed
from infracms.services.context import Actor
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text
from infracms.web.session import Form, Poster, SignedIn
from infracms.web.templating import render

router = APIRouter()

WRITE_ACTIONS = {
    "hosts": Action.host_connect,  # adding a host chooses where ssh goes
    "groups": Action.group_write,
    "credentials": Action.credential_write,
    "members": Action.member_manage,
    "modules": Action.module_enable,
    "definitions": Action.definition_write,
    "plan": Action.run_plan,
    "apply": Action.run_apply,
    "audit": Action.audit_read,
}


@dataclass(frozen=True)
class OrgView:
    """An organisation with what it holds, and what the viewer may change in it."""

    org: Organisation
    role: str
    counts: dict[str, int]
    can: dict[str, bool]


def org_view(session: Session, actor: Actor, name: str) -> OrgView:
    """The header of an organisation's pages: its counts, the viewer's role and rights."""
    org = organisations.get_organisation(session=session, actor=actor, name=name)
    hosts = inventory.list_hosts(session=session, actor=actor, organisation=org.name, limit=1)
    counts = {
        "hosts": hosts.total,
        "groups": len(inventory.list_groups(session=session, actor=actor, organisation=org.name)),
        "credentials": len(
            credentials.list_credentials(session=session, actor=actor, organisation=org.name)
        ),
        "members": len(users.list_members(session=session, actor=actor, organisation=org.name)),
    }
    can = {tab: is_allowed(actor, action, org.id) for tab, action in WRITE_ACTIONS.items()}
    role = "admin" if actor.is_admin else str(actor.role_in(org.id) or "")
    return OrgView(org=org, role=role, counts=counts, can=can)


@router.get("/orgs")
def list_orgs(request: Request, session: SessionDep, me: SignedIn) -> Response:
    """The organisations you can see; admins also get the create form."""
    return _page(request, session, me.actor, {"name": "", "title": ""})


@router.post("/orgs")
def create_org(request: Request, session: SessionDep, me: Poster, form: Form) -> Response:
    """Create an organisation (node admins)."""
    values = {"name": text(form, "name"), "title": text(form, "title")}

    def action() -> Response:
        org = organisations.create_organisation(session=session, actor=me.actor, data=values)
        return redirect(f"/orgs/{org.name}")

    def on_error(problem: FormProblem) -> Response:
        return _page(request, session, me.actor, values, problem)

    return submit(session, action, on_error)


def _page(
    request: Request,
    session: Session,
    actor: Actor,
    values: dict[str, str],
    problem: FormProblem | None = None,
) -> Response:
    views = [
        org_view(session, actor, org.name)
        for org in organisations.list_organisations(session=session, actor=actor)
    ]
    context = {
        "orgs": views,
        "values": values,
        "problem": problem,
        "section": "orgs",
        "can_create": is_allowed(actor, Action.org_create, None),
    }
    return render(request, "orgs.html", context, status=problem.status if problem else 200)
