"""Witnessing over HTTP: the C2SP tlog-witness endpoint for peers, and what admins read.

- ``POST /federation/v1/witness/add-checkpoint``: a peer submits its checkpoint
  (PROTOCOL.md section 7). The request must be signed by that peer (RFC 9421,
  ``api.peer.verified_peer``); every answer to it is signed. 200 carries the
  cosignature lines (``text/plain``), 409 the size this node holds
  (``text/x.tlog.size``), other refusals an ``{"error", "description"}`` body.
- ``/api/v1/witness``: this node's witness key (public), the peer logs it witnesses
  and the checkpoints it refused as evidence (node admins), and gathering
  cosignatures for this node's latest checkpoint now (node admins).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from federation import urls
from infracms.api.deps import ActorDep, SessionDep
from infracms.api.peer import PeerDep, PeerRoute, federation_context, signed_response
from infracms.models.validators import DB_INT_MAX
from infracms.models.witness import WitnessConflictPublic, WitnessedLogPublic
from infracms.services import witness
from infracms.services.authz import Action, authorize
from infracms.services.common import MAX_PAGE

router = APIRouter(prefix=urls.WITNESS_PREFIX, tags=["federation"], route_class=PeerRoute)
api_router = APIRouter(prefix="/witness", tags=["witness"])


@router.post("/add-checkpoint")
def add_checkpoint(call: PeerDep, session: SessionDep) -> Response:
    """C2SP tlog-witness add-checkpoint: cosign the peer's checkpoint, or refuse it."""
    submitter = witness.Submitter(call.peer, call.signature.key_id)
    answer = witness.add_checkpoint(
        session=session, ctx=call.ctx, submitter=submitter, body=call.message.body
    )
    return signed_response(call, answer.status, answer.body, content_type=answer.content_type)


class ConflictPage(BaseModel):
    """A page of refused checkpoints, newest first."""

    items: list[WitnessConflictPublic]
    total: int
    limit: int
    offset: int


class WitnessOutcomePublic(BaseModel):
    """What one peer did with this node's latest checkpoint."""

    peer: str
    size: int
    status: str
    detail: str


@api_router.get("/key", response_class=PlainTextResponse)
def witness_key(request: Request) -> PlainTextResponse:
    """This node's witness key, ``<name>/witness+<id>+base64(0x04 || key)``. Public."""
    ctx = federation_context(request)
    vkey = witness.cosigner(ctx.name, ctx.key).verifier().vkey
    return PlainTextResponse(vkey + "\n", media_type="text/plain; charset=utf-8")


@api_router.get("/logs", response_model=list[WitnessedLogPublic])
def witnessed_logs(session: SessionDep, actor: ActorDep) -> list[WitnessedLogPublic]:
    """The peer logs this node witnesses, each with the checkpoint it last cosigned."""
    return witness.list_witnessed_logs(session=session, actor=actor)


@api_router.get("/conflicts", response_model=ConflictPage)
def conflicts(
    session: SessionDep,
    actor: ActorDep,
    origin: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
) -> ConflictPage:
    """Checkpoints this node refused because they contradict one it cosigned (evidence)."""
    found = witness.list_conflicts(
        session=session, actor=actor, origin=origin, limit=limit, offset=offset
    )
    return ConflictPage(items=found.items, total=found.total, limit=limit, offset=offset)


@api_router.post("/gather", response_model=list[WitnessOutcomePublic])
def gather(request: Request, session: SessionDep, actor: ActorDep) -> list[WitnessOutcomePublic]:
    """Ask every active peer to cosign this node's latest checkpoint now."""
    authorize(actor, Action.peer_manage, None)
    session.rollback()  # hold no lock while peers answer
    ctx, engine = federation_context(request), request.app.state.engine
    outcomes = witness.gather_cosignatures(engine=engine, ctx=ctx)
    return [
        WitnessOutcomePublic(peer=o.peer, size=o.size, status=o.status, detail=o.detail)
        for o in outcomes
    ]
