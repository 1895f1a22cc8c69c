"""/orgs/{org}/offerings: what an organisation offers to peers. Owners publish one of the
offerings a module declares (on a host group, with the plans they choose, each with
price, capacity and region, and a policy: approve each request, or approve listed peers
automatically within a quota), and withdraw it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session
from starlette.datastructures import FormData

from infracms.api.deps import PluginsDep, SessionDep
from infracms.errors import InfracmsError, InvalidInput, NotFound
from infracms.models.federation import ApprovalPolicy
from infracms.modules.contract import Offering
from infracms.plugins import Plugins
from infracms.services import inventory, modules, organisations
from infracms.services.authz import Action, authorize, is_allowed
from infracms.services.federation import offerings
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import load_value, text
from infracms.web.pages.orgs import org_view
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()

UNITS = ("month", "year", "day", "hour", "once")
FIELDS = ("group", "offering_id", "name", "description", "kind", "settings", "policy")
TERMS = ("amount", "currency", "unit", "capacity", "region")
TERM_WORDS = {"amount": "price", "currency": "currency", "unit": "per", "capacity": "capacity"}
# What a term's pattern asks for, said instead of the pattern itself.
PATTERN_WORDS = {
    "amount": "must be an amount like 4.50 (at most 4 decimals)",
    "currency": "must be a currency code of 3 letters, like EUR",
    "region": "must be small letters, digits and dashes, like eu-west",
}
LABELS = {
    "group": "Host pool",
    "offering_id": "Catalog id",
    "name": "Name",
    "description": "Description",
    "kind": "Kind of service",
    "plans": "Plans",
    "settings": "Base settings",
    "policy": "Who decides",
    "auto_approve_peers": "Peers approved automatically",
    "quota": "Instances per peer",
}


@router.get("/orgs/{org}/offerings")
def org_offerings(
    org: str, request: Request, session: SessionDep, me: SignedIn, notice: str = ""
) -> Response:
    """The organisation's offerings, withdrawn ones last."""
    view = org_view(session, me.actor, org)
    found = offerings.list_publications(
        session=session, actor=me.actor, organisation=org, include_withdrawn=True
    )
    context = {
        "view": view,
        "tab": "offerings",
        "offerings": sorted(found, key=lambda o: o.withdrawn),
        "can_publish": is_allowed(me.actor, Action.offering_publish, view.org.id),
        "notice": notice,
    }
    return render(request, "org_offerings.html", context)


@router.get("/orgs/{org}/offerings/new")
def new_offering(
    org: str,
    request: Request,
    session: SessionDep,
    me: SignedIn,
    plugins: PluginsDep,
    module: str = "",
    offering: str = "",
) -> Response:
    """Choose one of the modules' offerings, then fill in its terms."""
    found = organisations.get_organisation(session=session, actor=me.actor, name=org)
    authorize(me.actor, Action.offering_publish, found.id)
    if not (module and offering):
        return _chooser(request, session, me, plugins, org)
    declared = _declared(plugins, module, offering)
    return _form(request, session, me, org, module, declared, _start(declared))


@router.post("/orgs/{org}/offerings/new")
def publish(
    org: str, request: Request, session: SessionDep, me: Poster, form: Form, plugins: PluginsDep
) -> Response:
    """Publish the offering, or show the form again with what is wrong."""
    module = text(form, "module")
    declared = _declared(plugins, module, text(form, "offering"))
    values = _values(form, declared)
    chosen = [plan.name for plan in declared.plans if values[f"plan.{plan.name}"]]

    def action() -> Response:
        data = _data(module, declared, values, chosen)
        offerings.publish_offering(
            session=session, actor=me.actor, plugins=plugins, organisation=org, data=data
        )
        return redirect(f"/orgs/{org}/offerings?notice=offering-published")

    def on_error(problem: FormProblem) -> Response:
        return _form(request, session, me, org, module, declared, values, problem)

    return submit(session, action, on_error, lambda exc: _problem(exc, chosen))


