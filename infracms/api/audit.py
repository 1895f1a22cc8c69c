"""/api/v1/audit: the signed log's checkpoints, entries, proofs, export and tiles.

The prefix is also a C2SP tlog-tiles log: ``/api/v1/audit/checkpoint`` and
``/api/v1/audit/tile/<L>/<N>[.p/<W>]`` (hash tiles, public) and
``/api/v1/audit/tile/entries/<N>[.p/<W>]`` (entry bundles, node admins only).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from infracms import db
from infracms.api.deps import SESSION_COOKIE, ActorDep, SessionDep, SettingsDep, actor_of
from infracms.audit.integrator import Integrator
from infracms.models.audit import (
    AuditEntryDetail,
    AuditEntryPublic,
    CheckpointPublic,
    ConsistencyProofPublic,
    InclusionProofPublic,
)
from infracms.models.validators import DB_INT_MAX
from infracms.services import audit
from infracms.services.common import MAX_PAGE
from infracms.services.context import Actor

router = APIRouter(prefix="/audit", tags=["audit"])

NOTE_TYPE = "text/plain; charset=utf-8"
EXPORT_TYPE = "application/jsonl"
EXPORT_CHUNK = 1 << 16
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
FRESH = {"Cache-Control": "no-cache"}
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=DB_INT_MAX)]


class EntryPage(BaseModel):
    """A page of audit entries."""

    items: list[AuditEntryPublic]
    total: int
    limit: int
    offset: int


class CheckpointPage(BaseModel):
    """A page of checkpoints, newest first."""

    items: list[CheckpointPublic]
    total: int
    limit: int
    offset: int


def optional_actor(request: Request, session: SessionDep) -> Actor | None:
    """The caller if it sent credentials (bad ones are refused), else None."""
    if "authorization" not in request.headers and SESSION_COOKIE not in request.cookies:
        return None
    return actor_of(request, session)


@router.get("/checkpoint", response_class=PlainTextResponse)
def latest_checkpoint(session: SessionDep) -> PlainTextResponse:
    """The latest signed checkpoint (C2SP tlog-checkpoint in a signed note). Public."""
    note = audit.latest_checkpoint(session=session)
    return PlainTextResponse(note, media_type=NOTE_TYPE, headers=FRESH)


@router.get("/key", response_class=PlainTextResponse)
def verifier_key(settings: SettingsDep) -> PlainTextResponse:
    """The key that verifies the checkpoints, ``name+id+key`` (Go's note format). Public."""
    return PlainTextResponse(audit.verifier_key(settings) + "\n", media_type=NOTE_TYPE)


@router.get("/checkpoints", response_model=CheckpointPage)
def list_checkpoints(
    session: SessionDep, settings: SettingsDep, limit: Limit = 50, offset: Offset = 0
) -> CheckpointPage:
    """Stored checkpoints, newest first, each checked against the node key and the tree."""
    found = audit.list_checkpoints(session=session, settings=settings, limit=limit, offset=offset)
    return CheckpointPage(items=found.items, total=found.total, limit=limit, offset=offset)


@router.get("/entries", response_model=EntryPage)
def list_entries(
    session: SessionDep,
    actor: ActorDep,
    organisation: Annotated[str | None, Query(max_length=63)] = None,
    actor_name: Annotated[str | None, Query(alias="actor", max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    subject: Annotated[str | None, Query(max_length=300)] = None,
    start: Annotated[int | None, Query(ge=0, le=DB_INT_MAX)] = None,
    end: Annotated[int | None, Query(ge=0, le=DB_INT_MAX)] = None,
    newest_first: bool = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> EntryPage:
    """Entries the caller may read (``start <= index < end``); ``x*`` filters by prefix."""
    found = audit.list_entries(
        session=session,
        actor=actor,
        organisation=organisation,
        actor_name=actor_name,
        action=action,
        subject=subject,
        start=start,
        end=end,
        limit=limit,
        offset=offset,
        newest_first=newest_first,
    )
    return EntryPage(items=found.items, total=found.total, limit=limit, offset=offset)


@router.get("/entries/{index}", response_model=AuditEntryDetail)
def get_entry(
    index: Annotated[int, Path(ge=0, le=DB_INT_MAX)],
    session: SessionDep,
    actor: ActorDep,
    settings: SettingsDep,
) -> AuditEntryDetail:
    """One entry, its leaf hash, and its inclusion proof against the latest checkpoint."""
    return audit.get_entry(session=session, actor=actor, settings=settings, index=index)


@router.get("/proof/inclusion", response_model=InclusionProofPublic)
def inclusion_proof(
    session: SessionDep,
    actor: ActorDep,
    index: Annotated[int, Query(ge=0, le=DB_INT_MAX)],
    size: Annotated[int | None, Query(ge=0, le=DB_INT_MAX)] = None,
) -> InclusionProofPublic:
    """RFC 9162 inclusion proof of an entry the caller may read (default: latest size)."""
    return audit.inclusion_proof(session=session, actor=actor, index=index, size=size)


@router.get("/proof/consistency", response_model=ConsistencyProofPublic)
def consistency_proof(
    session: SessionDep,
    old: Annotated[int, Query(ge=0, le=DB_INT_MAX)],
    new: Annotated[int | None, Query(ge=0, le=DB_INT_MAX)] = None,
) -> ConsistencyProofPublic:
    """RFC 9162 consistency proof between two tree sizes (default new: latest). Public."""
    return audit.consistency_proof(session=session, old_size=old, new_size=new)


@router.get("/export")
def export(request: Request, session: SessionDep, actor: ActorDep) -> StreamingResponse:
    """The export file of the whole log, for ``infracms audit verify`` (node admins)."""
    settings = request.app.state.settings
    audit.export_lines(session=session, actor=actor, settings=settings)  # authorises, or raises
    name = f"{settings.node_name}-audit.jsonl"
    return StreamingResponse(
        _export_chunks(request.app.state.engine, actor, settings),
        media_type=EXPORT_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _export_chunks(engine: Any, actor: Actor, settings: Any) -> Iterator[bytes]:
    """The export in 64 KiB chunks, from a session of its own (one snapshot of the log)."""
    with db.session_scope(engine) as session:
        chunk: list[bytes] = []
        size = 0
        for line in audit.export_lines(session=session, actor=actor, settings=settings):
            chunk.append(line)
            size += len(line)
            if size >= EXPORT_CHUNK:
                yield b"".join(chunk)
                chunk, size = [], 0
        yield b"".join(chunk)


@router.get("/tile/{level}/{index:path}")
def tile(
    level: str,
    index: str,
    session: SessionDep,
    actor: Annotated[Actor | None, Depends(optional_actor)],
) -> Response:
    """A C2SP tlog-tiles tile: hash tiles are public, entry bundles for node admins."""
    data = audit.read_tile(session=session, actor=actor, level=level, index=index)
    full = ".p/" not in index
    headers = IMMUTABLE if full and level != "entries" else FRESH
    return Response(data, media_type="application/octet-stream", headers=headers)


def install_integrator(app: FastAPI) -> None:
    """Run the audit integrator in a background thread while the app is up (its lifespan)."""
    settings, engine = app.state.settings, app.state.engine
    integrator = Integrator(engine, lambda: audit.node_signer(settings))
    app.state.audit_integrator = integrator
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        integrator.start()
        try:
            async with inner(application) as state:
                yield state
        finally:
            await run_in_threadpool(integrator.stop)

    app.router.lifespan_context = lifespan
