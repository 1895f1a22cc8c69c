"""/modules (what the node offers; admins make modules available) and /orgs/{org}/modules
(what an organisation has enabled; owners enable and disable)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from infracms.api.deps import PluginsDep, SessionDep
from infracms.plugins import Plugins
from infracms.services import modules, organisations
from infracms.services.authz import Action, is_allowed
from infracms.services.modules import ModuleInfo
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text
from infracms.web.pages.orgs import org_view
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()


@dataclass(frozen=True)
class Requirement:
    """A module another one needs, and whether the organisation has it."""

    name: str
    versions: str
    enabled: bool


@router.get("/modules")
def node_modules(
    request: Request, session: SessionDep, me: SignedIn, plugins: PluginsDep, notice: str = ""
) -> Response:
    """Every module this node knows; admins make them available and see skipped ones."""
    return _node_page(request, session, me, plugins, notice=notice)


@router.post("/modules/{name}/availability")
def set_availability(
    name: str, request: Request, session: SessionDep, me: Poster, form: Form, plugins: PluginsDep
) -> Response:
    """Make a module available to organisations, or withdraw it (node admins)."""
    available = text(form, "available") == "yes"

    def action() -> Response:
        modules.set_available(
            session=session, actor=me.actor, plugins=plugins, name=name, available=available
        )
        notice = "module-available" if available else "module-withdrawn"
        return redirect(f"/modules?notice={notice}#module-{name}")

    def on_error(problem: FormProblem) -> Response:
        return _node_page(request, session, me, plugins, problem=problem, subject=name)

    return submit(session, action, on_error)


@router.get("/orgs/{org}/modules")
def org_modules(
    org: str,
    request: Request,
    session: SessionDep,
    me: SignedIn,
    plugins: PluginsDep,
    notice: str = "",
) -> Response:
    """The modules an organisation may use: enabled or not, with what they need."""
    return _org_page(request, session, me, plugins, org, notice=notice)


@router.post("/orgs/{org}/modules/{name}/enable")
def enable_module(
    org: str, name: str, request: Request, session: SessionDep, me: Poster, plugins: PluginsDep
) -> Response:
    """Enable a module and what it requires (owners)."""

    def action() -> Response:
        modules.enable_module(
            session=session, actor=me.actor, plugins=plugins, organisation=org, name=name
        )
        return redirect(f"/orgs/{org}/modules?notice=module-enabled")

    def on_error(problem: FormProblem) -> Response:
        return _org_page(request, session, me, plugins, org, problem=problem, subject=name)

    return submit(session, action, on_error)


@router.post("/orgs/{org}/modules/{name}/disable")
def disable_module(
    org: str, name: str, request: Request, session: SessionDep, me: Poster, plugins: PluginsDep
) -> Response:
    """Disable a module no definition or other module uses (owners)."""

    def action() -> Response:
        modules.disable_module(
            session=session, actor=me.actor, plugins=plugins, organisation=org, name=name
        )
        return redirect(f"/orgs/{org}/modules?notice=module-disabled")

    def on_error(problem: FormProblem) -> Response:
        return _org_page(request, session, me, plugins, org, problem=problem, subject=name)

    return submit(session, action, on_error)


def requirements(info: ModuleInfo, by_name: dict[str, ModuleInfo]) -> list[Requirement]:
    """What `info` requires, each with whether it is enabled (in the listed organisation)."""
    return [
        Requirement(
            name=need["name"],
            versions=need["versions"],
            enabled=bool(by_name.get(need["name"]) and by_name[need["name"]].enabled),
        )
        for need in info.requires
    ]


def _node_page(
    request: Request,
    session: Session,
    me: WebUser,
    plugins: Plugins,
    *,
    problem: FormProblem | None = None,
    subject: str = "",
    notice: str = "",
) -> Response:
    found = modules.list_modules(session=session, actor=me.actor, plugins=plugins)
    orgs = organisations.list_organisations(session=session, actor=me.actor)
    is_admin = is_allowed(me.actor, Action.module_make_available, None)
    context = {
        "modules": found,
        "problems": plugins.registry.problems if is_admin else [],
        "is_admin": is_admin,
        "orgs": [org.name for org in orgs],
        "problem": problem,
        "subject": subject,
        "notice": notice,
        "section": "modules",
    }
    return render(request, "modules.html", context, status=problem.status if problem else 200)


def _org_page(
    request: Request,
    session: Session,
    me: WebUser,
    plugins: Plugins,
    org: str,
    *,
    problem: FormProblem | None = None,
    subject: str = "",
    notice: str = "",
) -> Response:
    view = org_view(session, me.actor, org)
    found = modules.list_modules(session=session, actor=me.actor, plugins=plugins, organisation=org)
    by_name = {info.name: info for info in found}
    shown = [info for info in found if info.available or info.enabled]
    context = {
        "view": view,
        "tab": "modules",
        "modules": shown,
        "unavailable": [info for info in found if not (info.available or info.enabled)],
        "needs": {info.name: requirements(info, by_name) for info in shown},
        "needed_by": _needed_by(shown),
        "problem": problem,
        "subject": subject,
        "notice": notice,
        "section": "modules",
    }
    return render(request, "org_modules.html", context, status=problem.status if problem else 200)


def _needed_by(found: list[ModuleInfo]) -> dict[str, list[str]]:
    """For each module, the enabled modules that require it (so it cannot be disabled)."""
    needers: dict[str, list[str]] = {}
    for info in found:
        if info.enabled:
            for need in info.requires:
                needers.setdefault(need["name"], []).append(info.name)
    return needers
