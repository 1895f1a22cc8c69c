"""/catalog: the federated catalog, every peer's offerings with who offers them, searched
and filtered (text, kind of service, region, capacity, price, peer); and
/catalog/{peer}/{offering}/{plan}: one plan with the form to request it for one of your
organisations, generated from the plan's parameters schema (``parameters_form.py``).

The catalog is read from the copies the last sync kept (``services/federation``);
requesting sends the signed request to the peer at once.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlmodel import Session

from infracms.api.deps import SessionDep
from infracms.api.peer import federation_context
from infracms.errors import InvalidInput, NotFound
from infracms.services import organisations
from infracms.services.authz import Action, is_allowed
from infracms.services.common import parse
from infracms.services.federation import consumer, directory
from infracms.services.federation.directory import (
    CatalogFilter,
    FederatedOffering,
    FederatedPlan,
)
from infracms.services.federation.node import FederationContext
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text
from infracms.web.parameters_form import (
    parameters_from,
    parameters_problem,
    plan_fields,
    plan_values,
    submitted,
)
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.settings_form import field_rows
from infracms.web.templating import render

router = APIRouter()

ContextDep = Annotated[FederationContext, Depends(federation_context)]
Filter = Annotated[str, Query(max_length=200)]
FILTER_LABELS = {
    "text": "Search",
    "kind": "Kind of service",
    "region": "Region",
    "peer": "Offered by",
    "min_capacity": "Places left, at least",
    "max_price": "Price, at most",
    "currency": "Currency",
}


@router.get("/catalog")
def catalog(
    request: Request,
    session: SessionDep,
    me: SignedIn,
    text: Filter = "",
    kind: Filter = "",
    region: Filter = "",
    peer: Filter = "",
    min_capacity: Filter = "",
    max_price: Filter = "",
    currency: Filter = "",
) -> Response:
    """Every peer's offerings that match the filters, each plan with a link to request it."""
    values = {
        "text": text, "kind": kind, "region": region, "peer": peer,
        "min_capacity": min_capacity, "max_price": max_price, "currency": currency,
    }  # fmt: skip
    values = {key: value.strip() for key, value in values.items()}
    everything = directory.search_catalog(session=session, actor=me.actor)
    found, problem = everything, None
    if any(values.values()):
        try:
            filters = parse(CatalogFilter, {key: value for key, value in values.items() if value})
            found = directory.search_catalog(session=session, actor=me.actor, filters=filters)
        except InvalidInput as exc:
            found, problem = [], FormProblem.of(exc)
    context = {
        "offerings": found,
        "total": sum(len(offering.plans) for offering in everything),
        "options": _options(everything),
        "stale": _stale(everything),
        "values": values,
        "labels": FILTER_LABELS,
        "filtered": any(values.values()),
        "problem": problem,
        "can_request": bool(_requesting_orgs(session, me)),
        "section": "catalog",
    }
    return render(request, "catalog.html", context, status=problem.status if problem else 200)


@router.get("/catalog/{peer}/{offering_id}/{plan_id}")
def plan_page(
    peer: str, offering_id: str, plan_id: str, request: Request, session: SessionDep, me: SignedIn
) -> Response:
    """A plan of a peer's offering, with the form to request it."""
    offering, plan = _plan(session, me, peer, offering_id, plan_id)
    orgs = _requesting_orgs(session, me)
    values = {"organisation": orgs[0] if len(orgs) == 1 else ""}
    values |= plan_values(plan_fields(plan.parameters), plan.parameters)
    return _form(request, session, me, offering, plan, values)


