"""/orgs/{org}/drift: where the hosts stand, a chart of the last weeks, the schedules;
acknowledging and remediating a host's drift (its buttons are on the host page)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from infracms.api.deps import PluginsDep, SessionDep
from infracms.models.schedule import DriftState, SchedulePublic
from infracms.services import drift, schedules
from infracms.services.authz import Action, is_allowed
from infracms.web.drift_chart import chart
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text
from infracms.web.pages.orgs import org_view
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()
NEW_SCHEDULE = {"name": "", "cron": "0 3 * * *", "time_zone": "UTC", "mode": "plan", "group": ""}


@router.get("/orgs/{org}/drift")
def org_drift(org: str, request: Request, session: SessionDep, me: SignedIn) -> Response:
    """The hosts by state, the chart, and the schedules (with the form to add one)."""
    return _page(request, session, me, org, NEW_SCHEDULE)


def _page(
    request: Request,
    session: Session,
    me: WebUser,
    org: str,
    values: dict[str, Any],
    problem: FormProblem | None = None,
) -> Response:
    view = org_view(session, me.actor, org)
    hosts = drift.organisation_drift(session=session, actor=me.actor, organisation=org)
    found = schedules.list_schedules(session=session, actor=me.actor, organisation=org)
    context = {
        "view": view,
        "tab": "drift",
        "hosts": hosts,
        "counts": drift.counts(hosts),
        "states": DriftState,
        "chart": chart(drift.history(session=session, actor=me.actor, organisation=org)),
        "schedules": [SchedulePublic.model_validate(s) for s in found],
        "can_plan": is_allowed(me.actor, Action.run_plan, view.org.id),
        "values": values,
        "problem": problem,
    }
    return render(request, "org_drift.html", context, status=problem.status if problem else 200)


@router.post("/orgs/{org}/schedules")
def add_schedule(
    org: str, request: Request, session: SessionDep, me: Poster, form: Form
) -> Response:
    """Add a schedule, or show the page again with what is wrong."""
    values = {key: text(form, key) for key in NEW_SCHEDULE}

    def action() -> Response:
        data = {**values, "group": values["group"] or None}
        schedules.create_schedule(session=session, actor=me.actor, organisation=org, data=data)
        return redirect(f"/orgs/{org}/drift?notice=schedule-added")

    return submit(session, action, lambda p: _page(request, session, me, org, values, p))


@router.post("/orgs/{org}/schedules/{name}/delete")
def remove_schedule(
    org: str, name: str, request: Request, session: SessionDep, me: Poster
) -> Response:
    """Remove a schedule."""

    def action() -> Response:
        schedules.remove_schedule(session=session, actor=me.actor, organisation=org, name=name)
        return redirect(f"/orgs/{org}/drift?notice=schedule-removed")

    return submit(session, action, lambda p: _page(request, session, me, org, NEW_SCHEDULE, p))


@router.post("/orgs/{org}/hosts/{name}/drift/acknowledge")
def acknowledge(
    org: str, name: str, request: Request, session: SessionDep, me: Poster, form: Form
) -> Response:
    """Accept the host's drift for now, with a reason."""

    def action() -> Response:
        drift.acknowledge(
            session=session,
            actor=me.actor,
            organisation=org,
            host=name,
            data={"reason": text(form, "reason")},
        )
        return redirect(f"/orgs/{org}/hosts/{name}?notice=drift-acknowledged")

    return submit(session, action, lambda p: _refused(request, org, name, p))


@router.post("/orgs/{org}/hosts/{name}/drift/remediate")
def remediate(
    org: str, name: str, request: Request, session: SessionDep, me: Poster, plugins: PluginsDep
) -> Response:
    """Apply the drifted definitions to the host, then follow the run."""

    def action() -> Response:
        run = drift.remediate(
            session=session, actor=me.actor, plugins=plugins, organisation=org, host=name
        )
        request.app.state.executor.submit(run.id)
        return redirect(f"/orgs/{org}/runs/{run.id}")

    return submit(session, action, lambda p: _refused(request, org, name, p))


def _refused(request: Request, org: str, name: str, problem: FormProblem) -> Response:
    detail = problem.summary + "".join(f"; {v}" for v in problem.errors.values())
    context = {"title": "Not done", "status": problem.status, "detail": detail, "section": "orgs"}
    return render(request, "error.html", context, status=problem.status)
