"""/orgs/{org} (the hosts tab) and /orgs/{org}/hosts/…: list, add, show, edit, delete."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request, Response
from sqlmodel import Session

from infracms.api.deps import PluginsDep, SessionDep, SettingsDep
from infracms.errors import Conflict
from infracms.models.host import HostCreate, HostFilter, HostPublic, HostSort, HostUpdate
from infracms.models.run import HostOutcome
from infracms.models.schedule import HostDriftPublic
from infracms.plugins import Plugins
from infracms.services import credentials, drift, inventory, organisations, rendering
from infracms.services.authz import Action, authorize, is_allowed
from infracms.services.common import parse
from infracms.services.host_state import STANDINGS
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import or_none, show_value, show_variables, text, texts, with_variables
from infracms.web.pages.orgs import org_view
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()

PAGE_SIZE = 25
NEW_HOST: dict[str, Any] = {
    "name": "",
    "address": "",
    "ssh_port": "22",
    "ssh_user": "root",
    "credential": "",
    "groups": [],
    "variables": "",
    "host_key": "",
}


@router.get("/orgs/{org}")
def org_hosts(
    org: str,
    request: Request,
    session: SessionDep,
    me: SignedIn,
    q: Annotated[str, Query(max_length=63)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    sort: HostSort = "name",
) -> Response:
    """An organisation's overview: its hosts, a page at a time, with a search by name,
    filters by group, pinned key and standing (the dashboard links here), and sorting by
    the column headers (which keep the search and filters)."""
    view = org_view(session, me.actor, org)
    given = {k: request.query_params[k] for k in HOST_FILTERS if request.query_params.get(k)}
    filters = parse(HostFilter, {**given, "search": q.strip() or None})
    found = inventory.list_hosts(
        session=session,
        actor=me.actor,
        organisation=org,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
        filters=filters,
        sort=sort,
    )
    pages = max(1, -(-found.total // PAGE_SIZE))
    filter_query = urlencode(filters.model_dump(exclude_none=True, exclude={"search"}))
    kept = "&".join(part for part in (f"q={quote(q)}" if q else "", filter_query) if part)
    context = {
        "view": view,
        "tab": "hosts",
        "hosts": found,
        "q": q,
        "page": page,
        "pages": pages,
        "filters": filters,
        "filter_query": filter_query,
        "sort": sort,
        "columns": _sort_columns(f"/orgs/{org}", kept, sort),
        "outcome_words": OUTCOME_WORDS,
        "groups": [
            g.name for g in inventory.list_groups(session=session, actor=me.actor, organisation=org)
        ],
        "standings": STANDINGS,
    }
    return render(request, "org_hosts.html", context)


HOST_FILTERS = ("group", "key", "standing")
SORTABLE = {
    "name": "Name",
    "address": "Address",
    "group": "Groups",
    "last_outcome": "Last run",
    "last_run_at": "Ran",
}
OUTCOME_WORDS = {
    HostOutcome.ok: "ok",
    HostOutcome.changed: "changed",
    HostOutcome.failed: "failed",
    HostOutcome.unreachable: "unreachable",
    HostOutcome.not_reached: "not reached",
}


def _sort_columns(base: str, kept: str, sort: str) -> dict[str, dict[str, str]]:
    """Each sortable column's header: its label, the link that sorts by it (ascending,
    or the other way when it is the current order; back to the first page, with the
    search and filters kept) and its aria-sort value."""
    columns = {}
    for key, label in SORTABLE.items():
        current = sort.removeprefix("-") == key
        descending = sort.startswith("-")
        toggled = key if not current or descending else f"-{key}"
        order = ("descending" if descending else "ascending") if current else ""
        query = "&".join(part for part in (kept, f"sort={toggled}") if part)
        columns[key] = {"label": label, "href": f"{base}?{query}", "aria_sort": order}
    return columns


@router.get("/orgs/{org}/hosts/new")
def new_host(org: str, request: Request, session: SessionDep, me: SignedIn) -> Response:
    """The form to add a host."""
    found = organisations.get_organisation(session=session, actor=me.actor, name=org)
    authorize(me.actor, Action.host_connect, found.id)
    return _form(request, session, me, org, NEW_HOST)


@router.post("/orgs/{org}/hosts/new")
def create_host(
    org: str,
    request: Request,
    session: SessionDep,
    me: Poster,
    form: Form,
    settings: SettingsDep,
) -> Response:
    """Add a host, or show the form again with what is wrong."""
    values = _values(form)

    def action() -> Response:
        data = with_variables(HostCreate, _data(values, with_name=True), values["variables"])
        host = inventory.create_host(
            session=session,
            actor=me.actor,
            organisation=org,
            data=data,
            allow_node_target=settings.allow_node_target,
        )
        return redirect(f"/orgs/{org}/hosts/{host.name}?notice=host-created")

    def on_error(problem: FormProblem) -> Response:
        return _form(request, session, me, org, values, problem)

    return submit(session, action, on_error)


@router.get("/orgs/{org}/hosts/{name}")
def show_host(
    org: str,
    name: str,
    request: Request,
    session: SessionDep,
    me: SignedIn,
    plugins: PluginsDep,
    notice: str = "",
) -> Response:
    """A host, what its definitions give it; the edit form for those who may change it."""
    host = inventory.get_host(session=session, actor=me.actor, organisation=org, name=name)
    gets = _host_gets(session, me, plugins, org, name)
    found = drift.host_drift(session=session, actor=me.actor, organisation=org, host=name)
    return _form(
        request,
        session,
        me,
        org,
        _values_of(host),
        host=host,
        notice=notice,
        gets=gets,
        drift_state=found,
    )


@router.post("/orgs/{org}/hosts/{name}")
def update_host(
    org: str,
    name: str,
    request: Request,
    session: SessionDep,
    me: Poster,
    form: Form,
    settings: SettingsDep,
) -> Response:
    """Save a host's changes, or show the form again with what is wrong.

    Editors see the connection facts without fields: only groups and variables are
    taken from their form. A pinned key is not a field: it is replaced with `rekey`."""
    values = {**_values(form), "name": name}

    def action() -> Response:
        host = inventory.get_host(session=session, actor=me.actor, organisation=org, name=name)
        fields = _data(values, with_name=False)
        if not is_allowed(me.actor, Action.host_connect, host.organisation_id):
            fields = {"groups": fields["groups"]}
        elif host.host_key:
            del fields["host_key"]
        data = with_variables(HostUpdate, fields, values["variables"])
        inventory.update_host(
            session=session,
            actor=me.actor,
            organisation=org,
            name=name,
            data=data,
            allow_node_target=settings.allow_node_target,
        )
        return redirect(f"/orgs/{org}/hosts/{name}?notice=saved")

    def on_error(problem: FormProblem) -> Response:
        host = inventory.get_host(session=session, actor=me.actor, organisation=org, name=name)
        return _form(request, session, me, org, values, problem, host=host)

    return submit(session, action, on_error)


@router.get("/orgs/{org}/hosts/{name}/delete")
def confirm_delete_host(
    org: str, name: str, request: Request, session: SessionDep, me: SignedIn
) -> Response:
    """Ask before removing a host."""
    host = inventory.get_host(session=session, actor=me.actor, organisation=org, name=name)
    authorize(me.actor, Action.host_write, host.organisation_id)
    return _confirm(request, org, name)


@router.post("/orgs/{org}/hosts/{name}/delete")
def delete_host(org: str, name: str, request: Request, session: SessionDep, me: Poster) -> Response:
    """Remove a host from the inventory (nothing is done to the machine)."""

    def action() -> Response:
        inventory.delete_host(session=session, actor=me.actor, organisation=org, name=name)
        return redirect(f"/orgs/{org}?notice=host-deleted")

    return submit(session, action, lambda problem: _confirm(request, org, name, problem))


def _host_gets(
    session: Session, me: WebUser, plugins: Plugins, org: str, name: str
) -> dict[str, Any]:
    """The modules and settings the published definitions give the host, as YAML, or
    the conflict that stops them from being worked out."""
    try:
        found = rendering.host_settings(
            session=session, actor=me.actor, plugins=plugins, organisation=org
        )
    except Conflict as exc:
        return {"conflict": exc.detail, "modules": {}}
    modules = found.get(name, {})
    return {"conflict": "", "modules": {module: show_value(v) for module, v in modules.items()}}


def _values(form: Any) -> dict[str, Any]:
    return {
        "name": text(form, "name"),
        "address": text(form, "address"),
        "ssh_port": text(form, "ssh_port"),
        "ssh_user": text(form, "ssh_user"),
        "credential": text(form, "credential"),
        "groups": texts(form, "groups"),
        "variables": text(form, "variables", strip=False),
        "host_key": text(form, "host_key"),
    }


def _values_of(host: HostPublic) -> dict[str, Any]:
    return {
        "name": host.name,
        "address": host.address,
        "ssh_port": str(host.ssh_port),
        "ssh_user": host.ssh_user,
        "credential": host.credential or "",
        "groups": host.groups,
        "variables": show_variables(host.variables),
        "host_key": host.host_key or "",
    }


def _data(values: dict[str, Any], *, with_name: bool) -> dict[str, Any]:
    data = {key: values[key] for key in ("address", "ssh_port", "ssh_user", "groups")}
    data["credential"] = or_none(values["credential"])
    data["host_key"] = or_none(values["host_key"])
    return {"name": values["name"], **data} if with_name else data


def _form(
    request: Request,
    session: Session,
    me: WebUser,
    org: str,
    values: dict[str, Any],
    problem: FormProblem | None = None,
    *,
    host: HostPublic | None = None,
    notice: str = "",
    gets: dict[str, Any] | None = None,
    drift_state: HostDriftPublic | None = None,
) -> Response:
    found = organisations.get_organisation(session=session, actor=me.actor, name=org)
    scope: dict[str, Any] = {"session": session, "actor": me.actor, "organisation": org}
    context = {
        "org": found,
        "host": host,
        "values": values,
        "problem": problem,
        "notice": notice,
        "section": "orgs",
        "can_edit": is_allowed(me.actor, Action.host_write, found.id),
        "can_connect": is_allowed(me.actor, Action.host_connect, found.id),
        "can_plan": is_allowed(me.actor, Action.run_plan, found.id),
        "can_apply": is_allowed(me.actor, Action.run_apply, found.id),
        "gets": gets,
        "drift": drift_state,
        "credentials": [c.name for c in credentials.list_credentials(**scope)],
        "groups": [g.name for g in inventory.list_groups(**scope)],
    }
    template = "host.html" if host else "host_new.html"
    return render(request, template, context, status=problem.status if problem else 200)


def _confirm(request: Request, org: str, name: str, problem: FormProblem | None = None) -> Response:
    context = {
        "title": f"Remove host {name}?",
        "message": "The host leaves the inventory. Nothing is done to the machine itself.",
        "action": f"/orgs/{org}/hosts/{name}/delete",
        "cancel": f"/orgs/{org}/hosts/{name}",
        "button": "Remove host",
        "problem": problem,
        "section": "orgs",
    }
    return render(request, "confirm.html", context, status=problem.status if problem else 200)
