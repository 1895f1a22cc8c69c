"""/orgs/{org}/services: the services an organisation requested from peers, with their
status (asked of the peer on "Refresh"), their connection details (owners and operators,
on an explicit "Show", never in a list and never cached), and deprovisioning."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlmodel import Session

from infracms.api.deps import KeyringDep, SessionDep
from infracms.api.peer import federation_context
from infracms.services.authz import Action, authorize, is_allowed
from infracms.services.federation import consumer, directory
from infracms.services.federation.node import FederationContext
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.pages.orgs import org_view
from infracms.web.session import Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()

ContextDep = Annotated[FederationContext, Depends(federation_context)]
ENDED = ("ended", "deprovisioning")


@router.get("/orgs/{org}/services")
def org_services(
    org: str, request: Request, session: SessionDep, me: SignedIn, notice: str = ""
) -> Response:
    """The organisation's services from peers, newest first (never their credentials)."""
    view = org_view(session, me.actor, org)
    context = {
        "view": view,
        "tab": "services",
        "services": consumer.list_services(session=session, actor=me.actor, organisation=org),
        "names": catalog_names(session, me),
        "can_request": is_allowed(me.actor, Action.service_request, view.org.id),
        "notice": notice,
    }
    return render(request, "org_services.html", context)


@router.get("/orgs/{org}/services/{service}")
def show_service(
    org: str,
    service: uuid.UUID,
    request: Request,
    session: SessionDep,
    me: SignedIn,
    notice: str = "",
) -> Response:
    """One service: what was asked, how it goes, and what may be done with it."""
    return _page(request, session, me, org, service, notice=notice)


@router.post("/orgs/{org}/services/{service}/refresh")
def refresh(
    org: str, service: uuid.UUID, request: Request, session: SessionDep, me: Poster, ctx: ContextDep
) -> Response:
    """Ask the peer how the service's last operation went (and bind once it is ready)."""

    def action() -> Response:
        consumer.refresh_service(
            session=session, actor=me.actor, ctx=ctx, organisation=org, service=service
        )
        return redirect(f"/orgs/{org}/services/{service}?notice=service-refreshed")

    def on_error(problem: FormProblem) -> Response:
        return _page(request, session, me, org, service, problem=problem, refused="refresh")

    return submit(session, action, on_error)


@router.post("/orgs/{org}/services/{service}/credentials")
def show_credentials(
    org: str,
    service: uuid.UUID,
    request: Request,
    session: SessionDep,
    me: Poster,
    keyring: KeyringDep,
) -> Response:
    """The connection details, on this response only (owners and operators)."""
    found = consumer.service_credentials(
        session=session, actor=me.actor, keyring=keyring, organisation=org, service=service
    )
    return _page(request, session, me, org, service, credentials=found)


@router.get("/orgs/{org}/services/{service}/deprovision")
def confirm_deprovision(
    org: str, service: uuid.UUID, request: Request, session: SessionDep, me: SignedIn
) -> Response:
    """Ask before deprovisioning."""
    found = consumer.get_service(session=session, actor=me.actor, organisation=org, service=service)
    authorize(me.actor, Action.service_request, org_view(session, me.actor, org).org.id)
    return _confirm(request, org, found)


@router.post("/orgs/{org}/services/{service}/deprovision")
def deprovision(
    org: str, service: uuid.UUID, request: Request, session: SessionDep, me: Poster, ctx: ContextDep
) -> Response:
    """Ask the peer to remove the service; its connection details are dropped here."""

    def action() -> Response:
        consumer.deprovision_service(
            session=session, actor=me.actor, ctx=ctx, organisation=org, service=service
        )
        return redirect(f"/orgs/{org}/services/{service}?notice=service-deprovisioning")

    def on_error(problem: FormProblem) -> Response:
        found = consumer.get_service(
            session=session, actor=me.actor, organisation=org, service=service
        )
        return _confirm(request, org, found, problem)

    return submit(session, action, on_error)


def catalog_names(session: Session, me: WebUser) -> dict[tuple[str, str], str]:
    """The names of peers' offerings and plans, by (peer, catalog id), as last synced."""
    names: dict[tuple[str, str], str] = {}
    for offering in directory.search_catalog(session=session, actor=me.actor):
        names[offering.peer, offering.offering_id] = offering.name
        names |= {(offering.peer, plan.id): plan.name for plan in offering.plans}
    return names


def _page(
    request: Request,
    session: Session,
    me: WebUser,
    org: str,
    service: uuid.UUID,
    *,
    credentials: dict[str, Any] | None = None,
    problem: FormProblem | None = None,
    refused: str = "",
    notice: str = "",
) -> Response:
    view = org_view(session, me.actor, org)
    found = consumer.get_service(session=session, actor=me.actor, organisation=org, service=service)
    context = {
        "view": view,
        "tab": "services",
        "row": found,
        "names": catalog_names(session, me),
        "ended": found.status.value in ENDED,
        "can_request": is_allowed(me.actor, Action.service_request, view.org.id),
        "can_read_credentials": is_allowed(me.actor, Action.service_credentials, view.org.id),
        "credentials": credentials,
        "problem": problem,
        "refused": refused,
        "notice": notice,
    }
    return render(request, "service.html", context, status=problem.status if problem else 200)


def _confirm(
    request: Request, org: str, found: Any, problem: FormProblem | None = None
) -> Response:
    context = {
        "title": f"Deprovision {found.offering_id}?",
        "message": f"{found.peer} removes the service and what it holds; its connection "
        "details stop working and are deleted here. This cannot be undone.",
        "action": f"/orgs/{org}/services/{found.id}/deprovision",
        "cancel": f"/orgs/{org}/services/{found.id}",
        "button": "Deprovision service",
        "problem": problem,
        "section": "orgs",
    }
    return render(request, "confirm.html", context, status=problem.status if problem else 200)
