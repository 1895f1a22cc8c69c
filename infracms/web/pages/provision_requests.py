"""/orgs/{org}/requests: the provision requests peers (and OSB platforms) sent for the
organisation's offerings, pending, approved, declined or ended; owners and operators
approve one (which starts the run that provisions it) or decline it with a reason."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from sqlmodel import Session

from infracms.api.deps import KeyringDep, PluginsDep, SessionDep
from infracms.services.authz import Action, is_allowed
from infracms.services.federation import instances, offerings, provisioning
from infracms.services.federation.instances import InstancePublic
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text
from infracms.web.pages.orgs import org_view
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()

Shown = Literal["pending", "provisioning", "declined", "deprovisioning", "ended", "all"]
FILTERS = [
    ("pending", "Pending"),
    ("provisioning", "Approved"),
    ("declined", "Declined"),
    ("ended", "Ended"),
    ("all", "All"),
]


@router.get("/orgs/{org}/requests")
def org_requests(
    org: str,
    request: Request,
    session: SessionDep,
    me: SignedIn,
    status: Annotated[Shown, Query()] = "pending",
) -> Response:
    """The requests for the organisation's offerings, newest first, by status."""
    view = org_view(session, me.actor, org)
    found = instances.list_requests(session=session, actor=me.actor, organisation=org)
    counts = {key: sum(1 for row in found if _shown_as(row) == key) for key, _ in FILTERS}
    context = {
        "view": view,
        "tab": "requests",
        "requests": [row for row in found if status == "all" or _shown_as(row) == status],
        "filters": FILTERS,
        "status": status,
        "counts": counts | {"all": len(found)},
        "requester": {row.id: requester(row) for row in found},
        "names": offered_names(session, me, org),
    }
    return render(request, "org_requests.html", context)


@router.get("/orgs/{org}/requests/{instance}")
def show_request(
    org: str,
    instance: uuid.UUID,
    request: Request,
    session: SessionDep,
    me: SignedIn,
    notice: str = "",
) -> Response:
    """One request: who asks for what, with which parameters; approve or decline it."""
    return _page(request, session, me, org, instance, notice=notice)


@router.post("/orgs/{org}/requests/{instance}/approve")
def approve(
    org: str,
    instance: uuid.UUID,
    request: Request,
    session: SessionDep,
    me: Poster,
    plugins: PluginsDep,
    keyring: KeyringDep,
) -> Response:
    """Approve: create the definition on the offering's host pool and start its run."""

    def action() -> Response:
        done = provisioning.approve(
            session=session,
            actor=me.actor,
            plugins=plugins,
            organisation=org,
            instance=instance,
            keyring=keyring,  # a secret the module generates is sealed with it
        )
        if done.run_id is not None:
            request.app.state.executor.submit(done.run_id)
        return redirect(f"/orgs/{org}/requests/{instance}?notice=request-approved")

    def on_error(problem: FormProblem) -> Response:
        return _page(request, session, me, org, instance, problem=problem, refused="approve")

    return submit(session, action, on_error)


@router.post("/orgs/{org}/requests/{instance}/decline")
def decline(
    org: str,
    instance: uuid.UUID,
    request: Request,
    session: SessionDep,
    me: Poster,
    form: Form,
) -> Response:
    """Decline with a reason, which the requester is told."""
    reason = text(form, "reason")

    def action() -> Response:
        provisioning.decline(
            session=session, actor=me.actor, organisation=org, instance=instance, reason=reason
        )
        return redirect(f"/orgs/{org}/requests/{instance}?notice=request-declined")

    def on_error(problem: FormProblem) -> Response:
        return _page(
            request, session, me, org, instance, problem=problem, refused="decline", reason=reason
        )

    return submit(session, action, on_error)


def requester(row: InstancePublic) -> dict[str, str]:
    """Who asks: the peer (or platform), its organisation, and the person there."""
    kind, _, name = row.client.partition(":")
    context = row.context
    return {
        "kind": "peer" if kind == "peer" else "platform",
        "name": name,
        "organisation": str(context.get("organization_name") or context.get("organization") or ""),
        "user": str(context.get("requested_by") or ""),
    }


def offered_names(session: Session, me: WebUser, org: str) -> dict[str, str]:
    """The names of the organisation's offerings and plans, by their catalog ids."""
    names: dict[str, str] = {}
    found = offerings.list_publications(
        session=session, actor=me.actor, organisation=org, include_withdrawn=True
    )
    for publication in found:
        names[publication.offering_id] = publication.name
        names |= {str(plan["id"]): str(plan["title"]) for plan in publication.plans}
    return names


def _shown_as(row: InstancePublic) -> str:
    """The filter a request is listed under (a deprovisioning instance is ending)."""
    value = row.status.value
    return "ended" if value == "deprovisioning" else value


def _page(
    request: Request,
    session: Session,
    me: WebUser,
    org: str,
    instance: uuid.UUID,
    *,
    problem: FormProblem | None = None,
    refused: str = "",
    reason: str = "",
    notice: str = "",
) -> Response:
    view = org_view(session, me.actor, org)
    found = instances.get_request(
        session=session, actor=me.actor, organisation=org, instance=instance
    )
    context: dict[str, Any] = {
        "view": view,
        "tab": "requests",
        "row": found,
        "who": requester(found),
        "names": offered_names(session, me, org),
        "can_decide": is_allowed(me.actor, Action.provision_decide, view.org.id),
        "problem": problem,
        "refused": refused,
        "values": {"reason": reason},
        "notice": notice,
    }
    return render(request, "request.html", context, status=problem.status if problem else 200)