@router.get("/orgs/{org}/offerings/{offering_id}/withdraw")
def confirm_withdraw(
    org: str, offering_id: str, request: Request, session: SessionDep, me: SignedIn
) -> Response:
    """Ask before withdrawing an offering."""
    found = organisations.get_organisation(session=session, actor=me.actor, name=org)
    authorize(me.actor, Action.offering_publish, found.id)
    _publication(session, me, org, offering_id)
    return _confirm(request, org, offering_id)


@router.post("/orgs/{org}/offerings/{offering_id}/withdraw")
def withdraw(
    org: str, offering_id: str, request: Request, session: SessionDep, me: Poster
) -> Response:
    """Take the offering out of the catalog; its instances stay until deprovisioned."""

    def action() -> Response:
        offerings.withdraw_offering(
            session=session, actor=me.actor, organisation=org, offering_id=offering_id
        )
        return redirect(f"/orgs/{org}/offerings?notice=offering-withdrawn")

    return submit(session, action, lambda problem: _confirm(request, org, offering_id, problem))


def _declared(plugins: Plugins, module: str, name: str) -> Offering:
    for offering in offerings.module_offerings(plugins).get(module, []):
        if offering.name == name:
            return offering
    raise NotFound(f"module {module!r} declares no offering {name!r}")


def _publication(session: Session, me: WebUser, org: str, offering_id: str) -> Any:
    found = offerings.list_publications(
        session=session, actor=me.actor, organisation=org, include_withdrawn=True
    )
    for publication in found:
        if publication.offering_id == offering_id:
            return publication
    raise NotFound(f"no offering {offering_id!r} in {org}")


def _start(declared: Offering) -> dict[str, Any]:
    """A new offering's form: every plan offered, manual approval, no prices yet."""
    values: dict[str, Any] = {key: "" for key in FIELDS}
    values |= {"policy": ApprovalPolicy.manual.value, "auto_approve_peers": "", "quota": "1"}
    values["bindable"] = True
    for plan in declared.plans:
        values[f"plan.{plan.name}"] = True
        values |= {f"plan.{plan.name}.{term}": "" for term in TERMS}
        values[f"plan.{plan.name}.unit"] = "month"
    return values


def _values(form: FormData, declared: Offering) -> dict[str, Any]:
    """The form as typed."""
    values: dict[str, Any] = {key: text(form, key, strip=key != "settings") for key in FIELDS}
    values["auto_approve_peers"] = text(form, "auto_approve_peers", strip=False)
    values["quota"] = text(form, "quota")
    values["bindable"] = form.get("bindable") is not None
    for plan in declared.plans:
        name = f"plan.{plan.name}"
        values[name] = form.get(name) is not None
        values |= {f"{name}.{term}": text(form, f"{name}.{term}") for term in TERMS}
    return values


def _data(
    module: str, declared: Offering, values: dict[str, Any], chosen: list[str]
) -> dict[str, Any]:
    """What the service publishes; InvalidInput on fields that cannot even be read."""
    errors: dict[str, str] = {}
    data: dict[str, Any] = {
        "module": module,
        "offering": declared.name,
        "group": values["group"],
        "plans": [_terms(name, values, errors) for name in chosen],
        "policy": values["policy"],
        "auto_approve_peers": [
            line.strip() for line in values["auto_approve_peers"].splitlines() if line.strip()
        ],
        "quota": _number(values["quota"], "quota", errors, blank=0),
        "bindable": values["bindable"],
        "settings": _settings(values["settings"], errors),
    }
    for key in ("offering_id", "name", "description", "kind"):
        if values[key]:
            data[key] = values[key]
    if errors:
        raise InvalidInput("the form has invalid fields", errors=errors)
    return data


