"""/api/v1/orgs/{org}/runs: plan, apply, follow (server-sent events), cancel, re-run."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from infracms import db
from infracms.api.deps import ActorDep, PluginsDep, SessionDep
from infracms.models.run import RunCreate, RunEventPublic, RunFilter, RunPublic
from infracms.models.validators import DB_INT_MAX
from infracms.services import execution, runs
from infracms.services.context import Actor

log = logging.getLogger(__name__)

router = APIRouter(prefix="/orgs/{org}/runs", tags=["runs"])
POLL_SECONDS = 0.25


class RunPage(BaseModel):
    """A page of runs."""

    items: list[RunPublic]
    total: int
    limit: int
    offset: int


@router.post("", response_model=RunPublic, status_code=status.HTTP_202_ACCEPTED)
def create_run(
    org: str,
    body: RunCreate,
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    plugins: PluginsDep,
) -> RunPublic:
    """Plan (check mode with diffs) or apply definitions; the run starts in the background."""
    run = runs.create_run(
        session=session, actor=actor, plugins=plugins, organisation=org, data=body
    )
    request.app.state.executor.submit(run.id)
    return RunPublic.model_validate(run)


@router.get("", response_model=RunPage)
def list_runs(
    org: str,
    session: SessionDep,
    actor: ActorDep,
    filters: Annotated[RunFilter, Query()],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
) -> RunPage:
    """The organisation's runs, newest first, narrowed by status, kind, host, definition
    and who asked for them."""
    found = runs.list_runs(
        session=session, actor=actor, organisation=org, filters=filters, limit=limit, offset=offset
    )
    items = [RunPublic.model_validate(r) for r in found.items]
    return RunPage(items=items, total=found.total, limit=found.limit, offset=found.offset)


@router.get("/{run_id}", response_model=RunPublic)
def get_run(org: str, run_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> RunPublic:
    """One run, with its per-host recap and the revisions it applied."""
    return RunPublic.model_validate(
        runs.get_run(session=session, actor=actor, organisation=org, run_id=run_id)
    )


@router.post("/{run_id}/cancel", response_model=RunPublic)
def cancel_run(org: str, run_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> RunPublic:
    """Stop a queued or running run."""
    return RunPublic.model_validate(
        runs.cancel_run(session=session, actor=actor, organisation=org, run_id=run_id)
    )


@router.post(
    "/{run_id}/rerun-failed", response_model=RunPublic, status_code=status.HTTP_202_ACCEPTED
)
def rerun_failed(
    org: str,
    run_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    plugins: PluginsDep,
) -> RunPublic:
    """Run again on the hosts that failed or were unreachable."""
    run = runs.rerun_failed(
        session=session, actor=actor, plugins=plugins, organisation=org, run_id=run_id
    )
    request.app.state.executor.submit(run.id)
    return RunPublic.model_validate(run)


@router.get("/{run_id}/events", response_model=list[RunEventPublic])
def run_events(
    org: str,
    run_id: uuid.UUID,
    session: SessionDep,
    actor: ActorDep,
    after: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    host: Annotated[str | None, Query(max_length=63)] = None,
    before: Annotated[int | None, Query(ge=1, le=DB_INT_MAX)] = None,
    changed: bool = False,
) -> list[RunEventPublic]:
    """Events after sequence number `after`, or the last `limit` before `before` (page
    through big runs either way); `changed=true` keeps only events that changed something."""
    return runs.run_events(
        session=session,
        actor=actor,
        organisation=org,
        run_id=run_id,
        after=after,
        limit=limit,
        host=host,
        before=before,
        changed_only=changed,
    )


@router.get("/{run_id}/stream")
async def stream(
    org: str,
    run_id: uuid.UUID,
    request: Request,
    actor: ActorDep,
    last_event_id: Annotated[int, Header(ge=0, le=DB_INT_MAX)] = 0,
    after: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
) -> StreamingResponse:
    """Follow a run live: server-sent `events` batches after event `after` (or the
    Last-Event-ID of a reconnecting browser), then one `end` with the run."""
    engine = request.app.state.engine
    await run_in_threadpool(_read, engine, actor, org, run_id, 0)  # authorise before streaming
    return StreamingResponse(
        _follow(request, engine, actor, org, run_id, max(after, last_event_id)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _read(
    engine: Any, actor: Actor, org: str, run_id: uuid.UUID, after: int
) -> tuple[RunPublic, list[RunEventPublic]]:
    with db.session_scope(engine) as session:
        run = RunPublic.model_validate(
            runs.get_run(session=session, actor=actor, organisation=org, run_id=run_id)
        )
        events = runs.run_events(
            session=session, actor=actor, organisation=org, run_id=run_id, after=after, limit=2000
        )
    return run, events


async def _follow(
    request: Request, engine: Any, actor: Actor, org: str, run_id: uuid.UUID, after: int
) -> AsyncIterator[str]:
    while not await request.is_disconnected():
        run, events = await run_in_threadpool(_read, engine, actor, org, run_id, after)
        if events:
            after = events[-1].seq
            payload = json.dumps([e.model_dump(mode="json") for e in events])
            yield f"id: {after}\nevent: events\ndata: {payload}\n\n"
        if run.status.finished and not events:
            yield f"event: end\ndata: {run.model_dump_json()}\n\n"
            return
        if not events:
            await asyncio.sleep(POLL_SECONDS)


def install_executor(app: FastAPI) -> None:
    """Start the executor with the app (its lifespan) and stop it after."""
    settings = app.state.settings
    # without a broker there is no `infracms beat`: the server runs the periodic jobs
    runtime = execution.node_runtime(
        settings=settings, engine=app.state.engine, plugins=app.state.plugins
    )
    app.state.executor = runtime.executor
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        await run_in_threadpool(runtime.start)
        where = "Celery workers (INFRACMS_BROKER_URL)" if settings.broker_url else "this process"
        log.info("runs execute in %s; database %s", where, app.state.engine.url.get_backend_name())
        try:
            async with inner(application) as state:
                yield state
        finally:
            await run_in_threadpool(runtime.stop)

    app.router.lifespan_context = lifespan
