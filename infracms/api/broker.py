"""The Open Service Broker API v2 at /v2 (PROTOCOL.md section 6): thin, over services/.

Peers authenticate by signing (their requests are verified like every peer request
and their answers signed); OSB platforms with a credential a node admin issued
(bearer or basic). ``X-Broker-API-Version`` is checked first (412). Errors are OSB
bodies (``api/peer.PeerRoute``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from federation.broker import API_VERSION_HEADER, check_api_version, osb_catalog
from federation.errors import UnsupportedVersion
from federation.models.base import check_identifier, load
from federation.models.osb import BindRequest, DeleteQuery, ProvisionRequest, UpdateRequest
from infracms import db
from infracms.api.deps import KeyringDep, PluginsDep, SessionDep
from infracms.api.peer import (
    PeerCall,
    PeerRoute,
    bounded_body,
    federation_context,
    signed_response,
    verified_peer,
)
from infracms.services.federation import (
    broker_clients,
    catalog,
    instances,
    provisioning,
    updates,
)
from infracms.services.federation.broker_errors import PreconditionFailed
from infracms.services.federation.peers import peer_by_name
from infracms.services.federation.provisioning import BrokerCaller

router = APIRouter(prefix="/v2", tags=["open service broker"], route_class=PeerRoute)


class Caller:
    """A verified broker caller and how to answer it (signed for peers)."""

    def __init__(self, caller: BrokerCaller, call: PeerCall | None) -> None:
        self.caller, self.call = caller, call

    def answer(self, status: int, body: dict[str, Any] | None = None) -> Response:
        """An OSB answer; signed when the caller is a peer."""
        if self.call is not None:
            return signed_response(self.call, status, body if body is not None else {})
        return JSONResponse(body if body is not None else {}, status_code=status)


async def broker_caller(request: Request) -> Caller:
    """Check who calls (a signed peer: first, so that its refusals are signed) and the API
    version, or the version, then a platform credential."""
    if request.headers.get("signature-input"):
        call = await verified_peer(request)
        _check_version(request)
        _check_ids(request)
        engine = request.app.state.engine

        def caller() -> BrokerCaller:
            with db.session_scope(engine) as session:
                peer = peer_by_name(session, name=call.peer)
            return BrokerCaller("peer", peer.name, peer.id, call.signature.nonce)

        return Caller(await run_in_threadpool(caller), call)

    _check_version(request)

    def platform() -> BrokerCaller:
        with db.session_scope(request.app.state.engine) as session:
            return broker_clients.authenticate(
                session, authorization=request.headers.get("authorization")
            )

    found = Caller(await run_in_threadpool(platform), None)
    _check_ids(request)
    return found


def _check_version(request: Request) -> None:
    try:
        check_api_version(request.headers.get(API_VERSION_HEADER))
    except UnsupportedVersion as exc:
        raise PreconditionFailed(str(exc)) from exc


def _delete_query(request: Request, what: str) -> DeleteQuery:
    """``service_id`` and ``plan_id`` of a DELETE: both required by OSB (400 without)."""
    return load(DeleteQuery, dict(request.query_params), f"the {what} query")


def _check_ids(request: Request) -> None:
    """Instance and binding ids are identifiers (PROTOCOL.md 8.1): 400 before anything else."""
    for name in ("instance_id", "binding_id"):
        if name in request.path_params:
            check_identifier(request.path_params[name], name.replace("_", " "))


CallerDep = Annotated[Caller, Depends(broker_caller)]
Incomplete = Annotated[bool, Query()]


@router.get("/catalog")
def get_catalog(request: Request, caller: CallerDep, session: SessionDep) -> Response:
    """The catalog as OSB services and plans."""
    ctx = caller.call.ctx if caller.call else federation_context(request)
    served = catalog.served_catalog(session=session, ctx=ctx)
    return caller.answer(200, osb_catalog(served.catalog()).to_json_value())


@router.put("/service_instances/{instance_id}")
async def provision(
    instance_id: str,
    request: Request,
    caller: CallerDep,
    plugins: PluginsDep,
    keyring: KeyringDep,
    accepts_incomplete: Incomplete = False,
) -> Response:
    """Request an offering: 202 with an operation while it awaits consent or applies (the
    same request again, the same); 200 when asked again once it is provisioned."""
    body = load(ProvisionRequest, await bounded_body(request), "provision request")
    engine = request.app.state.engine

    def act() -> provisioning.Provisioned:
        with db.session_scope(engine, write=True) as session:
            return provisioning.request_instance(
                session=session,
                plugins=plugins,
                caller=caller.caller,
                instance_id=instance_id,
                request=body,
                accepts_incomplete=accepts_incomplete,
                keyring=keyring,  # a policy approval seals what the module generates
                max_pending=request.app.state.settings.peer_max_pending,
            )

    done = await run_in_threadpool(act)
    if done.run_id is not None:
        request.app.state.executor.submit(done.run_id)
    if done.ready:  # asked again once provisioned: OSB answers 200
        return caller.answer(200, {})
    return caller.answer(202, {"operation": done.instance.operation})


@router.patch("/service_instances/{instance_id}")
async def update(
    instance_id: str,
    request: Request,
    caller: CallerDep,
    plugins: PluginsDep,
    keyring: KeyringDep,
    accepts_incomplete: Incomplete = False,
) -> Response:
    """Another plan or other parameters: 202 with an operation while the change applies,
    200 when there was nothing to apply."""
    body = load(UpdateRequest, await bounded_body(request), "update request")
    engine = request.app.state.engine

    def act() -> updates.Updated:
        with db.session_scope(engine, write=True) as session:
            return updates.update_instance(
                session=session,
                plugins=plugins,
                keyring=keyring,
                caller=caller.caller,
                instance_id=instance_id,
                request=body,
                accepts_incomplete=accepts_incomplete,
            )

    done = await run_in_threadpool(act)
    if done.run_id is not None:
        request.app.state.executor.submit(done.run_id)
    if not done.pending:
        return caller.answer(200, {})
    return caller.answer(202, {"operation": done.instance.operation})


@router.get("/service_instances/{instance_id}/last_operation")
def last_operation(
    instance_id: str,
    request: Request,
    caller: CallerDep,
    session: SessionDep,
    operation: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    """How the instance's last operation goes (the one named by ``operation``, if given)."""
    row = instances.instance_of(session, caller=caller.caller, instance_id=instance_id)
    node = request.app.state.settings.node_name
    answer = instances.last_operation(session, row=row, node=node, operation=operation)
    return caller.answer(200, answer.to_json_value())