@router.post("/catalog/{peer}/{offering_id}/{plan_id}")
def request_plan(
    peer: str,
    offering_id: str,
    plan_id: str,
    request: Request,
    session: SessionDep,
    me: Poster,
    form: Form,
    ctx: ContextDep,
) -> Response:
    """Ask the peer for this plan for one of your organisations, then follow it there."""
    offering, plan = _plan(session, me, peer, offering_id, plan_id)
    fields = plan_fields(plan.parameters)
    values = {"organisation": text(form, "organisation")}
    values |= submitted(fields, plan.parameters, form)

    def action() -> Response:
        org = values["organisation"]
        data = {
            "peer": peer,
            "offering_id": offering_id,
            "plan_id": plan_id,
            "parameters": _parameters(session, me, plan, values),
        }
        asked = consumer.request_service(
            session=session, actor=me.actor, ctx=ctx, organisation=org, data=data
        )
        return redirect(f"/orgs/{org}/services/{asked.id}?notice=service-requested")

    def on_error(problem: FormProblem) -> Response:
        return _form(request, session, me, offering, plan, values, problem)

    return submit(session, action, on_error, parameters_problem)


def _parameters(
    session: Session, me: WebUser, plan: FederatedPlan, values: dict[str, Any]
) -> dict[str, Any]:
    """The plan's parameters; a missing organisation is reported with them (whether you
    may request for the one chosen, the service decides)."""
    errors: dict[str, str] = {}
    visible = organisations.list_organisations(session=session, actor=me.actor)
    if values["organisation"] not in {org.name for org in visible}:
        errors["organisation"] = "choose the organisation that gets the service"
    try:
        parameters = parameters_from(plan_fields(plan.parameters), plan.parameters, values)
    except InvalidInput as exc:
        errors |= exc.errors
    if errors:
        raise InvalidInput("the form has invalid fields", errors=errors)
    return parameters


def _plan(
    session: Session, me: WebUser, peer: str, offering_id: str, plan_id: str
) -> tuple[FederatedOffering, FederatedPlan]:
    found = directory.search_catalog(
        session=session, actor=me.actor, filters=CatalogFilter(peer=peer)
    )
    for offering in found:
        if offering.offering_id == offering_id:
            plan = next((p for p in offering.plans if p.id == plan_id), None)
            if plan is not None:
                return offering, plan
    raise NotFound(f"{peer} offers no plan {plan_id!r} of {offering_id!r} (as of the last sync)")


def _requesting_orgs(session: Session, me: WebUser) -> list[str]:
    """The organisations you may request services for."""
    return [
        org.name
        for org in organisations.list_organisations(session=session, actor=me.actor)
        if is_allowed(me.actor, Action.service_request, org.id)
    ]


def _options(found: list[FederatedOffering]) -> dict[str, list[str]]:
    """The choices of the filter form: what the catalog holds."""
    plans = [plan for offering in found for plan in offering.plans]
    return {
        "kind": sorted({offering.kind for offering in found}),
        "region": sorted({plan.region for plan in plans if plan.region}),
        "peer": sorted({offering.peer for offering in found}),
        "currency": sorted({str(plan.price["currency"]) for plan in plans if plan.price}),
    }


def _stale(found: list[FederatedOffering]) -> dict[str, FederatedOffering]:
    """Peers whose offerings come from a stale copy (the last sync failed, or none
    confirmed it lately), with one of their offerings: fetched when, and why stale."""
    return {offering.peer: offering for offering in found if offering.stale}


def _form(
    request: Request,
    session: Session,
    me: WebUser,
    offering: FederatedOffering,
    plan: FederatedPlan,
    values: dict[str, Any],
    problem: FormProblem | None = None,
) -> Response:
    fields = plan_fields(plan.parameters)
    context = {
        "offering": offering,
        "plan": plan,
        "orgs": _requesting_orgs(session, me),
        "rows": field_rows(fields),
        "values": values,
        "problem": problem,
        "credentials": [],
        "no_fields": "This plan has no parameters.",
        "labels": {"organisation": "For", **{field.form_name: field.label for field in fields}},
        "section": "catalog",
    }
    status = problem.status if problem else 200
    return render(request, "catalog_plan.html", context, status=status)
