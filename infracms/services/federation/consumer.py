"""Services our organisations request from peers (the consumer side of provisioning).

An owner or operator (``Action.service_request``) picks an offering from the federated
catalog for one of their organisations; the node records the request, sends the signed
OSB provision to the peer, and follows ``last_operation`` on demand and periodically.
Once provisioned it binds, and keeps the connection details sealed at rest: only the
organisation's owners and operators read them (``Action.service_credentials``). No
lock is held while a peer answers: each step commits before the next network call.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from federation.broker import originating_identity
from federation.client import PeerClient
from federation.errors import BrokerError, FederationError
from federation.models.osb import (
    BindRequest,
    InfracmsContext,
    LastOperationState,
    ProvisionRequest,
)
from infracms.errors import Conflict, NotFound
from infracms.keys import Keyring
from infracms.models.base import utcnow
from infracms.models.federation import ConsumerService, ConsumerStatus, Peer
from infracms.models.organisation import Organisation
from infracms.services import audit
from infracms.services.authz import Action, authorize
from infracms.services.common import commit, organisation_by_name, parse
from infracms.services.context import Actor, system_actor
from infracms.services.federation.directory import find_plan
from infracms.services.federation.node import FederationContext
from infracms.services.federation.peers import active_peer, keys_of
from infracms.services.federation.provisioning import check_parameters

FOLLOWED = (ConsumerStatus.in_progress, ConsumerStatus.deprovisioning, ConsumerStatus.succeeded)


class ServiceRequestIn(BaseModel):
    """What a user asks a peer for."""

    peer: str = Field(max_length=253)
    offering_id: str = Field(max_length=100)
    plan_id: str = Field(max_length=128)
    parameters: dict[str, Any] = Field(default_factory=dict)


class ConsumerServicePublic(BaseModel):
    """A requested service as our pages, API and CLI show it (never its credentials)."""

    id: uuid.UUID
    organisation: str
    peer: str
    offering_id: str
    plan_id: str
    parameters: dict[str, Any]
    status: ConsumerStatus
    operation: str | None
    description: str | None
    has_credentials: bool
    requested_by: str
    created_at: datetime
    checked_at: datetime | None
    ended_at: datetime | None


def request_service(
    *, session: Session, actor: Actor, ctx: FederationContext, organisation: str, data: Any
) -> ConsumerServicePublic:
    """Ask a peer for one of its offerings on behalf of an organisation."""
    org = organisation_by_name(session, organisation)
    authorize(actor, Action.service_request, org.id)
    wanted = parse(ServiceRequestIn, data)
    peer = active_peer(session, wanted.peer)
    _, plan = find_plan(session, peer, wanted.offering_id, wanted.plan_id)
    check_parameters({"id": plan.id, "parameters": dict(plan.parameters)}, wanted.parameters)
    row = ConsumerService(
        organisation_id=org.id,
        peer_id=peer.id,
        offering_id=wanted.offering_id,
        plan_id=wanted.plan_id,
        parameters=wanted.parameters,
        requested_by=actor.name,
    )
    session.add(row)
    _record(session, actor, org, row, peer, "service.request", parameters=wanted.parameters)
    commit(session)
    request = ProvisionRequest(
        service_id=row.offering_id,
        plan_id=row.plan_id,
        parameters=row.parameters,
        context=InfracmsContext(
            node=ctx.name,
            organization=str(org.id),
            organization_name=org.name,
            requested_by=actor.name,
        ).to_json_value(),
    )
    identity = originating_identity("infracms", {"user": actor.name, "organization": org.name})
    try:
        with _client(session, ctx, peer) as client:
            answer = client.provision(str(row.id), request, originating_identity=identity)
    except FederationError as exc:
        return _fail(session, actor, org, row, peer, exc)
    row.status = ConsumerStatus.in_progress if answer.pending else ConsumerStatus.succeeded
    row.operation, row.checked_at = answer.body.operation, utcnow()
    session.add(row)
    _record(session, actor, org, row, peer, "service.requested")
    commit(session)
    return describe(session, row)


def refresh_service(
    *, session: Session, actor: Actor, ctx: FederationContext, organisation: str, service: uuid.UUID
) -> ConsumerServicePublic:
    """Ask the peer how the service's last operation went; bind once it succeeded."""
    org, row = _service_in(session, actor, organisation, service, Action.service_read)
    _follow(session, ctx, org, row, actor)
    return describe(session, row)


