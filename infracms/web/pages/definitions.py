"""/definitions and /orgs/{org}/definitions/…: the list, one definition with its
revision history, the diff between any two revisions, publishing, rolling back, retiring.

The create and edit forms are in ``definition_form.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlmodel import Session

from infracms.api.deps import PluginsDep, SessionDep
from infracms.models.definition import DefinitionPublic
from infracms.plugins import Plugins
from infracms.services import definitions, organisations
from infracms.services.authz import Action, authorize, is_allowed
from infracms.web.diffs import line_kinds
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text
from infracms.web.pages.orgs import org_view
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.settings_form import SettingField, fields_of
from infracms.web.settings_values import shown_settings
from infracms.web.templating import render

router = APIRouter()
Revision = Annotated[int, Query(ge=1, le=1_000_000_000)]


def module_fields(plugins: Plugins, module: str) -> list[SettingField]:
    """The form fields of a module's settings ([] for a module no longer installed)."""
    found = plugins.registry.get(module)
    if found is None:
        return []
    return fields_of(found.settings_schema(), found.secret_fields())


@router.get("/definitions")
def all_definitions(request: Request, session: SessionDep, me: SignedIn) -> Response:
    """The definitions of every organisation you can see, by organisation."""
    orgs = organisations.list_organisations(session=session, actor=me.actor)
    found = [
        (org, definitions.list_definitions(session=session, actor=me.actor, organisation=org.name))
        for org in orgs
    ]
    can = {org.name: is_allowed(me.actor, Action.definition_write, org.id) for org in orgs}
    context = {"found": found, "can_write": can, "section": "definitions"}
    return render(request, "definitions.html", context)


@router.get("/orgs/{org}/definitions")
def org_definitions(
    org: str,
    request: Request,
    session: SessionDep,
    me: SignedIn,
    retired: bool = False,
    notice: str = "",
) -> Response:
    """An organisation's definitions: module, target, published and latest revision."""
    view = org_view(session, me.actor, org)
    found = definitions.list_definitions(
        session=session, actor=me.actor, organisation=org, include_retired=retired
    )
    context = {
        "view": view,
        "tab": "definitions",
        "definitions": found,
        "retired": retired,
        "notice": notice,
        "section": "definitions",
    }
    return render(request, "org_definitions.html", context)


@router.get("/orgs/{org}/definitions/{name}")
def show_definition(
    org: str,
    name: str,
    request: Request,
    session: SessionDep,
    me: SignedIn,
    plugins: PluginsDep,
    notice: str = "",
) -> Response:
    """A definition: its published settings, its revisions, and what can be done with it."""
    return _page(request, session, me, plugins, org, name, notice=notice)


@router.get("/orgs/{org}/definitions/{name}/diff")
def diff_revisions(
    org: str,
    name: str,
    request: Request,
    session: SessionDep,
    me: SignedIn,
    old: Revision,
    new: Revision,
) -> Response:
    """What changed between two revisions, field by field and as a text diff."""
    found = definitions.get_definition(session=session, actor=me.actor, organisation=org, name=name)
    changes = definitions.diff(
        session=session, actor=me.actor, organisation=org, name=name, old=old, new=new
    )
    history = definitions.history(session=session, actor=me.actor, organisation=org, name=name)
    context = {
        "org": org,
        "definition": found,
        "diff": changes,
        "numbers": [revision.number for revision in history],
        "lines": line_kinds(changes["text"].splitlines()),
        "can_edit": is_allowed(me.actor, Action.definition_write, _org_id(session, me, org)),
        "section": "definitions",
    }
    return render(request, "definition_diff.html", context)


