"""/: the dashboard: what needs attention first, then the organisations you can see."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from infracms.api.deps import SessionDep
from infracms.services import dashboard
from infracms.services.authz import Action, is_allowed
from infracms.web.pages.orgs import org_view
from infracms.web.run_view import table_helpers
from infracms.web.session import SignedIn
from infracms.web.templating import render

router = APIRouter()


@router.get("/")
def dashboard_page(request: Request, session: SessionDep, me: SignedIn) -> Response:
    """What needs attention (runs, hosts, requests, peers), then each organisation's counts."""
    found = dashboard.attention(session=session, actor=me.actor)
    views = [org_view(session, me.actor, item.organisation.name) for item in found.organisations]
    context = {
        "attention": found,
        "orgs": views,
        "section": "home",
        "can_create": is_allowed(me.actor, Action.org_create, None),
        **table_helpers(),
    }
    return render(request, "dashboard.html", context)