def deprovision_service(
    *, session: Session, actor: Actor, ctx: FederationContext, organisation: str, service: uuid.UUID
) -> ConsumerServicePublic:
    """Ask the peer to remove the service (unbinding first)."""
    org, row = _service_in(session, actor, organisation, service, Action.service_request)
    if row.status in (ConsumerStatus.ended, ConsumerStatus.deprovisioning):
        raise Conflict(f"service {row.id} is already {row.status}")
    peer = session.get(Peer, row.peer_id)
    assert peer is not None
    with _client(session, ctx, peer) as client:
        if row.binding_id:
            try:
                client.unbind(
                    str(row.id), row.binding_id, service_id=row.offering_id, plan_id=row.plan_id
                )
            except BrokerError as exc:
                if exc.status_code != 410:
                    raise
        answer = client.deprovision(str(row.id), service_id=row.offering_id, plan_id=row.plan_id)
    row.binding_id, row.sealed = None, None
    if answer.status_code == 202:
        row.status, row.operation = ConsumerStatus.deprovisioning, answer.body.operation
    else:
        row.status, row.ended_at = ConsumerStatus.ended, utcnow()
    row.checked_at = utcnow()
    session.add(row)
    _record(session, actor, org, row, peer, "service.deprovision")
    commit(session)
    return describe(session, row)


def list_services(
    *, session: Session, actor: Actor, organisation: str
) -> list[ConsumerServicePublic]:
    """The services an organisation requested from peers, newest first."""
    org = organisation_by_name(session, organisation)
    authorize(actor, Action.service_read, org.id)
    rows = session.exec(
        select(ConsumerService)
        .where(ConsumerService.organisation_id == org.id)
        .order_by(col(ConsumerService.created_at).desc())
    ).all()
    return [describe(session, row) for row in rows]


def get_service(
    *, session: Session, actor: Actor, organisation: str, service: uuid.UUID
) -> ConsumerServicePublic:
    """One requested service."""
    _, row = _service_in(session, actor, organisation, service, Action.service_read)
    return describe(session, row)


def service_credentials(
    *, session: Session, actor: Actor, keyring: Keyring, organisation: str, service: uuid.UUID
) -> dict[str, Any]:
    """The connection details the provider handed over (owners and operators only)."""
    _, row = _service_in(session, actor, organisation, service, Action.service_credentials)
    if row.sealed is None:
        raise NotFound(f"service {row.id} has no connection details (yet)")
    value: dict[str, Any] = json.loads(keyring.open(row.sealed, context=_sealing(row)))
    return value


def follow_all(session: Session, ctx: FederationContext) -> int:
    """The periodic job: follow every service still in progress; how many were asked."""
    rows = session.exec(
        select(ConsumerService).where(
            col(ConsumerService.status).in_(
                (ConsumerStatus.in_progress, ConsumerStatus.deprovisioning)
            )
        )
    ).all()
    for row in rows:
        org = session.get(Organisation, row.organisation_id)
        assert org is not None
        _follow(session, ctx, org, row, system_actor("service-follow"))
    return len(rows)


def describe(session: Session, row: ConsumerService) -> ConsumerServicePublic:
    """A requested service without its secrets."""
    org = session.get(Organisation, row.organisation_id)
    peer = session.get(Peer, row.peer_id)
    return ConsumerServicePublic(
        **row.model_dump(exclude={"sealed", "binding_id", "organisation_id", "peer_id"}),
        organisation=org.name if org else "?",
        peer=peer.name if peer else "?",
        has_credentials=row.sealed is not None,
    )


