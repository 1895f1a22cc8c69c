"""/orgs/{org}/runs/{id}: one run, its per-host recap, the revisions it applied, its
output a page at a time (the latest first, "older" going back), and, while it runs, the
live view (``static/run.js`` on the API's server-sent events). A held apply shows its
plan's digest and diff, the decisions so far, and approve, refuse and break-glass forms.

A run may have 100,000 events and more: a page shows at most PAGE_SIZE of them.
Without a host filter event numbers are contiguous, so a page is one query. With one,
``run_events`` can only read forward from a number, so the page that ends before a given
event is found by bisecting on the start (about 17 short reads at 100,000 events).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlmodel import Session

from infracms.api.deps import PluginsDep, SessionDep
from infracms.models.run import Run, RunEventPublic, RunKind, RunStatus
from infracms.services import approvals, runs
from infracms.services.approval_plan import plan_diff
from infracms.services.authz import Action, is_allowed
from infracms.web.errors import FormProblem, redirect, submit
from infracms.web.forms import text
from infracms.web.pages.orgs import org_view
from infracms.web.run_view import (
    RECAP_COLUMNS,
    STATUS_WORDS,
    duration,
    outcome_totals,
    output_lines,
    recap_rows,
)
from infracms.web.session import Form, Poster, SignedIn, WebUser
from infracms.web.templating import render

router = APIRouter()

PAGE_SIZE = 200
Seq = Annotated[int | None, Query(ge=0, le=10**12)]


@dataclass(frozen=True)
class OutputPage:
    """Which events a run page shows: PAGE_SIZE of them, before or after an event number."""

    host: str = ""
    before: int | None = None
    after: int | None = None

    @property
    def is_latest(self) -> bool:
        """Whether this is the end of the output (the live view appends to it)."""
        return self.before is None and self.after is None

    def read(self, session: Session, me: WebUser, org: str, run: Run) -> list[RunEventPublic]:
        """The events of this page, oldest first."""
        if self.after is not None:
            return self._events(session, me, org, run, self.after, PAGE_SIZE)
        end = run.event_count + 1 if self.before is None else min(self.before, run.event_count + 1)
        if not self.host:
            start = max(0, end - 1 - PAGE_SIZE)
            count = end - 1 - start
            return self._events(session, me, org, run, start, count) if count > 0 else []
        start = self._start_before(session, me, org, run, end)
        found = self._events(session, me, org, run, start, PAGE_SIZE)
        return [event for event in found if event.seq < end]

    def _start_before(self, session: Session, me: WebUser, org: str, run: Run, end: int) -> int:
        """The smallest start after which at most PAGE_SIZE of the host's events come
        before `end`: their count only falls as the start grows, so bisect."""

        def fits(start: int) -> bool:
            found = self._events(session, me, org, run, start, PAGE_SIZE + 1)
            return sum(1 for event in found if event.seq < end) <= PAGE_SIZE

        low, high = 0, max(0, end - 1)
        if fits(low):
            return low
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if fits(middle) else (middle, high)
        return high

    def _events(
        self, session: Session, me: WebUser, org: str, run: Run, after: int, limit: int
    ) -> list[RunEventPublic]:
        return runs.run_events(
            session=session,
            actor=me.actor,
            organisation=org,
            run_id=run.id,
            after=after,
            limit=max(1, min(limit, 5000)),
            host=self.host or None,
        )

    def has_older(
        self, session: Session, me: WebUser, org: str, run: Run, shown: list[RunEventPublic]
    ) -> bool:
        """Whether events of this page's host come before the first one shown."""
        if not shown:
            return False
        if not self.host:
            return shown[0].seq > 1
        first = self._events(session, me, org, run, 0, 1)
        return bool(first) and first[0].seq < shown[0].seq


@router.get("/orgs/{org}/runs/{run_id}")
def show_run(
    org: str,
    run_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    me: SignedIn,
    host: Annotated[str, Query(max_length=63)] = "",
    before: Seq = None,
    after: Seq = None,
    notice: str = "",
) -> Response:
    """A run; `before`/`after` page through its output, `host` keeps one host's events."""
    page = OutputPage(host=host, before=before, after=after)
    return run_page(request, session, me, org, run_id, page=page, notice=notice)


