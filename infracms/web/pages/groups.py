"""/orgs/{org}/groups…: the group tree, and adding, editing and deleting groups."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from infracms.api.deps import SessionDep
from infracms.models.host import GroupCreate, GroupPublic, GroupUpdate
from infracms.services import group_hosts, inventory, organisations
from infracms.services.authz import Action, authorize, is_allowed
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import or_none, show_variables, text, with_variables
from infracms.web.pages.orgs import org_view
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()

CANDIDATES = 200  # hosts offered as checkboxes; more are typed by name
NEW_GROUP = {"name": "", "description": "", "parent": "", "variables": ""}


@router.get("/orgs/{org}/groups")
def org_groups(
    org: str, request: Request, session: SessionDep, me: SignedIn, notice: str = ""
) -> Response:
    """An organisation's groups, as a tree."""
    view = org_view(session, me.actor, org)
    groups = inventory.list_groups(session=session, actor=me.actor, organisation=org)
    context = {
        "view": view,
        "tab": "groups",
        "children": {group.name: [g for g in groups if g.parent == group.name] for group in groups},
        "roots": [group for group in groups if group.parent is None],
        "notice": notice,
    }
    return render(request, "org_groups.html", context)


@router.get("/orgs/{org}/groups/new")
def new_group(org: str, request: Request, session: SessionDep, me: SignedIn) -> Response:
    """The form to add a group."""
    found = organisations.get_organisation(session=session, actor=me.actor, name=org)
    authorize(me.actor, Action.group_write, found.id)
    return _form(request, session, me, org, NEW_GROUP)


@router.post("/orgs/{org}/groups/new")
def create_group(
    org: str, request: Request, session: SessionDep, me: Poster, form: Form
) -> Response:
    """Add a group, or show the form again with what is wrong."""
    values = _values(form)

    def action() -> Response:
        data = {"name": values["name"], **_data(values)}
        data = with_variables(GroupCreate, data, values["variables"])
        inventory.create_group(session=session, actor=me.actor, organisation=org, data=data)
        return redirect(f"/orgs/{org}/groups?notice=group-created")

    def on_error(problem: FormProblem) -> Response:
        return _form(request, session, me, org, values, problem)

    return submit(session, action, on_error)


@router.get("/orgs/{org}/groups/{name}")
def show_group(
    org: str, name: str, request: Request, session: SessionDep, me: SignedIn, notice: str = ""
) -> Response:
    """A group; with the edit form for those who may change it."""
    group = inventory.get_group(session=session, actor=me.actor, organisation=org, name=name)
    return _form(request, session, me, org, _shown(group), group=group, notice=notice)


@router.post("/orgs/{org}/groups/{name}")
def update_group(
    org: str, name: str, request: Request, session: SessionDep, me: Poster, form: Form
) -> Response:
    """Save a group's changes, or show the form again with what is wrong."""
    values = {**_values(form), "name": name}

    def action() -> Response:
        data = with_variables(GroupUpdate, _data(values), values["variables"])
        inventory.update_group(
            session=session, actor=me.actor, organisation=org, name=name, data=data
        )
        return redirect(f"/orgs/{org}/groups/{name}?notice=saved")

    def on_error(problem: FormProblem) -> Response:
        group = inventory.get_group(session=session, actor=me.actor, organisation=org, name=name)
        return _form(request, session, me, org, values, problem, group=group)

    return submit(session, action, on_error)


@router.post("/orgs/{org}/groups/{name}/hosts")
def add_hosts(
    org: str, name: str, request: Request, session: SessionDep, me: Poster, form: Form
) -> Response:
    """Put the chosen (or typed) hosts into the group."""
    typed = text(form, "typed").replace(",", " ").split()
    chosen = [value for value in form.getlist("hosts") if isinstance(value, str)] + typed

    def action() -> Response:
        data = {"hosts": chosen}
        group_hosts.add_hosts(
            session=session, actor=me.actor, organisation=org, name=name, data=data
        )
        return redirect(f"/orgs/{org}/groups/{name}?notice=hosts-added")

    def on_error(problem: FormProblem) -> Response:
        group = inventory.get_group(session=session, actor=me.actor, organisation=org, name=name)
        values = _shown(group)
        return _form(request, session, me, org, values, group=group, hosts_problem=problem)

    return submit(session, action, on_error)


