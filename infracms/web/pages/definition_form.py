"""/orgs/{org}/definitions/new and …/{name}/edit: the form generated from the module's
settings schema (``settings_form.py``). Nothing is saved when anything is refused."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session
from starlette.datastructures import FormData

from infracms.api.deps import PluginsDep, SessionDep
from infracms.modules.contract import Module
from infracms.plugins import Plugins
from infracms.services import credentials, definitions, inventory, modules, organisations
from infracms.services.authz import Action, authorize
from infracms.services.common import MAX_PAGE
from infracms.services.modules import module_or_404
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.settings_form import SettingField, field_rows, fields_of
from infracms.web.settings_values import (
    defaults_of,
    definition_problem,
    settings_from,
    submitted_values,
    values_of,
)
from infracms.web.templating import render

router = APIRouter()

NEW_DEFINITION = {"name": "", "description": "", "target": "", "message": ""}


@router.get("/orgs/{org}/definitions/new")
def new_definition(
    org: str,
    request: Request,
    session: SessionDep,
    me: SignedIn,
    plugins: PluginsDep,
    module: str = "",
) -> Response:
    """Choose a module, then fill in the form its settings schema makes."""
    found = organisations.get_organisation(session=session, actor=me.actor, name=org)
    authorize(me.actor, Action.definition_write, found.id)
    if not module:
        return _chooser(request, session, me, plugins, org)
    chosen = module_or_404(plugins, module)
    values = {**NEW_DEFINITION, **values_of(_fields(chosen), defaults_of(chosen))}
    return _form(request, session, me, org, chosen, values)


@router.post("/orgs/{org}/definitions/new")
def create_definition(
    org: str,
    request: Request,
    session: SessionDep,
    me: Poster,
    form: Form,
    plugins: PluginsDep,
) -> Response:
    """Create the definition and its first revision, or show the form with what is wrong."""
    chosen = module_or_404(plugins, text(form, "module"))
    fields = _fields(chosen)
    values = {**{key: text(form, key) for key in NEW_DEFINITION}, **submitted_values(fields, form)}

    def action() -> Response:
        data = {
            "name": values["name"],
            "module": chosen.name,
            "description": values["description"],
            "target": _target(values["target"]),
            "message": values["message"],
            "settings": settings_from(fields, values),
        }
        created = definitions.create_definition(
            session=session, actor=me.actor, plugins=plugins, organisation=org, data=data
        )
        return redirect(f"/orgs/{org}/definitions/{created.name}?notice=definition-created")

    def on_error(problem: FormProblem) -> Response:
        return _form(request, session, me, org, chosen, values, problem)

    return submit(session, action, on_error, definition_problem)


@router.get("/orgs/{org}/definitions/{name}/edit")
def edit_definition(
    org: str, name: str, request: Request, session: SessionDep, me: SignedIn, plugins: PluginsDep
) -> Response:
    """The form, filled in with the latest revision (a draft, if one was saved since)."""
    found = definitions.get_definition(session=session, actor=me.actor, organisation=org, name=name)
    authorize(me.actor, Action.definition_write, _org_id(session, me, org))
    latest = definitions.history(session=session, actor=me.actor, organisation=org, name=name)[0]
    chosen = module_or_404(plugins, found.module)
    values = {"message": "", "publish": True, **values_of(_fields(chosen), latest.settings)}
    return _form(request, session, me, org, chosen, values, name=name, based_on=latest.number)


@router.post("/orgs/{org}/definitions/{name}/edit")
def save_revision(
    org: str,
    name: str,
    request: Request,
    session: SessionDep,
    me: Poster,
    form: Form,
    plugins: PluginsDep,
) -> Response:
    """Save the settings as the next revision, published unless kept as a draft."""
    found = definitions.get_definition(session=session, actor=me.actor, organisation=org, name=name)
    chosen = module_or_404(plugins, found.module)
    fields = _fields(chosen)
    values = {**_revision_values(form), **submitted_values(fields, form)}

    def action() -> Response:
        data = {
            "settings": settings_from(fields, values),
            "message": values["message"],
            "publish": values["publish"],
        }
        definitions.save_revision(
            session=session, actor=me.actor, plugins=plugins, organisation=org, name=name, data=data
        )
        notice = "revision-saved" if values["publish"] else "draft-saved"
        return redirect(f"/orgs/{org}/definitions/{name}?notice={notice}")

    def on_error(problem: FormProblem) -> Response:
        based_on = text(form, "based_on")
        return _form(
            request, session, me, org, chosen, values, problem, name=name, based_on=based_on
        )

    return submit(session, action, on_error, definition_problem)


def _fields(module: type[Module]) -> list[SettingField]:
    return fields_of(module.settings_schema(), module.secret_fields())


def _revision_values(form: FormData) -> dict[str, Any]:
    return {"message": text(form, "message"), "publish": form.get("publish") is not None}


def _target(value: str) -> dict[str, str]:
    """``host:web-1`` or ``group:web`` as the service's target; {} when none was chosen."""
    kind, _, name = value.partition(":")
    return {kind: name} if kind in ("host", "group") and name else {}


def _org_id(session: Session, me: WebUser, org: str) -> Any:
    return organisations.get_organisation(session=session, actor=me.actor, name=org).id


def _chooser(
    request: Request, session: Session, me: WebUser, plugins: Plugins, org: str
) -> Response:
    found = modules.list_modules(session=session, actor=me.actor, plugins=plugins, organisation=org)
    enabled = [info for info in found if info.enabled]
    context = {"org": org, "modules": enabled, "section": "definitions"}
    return render(request, "definition_choose.html", context)


def _form(
    request: Request,
    session: Session,
    me: WebUser,
    org: str,
    module: type[Module],
    values: dict[str, Any],
    problem: FormProblem | None = None,
    *,
    name: str = "",
    based_on: Any = "",
) -> Response:
    scope: dict[str, Any] = {"session": session, "actor": me.actor, "organisation": org}
    fields = _fields(module)
    hosts = inventory.list_hosts(**scope, limit=MAX_PAGE)
    context = {
        "org": org,
        "name": name,
        "based_on": based_on,
        "module": module,
        "rows": field_rows(fields),
        "values": values,
        "problem": problem,
        "labels": {
            "name": "Name",
            "target": "Applies to",
            "description": "Description",
            "message": "Why this change",
            **{field.form_name: field.label for field in fields},
        },
        "hosts": [host.name for host in hosts.items],
        "more_hosts": hosts.total > len(hosts.items),
        "groups": [group.name for group in inventory.list_groups(**scope)],
        "credentials": [c.name for c in credentials.list_credentials(**scope)],
        "section": "definitions",
    }
    return render(
        request, "definition_form.html", context, status=problem.status if problem else 200
    )
