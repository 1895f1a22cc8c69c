"""/orgs/{org}/hosts/{name}/scan, …/host-key, …/bootstrap: learn, pin, replace a host's key.

Scan asks the host for its key and shows its fingerprint; the owner or operator
confirms it to pin it (or to replace the pinned one, the rekey flow), or bootstraps a
host that only has a password. Each action scans again and refuses a key whose
fingerprint is not the one confirmed. These routes talk to hosts over ssh for seconds:
they find the signed-in user in a short session of their own and hold none meanwhile
(the bootstrap functions open theirs, which must not wait behind this request's lock).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import Engine

from infracms import db
from infracms.api.deps import SettingsDep
from infracms.config import Settings
from infracms.errors import InfracmsError
from infracms.services import bootstrap, inventory, organisations
from infracms.services.authz import Action, authorize
from infracms.web.errors import FormProblem, redirect
from infracms.web.forms import text
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()
EMPTY = "must not be empty"


# The signed-in user is found in a short read session of its own (web.session), so
# these routes hold no session while ssh runs.
LoneUser = SignedIn
LonePoster = Poster


@router.get("/orgs/{org}/hosts/{name}/scan")
def scan_host(
    org: str, name: str, request: Request, me: LoneUser, settings: SettingsDep
) -> Response:
    """Ask the host for its SSH key; show its fingerprint beside the pinned one, and the
    forms to pin it (or replace the pinned one) and to bootstrap with a password."""
    context = _context(request.app.state.engine, me, org, name)
    try:
        scanned = bootstrap.scan_host(
            engine=request.app.state.engine,
            actor=me.actor,
            organisation=org,
            name=name,
            allow_node_target=settings.allow_node_target,
        )
    except InfracmsError as exc:
        return _page(request, context, problem=FormProblem.of(exc))
    return _page(request, {**context, "scanned": scanned})


@router.post("/orgs/{org}/hosts/{name}/host-key")
def pin_host_key(
    org: str, name: str, request: Request, me: LonePoster, form: Form, settings: SettingsDep
) -> Response:
    """Pin the key the host presents, or replace the pinned one with it, if its
    fingerprint is the one confirmed (audited with both fingerprints)."""
    engine = request.app.state.engine
    context = _context(engine, me, org, name)
    try:
        _connect(engine, settings, me, org, name, text(form, "fingerprint"))
    except InfracmsError as exc:
        return _page(request, context, problem=FormProblem.of(exc))
    return redirect(f"/orgs/{org}/hosts/{name}?notice=host-key-pinned")


@router.post("/orgs/{org}/hosts/{name}/bootstrap")
def bootstrap_host(
    org: str, name: str, request: Request, me: LonePoster, form: Form, settings: SettingsDep
) -> Response:
    """Pin the confirmed key and install the node's SSH key with a one-time password
    (never stored); show how it went."""
    engine = request.app.state.engine
    context = _context(engine, me, org, name)
    password = text(form, "password", strip=False)
    if not password:
        problem = FormProblem("type the password the host accepts now", 422, {"password": EMPTY})
        return _page(request, context, problem)
    try:
        result = _connect(
            engine, settings, me, org, name, text(form, "fingerprint"), password=password
        )
    except InfracmsError as exc:
        return _page(request, context, problem=FormProblem.of(exc))
    return _page(request, {**_context(engine, me, org, name), "bootstrapped": result})


def _connect(
    engine: Engine,
    settings: Settings,
    me: WebUser,
    org: str,
    name: str,
    fingerprint: str,
    *,
    password: str | None = None,
) -> Any:
    """Rekey (pin or replace) the host, or bootstrap it when a password is given: the
    one place the pages call the bootstrap engine's state changes."""
    common: dict[str, Any] = {
        "engine": engine,
        "settings": settings,
        "actor": me.actor,
        "organisation": org,
        "name": name,
        "fingerprint": fingerprint,
    }
    if password is None:
        return bootstrap.rekey_host(**common)
    return bootstrap.bootstrap_host(**common, password=password)


def _context(engine: Engine, me: WebUser, org: str, name: str) -> dict[str, Any]:
    """The organisation and the host, if `me` may connect to it (owners, operators)."""
    with db.session_scope(engine) as session:
        found = organisations.get_organisation(session=session, actor=me.actor, name=org)
        host = inventory.get_host(session=session, actor=me.actor, organisation=org, name=name)
    authorize(me.actor, Action.host_connect, found.id)
    return {"org": found, "host": host, "section": "orgs", "scanned": None, "bootstrapped": None}


def _page(
    request: Request, context: dict[str, Any], problem: FormProblem | None = None
) -> Response:
    status = problem.status if problem else 200
    return render(request, "host_key.html", {**context, "problem": problem}, status=status)