@router.post("/orgs/{org}/groups/{name}/hosts/{host}/remove")
def remove_host(org: str, name: str, host: str, session: SessionDep, me: Poster) -> Response:
    """Take a host out of the group; it stays in the inventory."""
    data = {"hosts": [host]}
    group_hosts.remove_hosts(
        session=session, actor=me.actor, organisation=org, name=name, data=data
    )
    return redirect(f"/orgs/{org}/groups/{name}?notice=host-removed-from-group")


@router.get("/orgs/{org}/groups/{name}/delete")
def confirm_delete_group(
    org: str, name: str, request: Request, session: SessionDep, me: SignedIn
) -> Response:
    """Ask before deleting a group."""
    group = inventory.get_group(session=session, actor=me.actor, organisation=org, name=name)
    authorize(me.actor, Action.group_write, group.organisation_id)
    return _confirm(request, org, name)


@router.post("/orgs/{org}/groups/{name}/delete")
def delete_group(
    org: str, name: str, request: Request, session: SessionDep, me: Poster
) -> Response:
    """Delete a group with no child groups; its hosts stay."""

    def action() -> Response:
        inventory.delete_group(session=session, actor=me.actor, organisation=org, name=name)
        return redirect(f"/orgs/{org}/groups?notice=group-deleted")

    return submit(session, action, lambda problem: _confirm(request, org, name, problem))


def _shown(group: GroupPublic) -> dict[str, str]:
    return {
        "name": group.name,
        "description": group.description,
        "parent": group.parent or "",
        "variables": show_variables(group.variables),
    }


def _members(session: Session, me: WebUser, org: str, group: GroupPublic) -> dict[str, Any]:
    """The group's hosts, and up to CANDIDATES others to offer for adding."""
    hosts = group_hosts.group_hosts(
        session=session, actor=me.actor, organisation=org, name=group.name
    )
    inside = {host.name for host in hosts}
    others = inventory.list_hosts(
        session=session, actor=me.actor, organisation=org, limit=CANDIDATES + len(inside)
    )
    candidates = [host.name for host in others.items if host.name not in inside][:CANDIDATES]
    return {
        "hosts": hosts,
        "candidates": candidates,
        "more_hosts": others.total > len(others.items),
    }


def _values(form: Any) -> dict[str, str]:
    return {
        "name": text(form, "name"),
        "description": text(form, "description"),
        "parent": text(form, "parent"),
        "variables": text(form, "variables", strip=False),
    }


def _data(values: dict[str, str]) -> dict[str, Any]:
    return {"description": values["description"], "parent": or_none(values["parent"])}


def _descendants(group: GroupPublic, by_name: dict[str, GroupPublic]) -> set[str]:
    """The group and every group inside it: none of them can be its parent."""
    found, todo = set(), [group.name]
    while todo:
        name = todo.pop()
        if name not in found and name in by_name:
            found.add(name)
            todo.extend(by_name[name].children)
    return found


def _form(
    request: Request,
    session: Session,
    me: WebUser,
    org: str,
    values: dict[str, str],
    problem: FormProblem | None = None,
    *,
    group: GroupPublic | None = None,
    notice: str = "",
    hosts_problem: FormProblem | None = None,
) -> Response:
    found = organisations.get_organisation(session=session, actor=me.actor, name=org)
    groups = inventory.list_groups(session=session, actor=me.actor, organisation=org)
    by_name = {other.name: other for other in groups}
    excluded = _descendants(group, by_name) if group else set()
    context = {
        "org": found,
        "group": group,
        "values": values,
        "problem": problem,
        "notice": notice,
        "section": "orgs",
        "can_edit": is_allowed(me.actor, Action.group_write, found.id),
        "can_plan": is_allowed(me.actor, Action.run_plan, found.id),
        "can_apply": is_allowed(me.actor, Action.run_apply, found.id),
        "parents": [name for name in by_name if name not in excluded],
        "hosts_problem": hosts_problem,
        **(_members(session, me, org, group) if group else {}),
    }
    template = "group.html" if group else "group_new.html"
    failed = problem or hosts_problem
    return render(request, template, context, status=failed.status if failed else 200)


def _confirm(request: Request, org: str, name: str, problem: FormProblem | None = None) -> Response:
    context = {
        "title": f"Delete group {name}?",
        "message": "The group is deleted; its hosts stay in the inventory.",
        "action": f"/orgs/{org}/groups/{name}/delete",
        "cancel": f"/orgs/{org}/groups/{name}",
        "button": "Delete group",
        "problem": problem,
        "section": "orgs",
    }
    return render(request, "confirm.html", context, status=problem.status if problem else 200)