@router.post("/orgs/{org}/definitions/{name}/rollback")
def rollback(
    org: str,
    name: str,
    request: Request,
    session: SessionDep,
    me: Poster,
    form: Form,
    plugins: PluginsDep,
) -> Response:
    """Publish an older revision's settings again, as a new revision."""
    data = {"revision": text(form, "revision"), "message": text(form, "message")}

    def action() -> Response:
        definitions.rollback(
            session=session, actor=me.actor, plugins=plugins, organisation=org, name=name, data=data
        )
        return redirect(f"/orgs/{org}/definitions/{name}?notice=rolled-back")

    def on_error(problem: FormProblem) -> Response:
        title = f"Could not roll back to revision {data['revision']}"
        return _page(request, session, me, plugins, org, name, problem=problem, title=title)

    return submit(session, action, on_error)


@router.post("/orgs/{org}/definitions/{name}/publish")
def publish(
    org: str,
    name: str,
    request: Request,
    session: SessionDep,
    me: Poster,
    form: Form,
    plugins: PluginsDep,
) -> Response:
    """Publish a saved revision (a draft) as it is."""
    number = text(form, "revision")

    def action() -> Response:
        definitions.publish_revision(
            session=session, actor=me.actor, organisation=org, name=name, number=int(number)
        )
        return redirect(f"/orgs/{org}/definitions/{name}?notice=revision-published")

    def on_error(problem: FormProblem) -> Response:
        title = f"Could not publish revision {number}"
        return _page(request, session, me, plugins, org, name, problem=problem, title=title)

    if not number.isdigit():
        return redirect(f"/orgs/{org}/definitions/{name}")
    return submit(session, action, on_error)


@router.get("/orgs/{org}/definitions/{name}/retire")
def confirm_retire(
    org: str, name: str, request: Request, session: SessionDep, me: SignedIn
) -> Response:
    """Ask before retiring a definition."""
    authorize(me.actor, Action.definition_write, _org_id(session, me, org))
    definitions.get_definition(session=session, actor=me.actor, organisation=org, name=name)
    return _confirm(request, org, name)


@router.post("/orgs/{org}/definitions/{name}/retire")
def retire(org: str, name: str, request: Request, session: SessionDep, me: Poster) -> Response:
    """Stop applying a definition; its history stays."""

    def action() -> Response:
        definitions.retire_definition(session=session, actor=me.actor, organisation=org, name=name)
        return redirect(f"/orgs/{org}/definitions?notice=definition-retired")

    return submit(session, action, lambda problem: _confirm(request, org, name, problem))


def _org_id(session: Session, me: WebUser, org: str) -> Any:
    return organisations.get_organisation(session=session, actor=me.actor, name=org).id


def _page(
    request: Request,
    session: Session,
    me: WebUser,
    plugins: Plugins,
    org: str,
    name: str,
    *,
    problem: FormProblem | None = None,
    title: str = "",
    notice: str = "",
) -> Response:
    view = org_view(session, me.actor, org)
    found: DefinitionPublic = definitions.get_definition(
        session=session, actor=me.actor, organisation=org, name=name
    )
    history = definitions.history(session=session, actor=me.actor, organisation=org, name=name)
    fields = module_fields(plugins, found.module)
    module = plugins.registry.get(found.module)
    context = {
        "view": view,
        "definition": found,
        "module_title": module.title if module else found.module,
        "settings": shown_settings(fields, found.settings or {}),
        "history": history,
        "problem": problem,
        "problem_title": title,
        "notice": notice,
        "section": "definitions",
    }
    status = problem.status if problem else 200
    return render(request, "definition.html", context, status=status)


def _confirm(request: Request, org: str, name: str, problem: FormProblem | None = None) -> Response:
    context = {
        "title": f"Retire definition {name}?",
        "message": "Runs stop applying it. Nothing is removed from the hosts, and its "
        "revisions stay in the history.",
        "action": f"/orgs/{org}/definitions/{name}/retire",
        "cancel": f"/orgs/{org}/definitions/{name}",
        "button": "Retire definition",
        "problem": problem,
        "section": "definitions",
    }
    return render(request, "confirm.html", context, status=problem.status if problem else 200)