def _follow(
    session: Session, ctx: FederationContext, org: Organisation, row: ConsumerService, actor: Actor
) -> None:
    if row.status not in FOLLOWED or (row.status is ConsumerStatus.succeeded and row.sealed):
        return
    peer = session.get(Peer, row.peer_id)
    assert peer is not None
    before, bound = row.status, row.sealed is not None
    try:
        with _client(session, ctx, peer) as client:
            if row.status is not ConsumerStatus.succeeded:
                _poll(client, row)
            if row.status is ConsumerStatus.succeeded and row.sealed is None:
                _bind(client, ctx, row)
    except FederationError as exc:
        row.description = f"{type(exc).__name__}: {exc}"[:2000]
    row.checked_at = utcnow()
    session.add(row)
    if row.status is not before or (row.sealed is not None) != bound:
        _record(session, actor, org, row, peer, f"service.{row.status.name}")
    commit(session)


def _poll(client: PeerClient, row: ConsumerService) -> None:
    try:
        answer = client.last_operation(
            str(row.id), service_id=row.offering_id, plan_id=row.plan_id, operation=row.operation
        )
    except BrokerError as exc:
        if exc.status_code == 410 and row.status is ConsumerStatus.deprovisioning:
            row.status, row.ended_at = ConsumerStatus.ended, utcnow()
            return
        raise
    row.description = answer.description
    if answer.state is LastOperationState.SUCCEEDED:
        if row.status is ConsumerStatus.deprovisioning:
            row.status, row.ended_at = ConsumerStatus.ended, utcnow()
        else:
            row.status = ConsumerStatus.succeeded
    elif answer.state is LastOperationState.FAILED:
        row.status = ConsumerStatus.failed


def _bind(client: PeerClient, ctx: FederationContext, row: ConsumerService) -> None:
    binding_id = str(uuid.uuid4())
    answer = client.bind(
        str(row.id), binding_id, BindRequest(service_id=row.offering_id, plan_id=row.plan_id)
    )
    credentials = answer.body.credentials or {}
    row.binding_id = binding_id
    row.sealed = ctx.keyring.seal(json.dumps(credentials), context=_sealing(row))


def _client(session: Session, ctx: FederationContext, peer: Peer) -> PeerClient:
    name, base_url, peer_keys = peer.name, peer.base_url, keys_of(session, peer)
    session.commit()  # hold no lock while the peer answers
    return ctx.client(name, base_url, peer_keys)


def _fail(
    session: Session,
    actor: Actor,
    org: Organisation,
    row: ConsumerService,
    peer: Peer,
    exc: FederationError,
) -> ConsumerServicePublic:
    row.status, row.description = ConsumerStatus.failed, f"{type(exc).__name__}: {exc}"[:2000]
    row.checked_at = utcnow()
    session.add(row)
    _record(session, actor, org, row, peer, "service.request_failed", error=row.description)
    commit(session)
    return describe(session, row)


def _service_in(
    session: Session, actor: Actor, organisation: str, service: uuid.UUID, action: Action
) -> tuple[Organisation, ConsumerService]:
    org = organisation_by_name(session, organisation)
    authorize(actor, action, org.id)
    row = session.get(ConsumerService, service)
    if row is None or row.organisation_id != org.id:
        raise NotFound(f"no requested service {service} in {org.name}")
    return org, row


def _record(
    session: Session,
    actor: Actor,
    org: Organisation,
    row: ConsumerService,
    peer: Peer,
    action: str,
    **extra: Any,
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        subject=f"service:{org.name}/{row.id}",
        organisation_id=org.id,
        payload={
            "peer": peer.name,
            "instance_id": str(row.id),
            "offering": row.offering_id,
            "plan": row.plan_id,
            "operation": row.operation,
            "status": row.status,
            "binding_id": row.binding_id,
            **extra,
        },
    )


def _sealing(row: ConsumerService) -> str:
    return f"consumer-service:{row.id}"
