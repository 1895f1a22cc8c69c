"""/: the dashboard, the organisations you can see with what they hold."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from infracms.api.deps import SessionDep
from infracms.services import organisations
from infracms.services.authz import Action, is_allowed
from infracms.web.pages.orgs import org_view
from infracms.web.session import SignedIn
from infracms.web.templating import render

router = APIRouter()


@router.get("/")
def dashboard(request: Request, session: SessionDep, me: SignedIn) -> Response:
    """The organisations you can see, with counts."""
    orgs = organisations.list_organisations(session=session, actor=me.actor)
    views = [org_view(session, me.actor, org.name) for org in orgs]
    context = {
        "orgs": views,
        "section": "home",
        "can_create": is_allowed(me.actor, Action.org_create, None),
    }
    return render(request, "dashboard.html", context)
