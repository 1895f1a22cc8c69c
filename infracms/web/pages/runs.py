"""/runs and /orgs/{org}/runs: the runs lists, asking for a plan or an apply (of everything,
a definition, a host or a group), cancelling, and running failed hosts again.

One run's page is in ``run.py``. Runs are submitted to the app's executor exactly as
the API does.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from sqlmodel import Session
from starlette.datastructures import FormData

from infracms.api.deps import PluginsDep, SessionDep
from infracms.models.run import RunFilter, StatusFilter
from infracms.services import definitions, inventory, organisations, runs
from infracms.services.common import MAX_PAGE, parse
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text, texts
from infracms.web.pages.orgs import org_view
from infracms.web.pages.run import run_page
from infracms.web.run_view import table_helpers
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()

PAGE_SIZE = 25
LATEST_PER_ORG = 5


@router.get("/runs")
def all_runs(request: Request, session: SessionDep, me: SignedIn) -> Response:
    """The latest runs of every organisation you can see."""
    orgs = organisations.list_organisations(session=session, actor=me.actor)
    found = [
        (
            org,
            runs.list_runs(
                session=session, actor=me.actor, organisation=org.name, limit=LATEST_PER_ORG
            ),
        )
        for org in orgs
    ]
    context = {"found": found, "section": "runs", **table_helpers()}
    return render(request, "runs.html", context)


@router.get("/orgs/{org}/runs")
def org_runs(
    org: str,
    request: Request,
    session: SessionDep,
    me: SignedIn,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """An organisation's runs, newest first, narrowed by the filters in the query string,
    with the form to plan or apply."""
    return _page(request, session, me, org, page=page)


FILTER_FIELDS = ("status", "kind", "host", "definition", "requested_by")


def run_filter(request: Request) -> RunFilter:
    """The filters in the query string (blank ones ignored); a bad one is refused by name."""
    given = {k: request.query_params[k] for k in FILTER_FIELDS if request.query_params.get(k)}
    return parse(RunFilter, given)


@router.post("/orgs/{org}/runs")
def create_run(
    org: str, request: Request, session: SessionDep, me: Poster, form: Form, plugins: PluginsDep
) -> Response:
    """Plan or apply (the button pressed says which), then follow the run on its page."""
    data = run_request(form)

    def action() -> Response:
        run = runs.create_run(
            session=session, actor=me.actor, plugins=plugins, organisation=org, data=data
        )
        request.app.state.executor.submit(run.id)
        return redirect(f"/orgs/{org}/runs/{run.id}")

    def on_error(problem: FormProblem) -> Response:
        return _page(request, session, me, org, problem=problem, kind=str(data["kind"]))

    return submit(session, action, on_error)


@router.post("/orgs/{org}/runs/{run_id}/cancel")
def cancel_run(
    org: str, run_id: uuid.UUID, request: Request, session: SessionDep, me: Poster
) -> Response:
    """Ask a queued or running run to stop."""

    def action() -> Response:
        runs.cancel_run(session=session, actor=me.actor, organisation=org, run_id=run_id)
        return redirect(f"/orgs/{org}/runs/{run_id}?notice=run-cancelling")

    def on_error(problem: FormProblem) -> Response:
        return run_page(request, session, me, org, run_id, problem=problem)

    return submit(session, action, on_error)


@router.post("/orgs/{org}/runs/{run_id}/rerun-failed")
def rerun_failed(
    org: str,
    run_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    me: Poster,
    plugins: PluginsDep,
) -> Response:
    """A new run of the same kind on the hosts that failed or were unreachable."""

    def action() -> Response:
        run = runs.rerun_failed(
            session=session, actor=me.actor, plugins=plugins, organisation=org, run_id=run_id
        )
        request.app.state.executor.submit(run.id)
        return redirect(f"/orgs/{org}/runs/{run.id}")

    def on_error(problem: FormProblem) -> Response:
        return run_page(request, session, me, org, run_id, problem=problem)

    return submit(session, action, on_error)


def run_request(form: FormData) -> dict[str, Any]:
    """The run a form asks for: its kind, and the definitions, hosts and groups it names
    (each None when not narrowed). `scope` is ``host:NAME`` or ``group:NAME`` from a select."""
    hosts, groups = texts(form, "hosts"), texts(form, "groups")
    kind, _, name = text(form, "scope").partition(":")
    if name and kind == "host":
        hosts.append(name)
    elif name and kind == "group":
        groups.append(name)
    names = [name for name in texts(form, "definitions") if name]
    return {
        "kind": text(form, "kind"),
        "definitions": names or None,
        "hosts": hosts or None,
        "groups": groups or None,
    }


def _page(
    request: Request,
    session: Session,
    me: WebUser,
    org: str,
    *,
    page: int = 1,
    problem: FormProblem | None = None,
    kind: str = "",
) -> Response:
    view = org_view(session, me.actor, org)
    scope: dict[str, Any] = {"session": session, "actor": me.actor, "organisation": org}
    filters = run_filter(request)
    found = runs.list_runs(**scope, filters=filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    hosts = inventory.list_hosts(**scope, limit=MAX_PAGE)
    context = {
        "view": view,
        "tab": "runs",
        "runs": found,
        "page": page,
        "pages": max(1, -(-found.total // PAGE_SIZE)),
        "definitions": [d.name for d in definitions.list_definitions(**scope) if d.published],
        "hosts": [host.name for host in hosts.items],
        "groups": [group.name for group in inventory.list_groups(**scope)],
        "filters": filters,
        "filter_query": urlencode(filters.model_dump(mode="json", exclude_none=True)),
        "status_filters": get_args(StatusFilter),
        "problem": problem,
        "problem_title": f"Could not start the {kind or 'run'}",
        "section": "runs",
        **table_helpers(),
    }
    return render(request, "org_runs.html", context, status=problem.status if problem else 200)
