"""Signed node-to-node endpoints under /federation/v1 (PROTOCOL.md sections 2-5).

Every request from a peer is verified (``federation.httpsig.verify_request``) against
the keys pinned in the peer table and the database nonce store, with the target URI
built from the configured ``base_url`` (never the Host header), before anything is
read or changed; every successful answer is signed. Errors use the OSB body shape
``{"error": <name of the failed check>, "description": ...}`` (PROTOCOL.md section 8).
Other routers with signed endpoints (``/v2``, the witness) reuse ``verified_peer``,
``signed_response`` and ``PeerRoute``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from federation import urls
from federation.encoding import canonical_json
from federation.errors import FederationError, error_body, http_status
from federation.httpsig import LABEL, VerifiedSignature, sign_response, verify_request
from federation.limits import MAX_REQUEST_BYTES, check_size
from federation.messages import HttpRequest, HttpResponse
from federation.models.base import WireModel
from infracms import db
from infracms.api.deps import SessionDep
from infracms.errors import InfracmsError
from infracms.services.federation import catalog, limits, peering, rotation
from infracms.services.federation.node import FederationContext
from infracms.services.federation.nonces import DatabaseNonceStore
from infracms.services.federation.peers import PeerKeys, peer_by_name

log = logging.getLogger(__name__)
JSON = "application/json"


class PeerRoute(APIRoute):
    """A route whose errors are OSB-shaped bodies, for peers and OSB platforms.

    An error answer to a request whose signature verified is signed like any other answer
    (PROTOCOL.md 4.6). One to a request that did not verify is not: signed, it would let
    someone who holds a genuine request's signature get a signed refusal bound to it by
    sending it altered, and pass that off as the answer to the genuine request.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except FederationError as exc:
                return _error(request, http_status(exc), error_body(exc))
            except InfracmsError as exc:
                return _error(request, exc.status, {"error": exc.code, "description": exc.detail})

        return guarded


def _error(request: Request, status: int, body: dict[str, str]) -> Response:
    call: PeerCall | None = getattr(request.state, "peer_call", None)
    if call is None:
        return JSONResponse(body, status_code=status)
    return signed_response(call, status, body)


@dataclass(frozen=True)
class PeerCall:
    """A verified request from a peer: the message as signed, and its signature."""

    message: HttpRequest
    signature: VerifiedSignature
    ctx: FederationContext

    @property
    def peer(self) -> str:
        """The name of the calling peer."""
        return self.signature.peer


def federation_context(request: Request) -> FederationContext:
    """This node's federation context (its key is read per request: it may be rotated)."""
    transport = getattr(request.app.state, "federation_transport", None)
    return FederationContext.load(request.app.state.settings, transport=transport)


async def bounded_body(request: Request) -> bytes:
    """The request body, refused (413) over the protocol's bound (PROTOCOL.md 8.1)."""
    body = await request.body()  # the guard middleware already caps every body
    check_size(body, MAX_REQUEST_BYTES, "the request body")
    return body


async def message_of(request: Request) -> HttpRequest:
    """The request as the peer signed it: the configured base URL, the raw path and query."""
    settings = request.app.state.settings
    url = settings.base_url.rstrip("/") + request.scope["raw_path"].decode("latin-1")
    if request.scope.get("query_string"):
        url += "?" + request.scope["query_string"].decode("latin-1")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    return HttpRequest.build(request.method, url, headers, await bounded_body(request))


async def verified_peer(request: Request) -> PeerCall:
    """Verify a peer's signed request; refuse it (401, nothing changed) on any failure."""
    message = await message_of(request)
    ctx = federation_context(request)
    engine = request.app.state.engine
    per_minute = request.app.state.settings.peer_requests_per_minute
    signature = await run_in_threadpool(_verify, engine, ctx, message)
    call = PeerCall(message, signature, ctx)
    request.state.peer_call = call  # from here on, even a refusal is answered signed
    await run_in_threadpool(_check_rate, engine, signature.peer, per_minute)
    return call


def _verify(engine: Any, ctx: FederationContext, message: HttpRequest) -> VerifiedSignature:
    with db.session_scope(engine) as session:
        return verify_request(
            message, keys=PeerKeys(session), nonces=DatabaseNonceStore(engine), now=ctx.clock()
        )


def _check_rate(engine: Any, peer_name: str, per_minute: int) -> None:
    with db.session_scope(engine) as session:  # a new snapshot: it sees this request's nonce
        peer = peer_by_name(session, name=peer_name)
        limits.check_rate(session, peer_id=peer.id, peer=peer.name, per_minute=per_minute)


def signed_response(
    call: PeerCall | tuple[HttpRequest, FederationContext],
    status: int,
    body: bytes | WireModel | dict[str, Any] | None = None,
    *,
    content_type: str = JSON,
    headers: dict[str, str] | None = None,
) -> Response:
    """An answer to a signed request, signed by this node (PROTOCOL.md section 4.6)."""
    message, ctx = (call.message, call.ctx) if isinstance(call, PeerCall) else call
    raw = _bytes(body)
    fields = list((headers or {}).items())
    if raw:
        fields.append(("Content-Type", content_type))
    answer = HttpResponse.build(status, fields, raw)
    if message.header("signature") is not None and message.header("signature-input"):
        answer = sign_response(answer, request=message, key=ctx.key, created=ctx.clock()).response
    return Response(content=raw, status_code=status, headers=dict(answer.headers))


def _bytes(body: bytes | WireModel | dict[str, Any] | None) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, WireModel):
        return canonical_json(body.to_json_value())
    return canonical_json(body)


router = APIRouter(prefix=urls.FEDERATION_PREFIX, tags=["federation"], route_class=PeerRoute)
PeerDep = Annotated[PeerCall, Depends(verified_peer)]


@router.get("/identity")
async def identity(request: Request) -> Response:
    """This node's identity document (trusted only through an invitation's fingerprint)."""
    ctx = federation_context(request)
    message = await message_of(request)
    return signed_response((message, ctx), 200, ctx.identity)


@router.post("/peering")
async def peering_request(request: Request) -> Response:
    """The invitee asks to peer: check the token and signature, consume it, pin the node."""
    ctx = federation_context(request)
    message = await message_of(request)
    engine = request.app.state.engine

    def accept() -> Any:
        with db.session_scope(engine, write=True) as session:
            return peering.receive_peering_request(
                session=session, ctx=ctx, request=message, nonces=DatabaseNonceStore(engine)
            )

    acceptance = await run_in_threadpool(accept)
    return signed_response((message, ctx), 201, acceptance)


@router.post("/key-rotation")
def key_rotation(call: PeerDep, session: SessionDep) -> Response:
    """A peer announces its new key, signed by its old one."""
    rotation.receive_key_rotation(
        session=session, ctx=call.ctx, request=call.message, signature=call.signature
    )
    return signed_response(call, 204)


@router.get("/catalog")
def node_catalog(call: PeerDep, session: SessionDep) -> Response:
    """This node's signed catalog; 304 when the peer holds the current one."""
    served = catalog.served_catalog(session=session, ctx=call.ctx)
    headers = {"ETag": served.etag, "Cache-Control": "no-cache"}
    if call.message.header("if-none-match") == served.etag:
        return signed_response(call, 304, headers=headers)
    return signed_response(call, 200, served.body, headers=headers)


__all__ = ["LABEL", "PeerCall", "PeerDep", "PeerRoute", "router", "signed_response"]
