"""/metrics (Prometheus text format, for node administrators) and /readyz (anyone).

Both sit outside /api/, where monitoring looks for them; their refusals are still
problem+json (not the pages' redirect to /login), as a scraper expects."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from infracms.api import problems
from infracms.api.deps import actor_of, short_read
from infracms.errors import InfracmsError
from infracms.services import metrics

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def scrape(request: Request) -> Response:
    """The node's figures, read from the database now (a node token, as Bearer)."""
    try:
        actor = await short_read(request, actor_of)
        body = await run_in_threadpool(
            metrics.scrape,
            engine=request.app.state.engine,
            settings=request.app.state.settings,
            actor=actor,
        )
    except InfracmsError as exc:
        problem = {**exc.problem(), "instance": request.url.path}
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problems.problem_response(problem, headers)
    return Response(body, media_type=metrics.CONTENT_TYPE)


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 when ready, else 503 with each degraded state and its reason."""
    found = await run_in_threadpool(
        metrics.readiness, engine=request.app.state.engine, settings=request.app.state.settings
    )
    return JSONResponse(found.body(), status_code=200 if found.ready else 503)
