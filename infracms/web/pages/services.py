"""/orgs/{org}/services: the services an organisation requested from peers, with their
status (asked of the peer on "Refresh"), their connection details (owners and operators,
on an explicit "Show", never in a list and never cached), a change of plan or
parameters (a form generated from the plan's parameters schema, like the catalog's
request form, filled with the service's parameters), and deprovisioning."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlmodel import Session

from federation.models.catalog import Plan
from infracms.api.deps import KeyringDep, SessionDep
from infracms.api.peer import federation_context
from infracms.services.authz import Action, authorize, is_allowed
from infracms.services.federation import consumer, directory
from infracms.services.federation.node import FederationContext
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text
from infracms.web.pages.orgs import org_view
from infracms.web.parameters_form import (
    parameters_from,
    parameters_problem,
    plan_fields,
    plan_values,
    submitted,
)
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.settings_form import field_rows
from infracms.web.settings_values import values_of
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


@router.post("/orgs/{org}/services/{service}/update")
def change(
    org: str,
    service: uuid.UUID,
    request: Request,
    session: SessionDep,
    me: Poster,
    form: Form,
    ctx: ContextDep,
) -> Response:
    """Ask the peer for the plan and parameters of the form; it applies them."""
    authorize(me.actor, Action.service_request, org_view(session, me.actor, org).org.id)
    choices = consumer.change_choices(
        session=session, actor=me.actor, organisation=org, service=service
    )
    plan = next((p for p in choices if p.id == text(form, "plan_id")), None)
    schema = dict(plan.parameters) if plan else {}
    fields = plan_fields(schema)
    values = {"plan_id": text(form, "plan_id")} | submitted(fields, schema, form)

    def action() -> Response:
        parameters = parameters_from(fields, schema, values) if plan else {}
        consumer.update_service(
            session=session,
            actor=me.actor,
            ctx=ctx,
            organisation=org,
            service=service,
            data={"plan_id": values["plan_id"] or None, "parameters": parameters},
        )
        return redirect(f"/orgs/{org}/services/{service}?notice=service-updating")

    def on_error(problem: FormProblem) -> Response:
        return _page(
            request, session, me, org, service, problem=problem, refused="change", values=values
        )

    return submit(session, action, on_error, parameters_problem)


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
    values: dict[str, Any] | None = None,
) -> Response:
    view = org_view(session, me.actor, org)
    found = consumer.get_service(session=session, actor=me.actor, organisation=org, service=service)
    can_request = is_allowed(me.actor, Action.service_request, view.org.id)
    choices = (
        consumer.change_choices(session=session, actor=me.actor, organisation=org, service=service)
        if can_request
        else []
    )
    context = {
        "view": view,
        "tab": "services",
        "row": found,
        "names": catalog_names(session, me),
        "ended": found.status.value in ENDED,
        "can_request": can_request,
        "can_read_credentials": is_allowed(me.actor, Action.service_credentials, view.org.id),
        "credentials": credentials,
        "problem": problem,
        "refused": refused,
        "notice": notice,
        **_change_form(found, choices, values),
    }
    return render(request, "service.html", context, status=problem.status if problem else 200)


def _change_form(
    found: consumer.ConsumerServicePublic, choices: list[Plan], values: dict[str, Any] | None
) -> dict[str, Any]:
    """The change form: the plans to choose from, and the fields of the plan chosen (the
    service's own), filled with what was typed or else the service's parameters."""
    wanted = (values or {}).get("plan_id") or found.plan_id
    plan = next((p for p in choices if p.id == wanted), choices[0] if choices else None)
    if plan is None:
        return {"change_plans": [], "rows": [], "values": {}, "labels": {}}
    fields = plan_fields(dict(plan.parameters))
    if values is None:
        values = {"plan_id": plan.id} | plan_values(fields, dict(plan.parameters))
        kept = [f for f in fields if f.name in found.parameters and f.kind != "fixed"]
        values |= values_of(kept, found.parameters)
    return {
        "change_plans": [(p.id, p.name) for p in choices],
        "rows": field_rows(fields),
        "values": values,
        "labels": {"plan_id": "Plan", **{field.form_name: field.label for field in fields}},
        "no_fields": "This plan has no parameters.",
    }


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