def run_page(
    request: Request,
    session: Session,
    me: WebUser,
    org: str,
    run_id: uuid.UUID,
    *,
    page: OutputPage | None = None,
    problem: FormProblem | None = None,
    notice: str = "",
) -> Response:
    """The page of a run (also shown again, saying why, when a cancel or re-run is refused)."""
    page = page or OutputPage()
    view = org_view(session, me.actor, org)
    run = runs.get_run(session=session, actor=me.actor, organisation=org, run_id=run_id)
    events = page.read(session, me, org, run)
    rows = recap_rows(run)
    may = Action.run_apply if run.kind is RunKind.apply else Action.run_plan
    context = {
        "view": view,
        "run": run,
        "status_words": STATUS_WORDS,
        "duration": duration(run),
        "recap": rows,
        "totals": outcome_totals(rows),
        "columns": RECAP_COLUMNS,
        "lines": output_lines(events),
        "page": page,
        "first_seq": events[0].seq if events else None,
        "last_seq": events[-1].seq if events else (page.after or 0),
        "has_older": page.has_older(session, me, org, run, events),
        "has_newer": bool(events) and events[-1].seq < run.event_count and not page.is_latest,
        "page_size": PAGE_SIZE,
        # a held apply waits for people, maybe for hours: nothing to follow until released
        "live": page.is_latest and run.status in (RunStatus.queued, RunStatus.running),
        "can_control": is_allowed(me.actor, may, run.organisation_id),
        "has_failed": any(row.outcome in ("failed", "unreachable") for row in rows),
        "problem": problem,
        "notice": notice,
        "section": "runs",
        **_approval_context(session, me, org, run),
    }
    return render(request, "run.html", context, status=problem.status if problem else 200)


def _approval_context(session: Session, me: WebUser, org: str, run: Run) -> dict[str, Any]:
    """A held (or once held) apply's approval: the request, decisions, the plan's diff,
    and what this person may do about it."""
    held, decisions = approvals.approval_of(
        session=session, actor=me.actor, organisation=org, run_id=run.id
    )
    if held is None:
        return {"approval": None}
    pending = run.status is RunStatus.pending_approval
    return {
        "approval": held,
        "decisions": decisions,
        "plan_diff": plan_diff(session, run) if pending else [],
        "can_decide": pending and approvals.may_decide(me.actor, run.organisation_id, held),
        "can_break_glass": pending and is_allowed(me.actor, Action.org_update, run.organisation_id),
    }


@router.post("/orgs/{org}/runs/{run_id}/approvals")
def decide(
    org: str,
    run_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    me: Poster,
    form: Form,
    plugins: PluginsDep,
) -> Response:
    """Approve or refuse a held apply (the button pressed names the decision)."""

    def action() -> Response:
        run = approvals.decide(
            session=session,
            actor=me.actor,
            plugins=plugins,
            organisation=org,
            run_id=run_id,
            data={
                "decision": text(form, "decision"),
                "comment": text(form, "comment"),
                "digest": text(form, "digest") or None,
            },
        )
        return _after(request, org, run)

    def on_error(problem: FormProblem) -> Response:
        return run_page(request, session, me, org, run_id, problem=problem)

    return submit(session, action, on_error)


@router.post("/orgs/{org}/runs/{run_id}/break-glass")
def break_glass(
    org: str, run_id: uuid.UUID, request: Request, session: SessionDep, me: Poster, form: Form
) -> Response:
    """Start a held apply without its approvals (owners), with the reason given."""

    def action() -> Response:
        run = approvals.break_glass(
            session=session,
            actor=me.actor,
            organisation=org,
            run_id=run_id,
            data={"reason": text(form, "reason")},
        )
        return _after(request, org, run)

    def on_error(problem: FormProblem) -> Response:
        return run_page(request, session, me, org, run_id, problem=problem)

    return submit(session, action, on_error)


def _after(request: Request, org: str, run: Run) -> Response:
    if run.status is RunStatus.queued:
        request.app.state.executor.submit(run.id)
    return redirect(f"/orgs/{org}/runs/{run.id}")