@router.get("/service_instances/{instance_id}")
def get_instance(instance_id: str, caller: CallerDep, session: SessionDep) -> Response:
    """The instance's service, plan and parameters."""
    row = instances.instance_of(session, caller=caller.caller, instance_id=instance_id)
    body = {"service_id": row.offering_id, "plan_id": row.plan_id, "parameters": row.parameters}
    return caller.answer(200, body)


@router.delete("/service_instances/{instance_id}")
def deprovision(
    instance_id: str,
    request: Request,
    caller: CallerDep,
    session: SessionDep,
    plugins: PluginsDep,
    accepts_incomplete: Incomplete = False,
) -> Response:
    """Remove an instance: 202 with an operation while its removal runs (asked again, the
    same; 422 AsyncRequired without accepts_incomplete), 200 when nothing was left to
    remove; 410 if gone; 400 without service_id and plan_id."""
    query = _delete_query(request, "deprovision")
    done = instances.deprovision(
        session=session,
        plugins=plugins,
        caller=caller.caller,
        instance_id=instance_id,
        service_id=query.service_id,
        plan_id=query.plan_id,
        accepts_incomplete=accepts_incomplete,
    )
    if done.run_id is not None:
        request.app.state.executor.submit(done.run_id)
    if not done.pending:
        return caller.answer(200, {})
    return caller.answer(202, {"operation": done.instance.operation})


@router.put("/service_instances/{instance_id}/service_bindings/{binding_id}")
async def bind(
    instance_id: str,
    binding_id: str,
    request: Request,
    caller: CallerDep,
    keyring: KeyringDep,
    plugins: PluginsDep,
) -> Response:
    """The connection details, for the requester only (201, or 200 when it exists)."""
    wanted = load(BindRequest, await bounded_body(request), "bind request")
    engine = request.app.state.engine

    def act() -> tuple[bool, dict[str, Any]]:
        with db.session_scope(engine, write=True) as session:
            return instances.bind(
                session=session,
                keyring=keyring,
                caller=caller.caller,
                instance_id=instance_id,
                binding_id=binding_id,
                plugins=plugins,
                service_id=wanted.service_id,
                plan_id=wanted.plan_id,
            )

    created, credentials = await run_in_threadpool(act)
    return caller.answer(201 if created else 200, {"credentials": credentials})


@router.get("/service_instances/{instance_id}/service_bindings/{binding_id}")
def get_binding(
    instance_id: str, binding_id: str, caller: CallerDep, session: SessionDep, keyring: KeyringDep
) -> Response:
    """The binding's connection details again."""
    credentials = instances.binding_credentials(
        session=session,
        keyring=keyring,
        caller=caller.caller,
        instance_id=instance_id,
        binding_id=binding_id,
    )
    return caller.answer(200, {"credentials": credentials})


@router.delete("/service_instances/{instance_id}/service_bindings/{binding_id}")
def unbind(
    instance_id: str, binding_id: str, request: Request, caller: CallerDep, session: SessionDep
) -> Response:
    """Drop the binding; 410 if there is none; 400 without service_id and plan_id."""
    _delete_query(request, "unbind")
    instances.unbind(
        session=session, caller=caller.caller, instance_id=instance_id, binding_id=binding_id
    )
    return caller.answer(200, {})


def install(app: Any) -> None:
    """Serve /v2 on `app`."""
    app.include_router(router)