def _terms(plan: str, values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """One chosen plan's terms; a blank amount means no price."""
    field = f"plan.{plan}"
    amount = values[f"{field}.amount"]
    price = None
    if amount:
        price = {
            "amount": amount,
            "currency": values[f"{field}.currency"].upper(),
            "unit": values[f"{field}.unit"],
        }
    return {
        "name": plan,
        "price": price,
        "capacity": _number(values[f"{field}.capacity"], f"{field}.capacity", errors),
        "region": values[f"{field}.region"] or None,
    }


def _number(value: str, name: str, errors: dict[str, str], blank: int | None = None) -> Any:
    if not value:
        return blank
    try:
        return int(value)
    except ValueError:
        errors[name] = "must be a whole number"
        return blank


def _settings(source: str, errors: dict[str, str]) -> dict[str, Any]:
    if not source.strip():
        return {}
    try:
        value = load_value(source)
    except ValueError as exc:
        errors["settings"] = str(exc)
        return {}
    if not isinstance(value, dict):
        errors["settings"] = "must be a mapping of setting names to values"
        return {}
    return value


def _problem(exc: InfracmsError, chosen: list[str]) -> FormProblem:
    """The service's errors by form field: ``plans.1.price.amount`` is the second chosen
    plan's amount, ``plan.<name>.amount``."""
    errors: dict[str, str] = {}
    for key, message in exc.errors.items():
        parts = key.split(".")
        if parts[0] == "plans" and len(parts) > 2 and parts[1].isdigit():
            index, term = int(parts[1]), parts[-1] if parts[-1] in TERMS else "amount"
            name = f"plan.{chosen[index]}.{term}" if index < len(chosen) else "plans"
            if message.startswith("String should match pattern"):
                message = PATTERN_WORDS.get(term, message)
            errors.setdefault(name, message)
        elif parts[0] == "plan":  # read by the page: already a form field's name
            errors.setdefault(key, message)
        else:
            errors.setdefault(parts[0], message)
    found = FormProblem.of(exc)
    return FormProblem(summary=found.summary, status=found.status, errors=errors)


def _chooser(
    request: Request, session: Session, me: WebUser, plugins: Plugins, org: str
) -> Response:
    found = modules.list_modules(session=session, actor=me.actor, plugins=plugins, organisation=org)
    infos = {info.name: info for info in found}
    declared = offerings.module_offerings(plugins)
    context = {
        "org": org,
        "section": "orgs",
        "choices": [
            (infos[name], offering)
            for name, offered in declared.items()
            if name in infos
            for offering in offered
        ],
    }
    return render(request, "offering_choose.html", context)


def _form(
    request: Request,
    session: Session,
    me: WebUser,
    org: str,
    module: str,
    declared: Offering,
    values: dict[str, Any],
    problem: FormProblem | None = None,
) -> Response:
    groups = inventory.list_groups(session=session, actor=me.actor, organisation=org)
    context = {
        "org": org,
        "section": "orgs",
        "module": module,
        "declared": declared,
        "groups": [group.name for group in groups],
        "units": UNITS,
        "values": values,
        "problem": problem,
        "labels": LABELS | _plan_labels(declared),
        "default_id": f"{org}-{declared.name}".replace("_", "-"),
        "parameters": {
            plan.name: list(plan.parameters.get("properties", {})) for plan in declared.plans
        },
    }
    status = problem.status if problem else 200
    return render(request, "offering_form.html", context, status=status)


def _plan_labels(declared: Offering) -> dict[str, str]:
    return {
        f"plan.{plan.name}.{term}": f"{plan.title}: {TERM_WORDS.get(term, term)}"
        for plan in declared.plans
        for term in TERMS
    }


def _confirm(
    request: Request, org: str, offering_id: str, problem: FormProblem | None = None
) -> Response:
    context = {
        "title": f"Withdraw {offering_id}?",
        "message": "Peers no longer see it at their next catalog sync and cannot request it. "
        "Instances already provided stay until their requesters deprovision them.",
        "action": f"/orgs/{org}/offerings/{offering_id}/withdraw",
        "cancel": f"/orgs/{org}/offerings",
        "button": "Withdraw offering",
        "problem": problem,
        "section": "orgs",
    }
    return render(request, "confirm.html", context, status=problem.status if problem else 200)
