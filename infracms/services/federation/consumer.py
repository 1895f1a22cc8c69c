"""Services our organisations request from peers (the consumer side of provisioning).

An owner or operator (``Action.service_request``) picks an offering from the federated
catalog for one of their organisations; the node records the request, sends the signed
OSB provision to the peer, and follows ``last_operation`` on demand and periodically
(``following``). Once provisioned it binds, and keeps the connection details sealed at
rest: only the organisation's owners and operators read them
(``Action.service_credentials``). The same people may move a service to another plan of
its offering or change its parameters (``update_service``, an OSB update), and have it
deprovisioned. No lock is held while a peer answers: each step commits before the next
network call. A peer that refuses or fails an update or a deprovision raises its
``FederationError`` (the service stays as it was); a refused request is stored failed.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from federation.broker import originating_identity, plan_updateable
from federation.errors import BrokerError, FederationError
from federation.models.catalog import Offering, Plan
from federation.models.osb import InfracmsContext, ProvisionRequest, UpdateRequest
from infracms.errors import Conflict, InvalidInput, NotFound
from infracms.keys import Keyring
from infracms.models.base import utcnow
from infracms.models.federation import ConsumerService, ConsumerStatus, Peer, PeerStatus
from infracms.models.organisation import Organisation
from infracms.services.authz import Action, authorize
from infracms.services.common import Fields, commit, found, organisation_by_name, parse
from infracms.services.context import Actor
from infracms.services.federation import following
from infracms.services.federation.directory import find_plan
from infracms.services.federation.following import client_for, follow_all, record, sealing_context
from infracms.services.federation.node import FederationContext
from infracms.services.federation.peers import active_peer
from infracms.services.federation.provisioning import check_parameters

__all__ = [
    "ConsumerServicePublic",
    "ServiceRequestIn",
    "ServiceUpdateIn",
    "change_choices",
    "deprovision_service",
    "describe",
    "follow_all",
    "get_service",
    "list_services",
    "refresh_service",
    "request_service",
    "service_credentials",
    "update_service",
]
CHANGEABLE = (ConsumerStatus.succeeded, ConsumerStatus.failed)


class ServiceRequestIn(BaseModel):
    """What a user asks a peer for."""

    peer: str = Field(max_length=253)
    offering_id: str = Field(max_length=100)
    plan_id: str = Field(max_length=128)
    parameters: dict[str, Any] = Field(default_factory=dict)


class ServiceUpdateIn(BaseModel):
    """A change asked of a service: another plan of its offering, other parameters (those
    given replace the ones of the same name; the others are kept)."""

    plan_id: str | None = Field(default=None, max_length=128)
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
    *,
    session: Session,
    actor: Actor,
    ctx: FederationContext,
    organisation: str,
    data: ServiceRequestIn | Fields,
) -> ConsumerServicePublic:
    """Ask a peer for one of its offerings on behalf of an organisation."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.service_request, org.id)
    wanted = parse(ServiceRequestIn, data)
    peer = active_peer(session, name=wanted.peer)
    _, plan = find_plan(session, peer=peer, offering_id=wanted.offering_id, plan_id=wanted.plan_id)
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
    record(
        session,
        actor=actor,
        org=org,
        row=row,
        peer=peer,
        action="service.request",
        parameters=wanted.parameters,
    )
    commit(session)
    request = ProvisionRequest(
        service_id=row.offering_id,
        plan_id=row.plan_id,
        parameters=row.parameters,
        context=_context(ctx, org, actor),
    )
    identity = originating_identity("infracms", {"user": actor.name, "organization": org.name})
    try:
        with client_for(session, ctx=ctx, peer=peer) as client:
            answer = client.provision(str(row.id), request, originating_identity=identity)
    except FederationError as exc:
        return _fail(session, actor, org, row, peer, exc)
    row.status = ConsumerStatus.in_progress if answer.pending else ConsumerStatus.succeeded
    row.operation, row.checked_at = answer.body.operation, utcnow()
    session.add(row)
    record(session, actor=actor, org=org, row=row, peer=peer, action="service.requested")
    commit(session)
    return describe(session, row=row)


def refresh_service(
    *, session: Session, actor: Actor, ctx: FederationContext, organisation: str, service: uuid.UUID
) -> ConsumerServicePublic:
    """Ask the peer how the service's last operation went; bind once it succeeded."""
    org, row = _service_in(session, actor, organisation, service, Action.service_read)
    following.follow(session, ctx=ctx, org=org, row=row, actor=actor)
    return describe(session, row=row)


def update_service(
    *,
    session: Session,
    actor: Actor,
    ctx: FederationContext,
    organisation: str,
    service: uuid.UUID,
    data: ServiceUpdateIn | Fields,
) -> ConsumerServicePublic:
    """Ask the provider for another plan of the service's offering, or other parameters;
    it applies the change as it provisioned the service, and the service is bound again."""
    org, row = _service_in(session, actor, organisation, service, Action.service_request)
    wanted = parse(ServiceUpdateIn, data)
    if row.status not in CHANGEABLE:
        raise Conflict(f"service {row.id} is {row.status}: only a provisioned one can change")
    peer = _active(session, row)
    plan_id = wanted.plan_id or row.plan_id
    _, plan = _plan_to(session, peer, row, plan_id)
    parameters = {**row.parameters, **wanted.parameters}
    check_parameters({"id": plan.id, "parameters": dict(plan.parameters)}, parameters)
    changed = {k: v for k, v in wanted.parameters.items() if row.parameters.get(k, ...) != v}
    if plan_id == row.plan_id and not changed:
        raise InvalidInput(
            "nothing to change: the service has this plan and these parameters",
            errors={"parameters": "the same as now"},
        )
    request = UpdateRequest(
        service_id=row.offering_id,
        plan_id=plan_id if plan_id != row.plan_id else None,
        parameters=changed or None,
        previous_values={"service_id": row.offering_id, "plan_id": row.plan_id},
        context=_context(ctx, org, actor),
    )
    identity = originating_identity("infracms", {"user": actor.name, "organization": org.name})
    try:
        with client_for(session, ctx=ctx, peer=peer) as client:
            answer = client.update_instance(str(row.id), request, originating_identity=identity)
    except FederationError as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        record(
            session,
            actor=actor,
            org=org,
            row=row,
            peer=peer,
            action="service.update_failed",
            error=error,
        )
        commit(session)
        raise
    previous = {"plan": row.plan_id, "parameters": row.parameters}
    row.plan_id, row.parameters = plan_id, parameters
    row.status, row.operation = ConsumerStatus.updating, answer.body.operation
    row.description, row.checked_at = f"change asked of {peer.name}", utcnow()
    session.add(row)
    record(
        session,
        actor=actor,
        org=org,
        row=row,
        peer=peer,
        action="service.update",
        previous=previous,
        changed=changed,
    )
    commit(session)
    if not answer.pending:  # done at once: bind again now
        following.follow(session, ctx=ctx, org=org, row=row, actor=actor)
    return describe(session, row=row)


def change_choices(
    *, session: Session, actor: Actor, organisation: str, service: uuid.UUID
) -> list[Plan]:
    """The plans a service may be changed to, its own first (only its own when its plan
    is not updateable); none when it cannot change now or its offering is not in the
    peer's last good catalog."""
    _, row = _service_in(session, actor, organisation, service, Action.service_read)
    peer = session.get(Peer, row.peer_id)
    if row.status not in CHANGEABLE or peer is None:
        return []
    try:
        offering, plan = find_plan(
            session, peer=peer, offering_id=row.offering_id, plan_id=row.plan_id
        )
    except NotFound:
        return []
    if not plan_updateable(offering, plan.id):
        return [plan]
    return [plan, *(other for other in offering.plans if other.id != plan.id)]


def deprovision_service(
    *, session: Session, actor: Actor, ctx: FederationContext, organisation: str, service: uuid.UUID
) -> ConsumerServicePublic:
    """Ask the peer to remove the service (unbinding first)."""
    org, row = _service_in(session, actor, organisation, service, Action.service_request)
    if row.status in (ConsumerStatus.ended, ConsumerStatus.deprovisioning):
        raise Conflict(f"service {row.id} is already {row.status}")
    if row.status is ConsumerStatus.updating:
        raise Conflict(f"service {row.id} is being changed: deprovision it once that is applied")
    peer = session.get(Peer, row.peer_id)
    peer = found(peer, "the peer")
    with client_for(session, ctx=ctx, peer=peer) as client:
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
    record(session, actor=actor, org=org, row=row, peer=peer, action="service.deprovision")
    commit(session)
    return describe(session, row=row)


def list_services(
    *, session: Session, actor: Actor, organisation: str
) -> list[ConsumerServicePublic]:
    """The services an organisation requested from peers, newest first."""
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.service_read, org.id)
    rows = session.exec(
        select(ConsumerService)
        .where(ConsumerService.organisation_id == org.id)
        .order_by(col(ConsumerService.created_at).desc())
    ).all()
    return [describe(session, row=row) for row in rows]


def get_service(
    *, session: Session, actor: Actor, organisation: str, service: uuid.UUID
) -> ConsumerServicePublic:
    """One requested service."""
    _, row = _service_in(session, actor, organisation, service, Action.service_read)
    return describe(session, row=row)


def service_credentials(
    *, session: Session, actor: Actor, keyring: Keyring, organisation: str, service: uuid.UUID
) -> dict[str, Any]:
    """The connection details the provider handed over (owners and operators only)."""
    _, row = _service_in(session, actor, organisation, service, Action.service_credentials)
    if row.sealed is None:
        raise NotFound(f"service {row.id} has no connection details (yet)")
    value: dict[str, Any] = json.loads(keyring.open(row.sealed, context=sealing_context(row)))
    return value


def describe(session: Session, *, row: ConsumerService) -> ConsumerServicePublic:
    """A requested service without its secrets."""
    org = session.get(Organisation, row.organisation_id)
    peer = session.get(Peer, row.peer_id)
    return ConsumerServicePublic(
        **row.model_dump(exclude={"sealed", "binding_id", "organisation_id", "peer_id"}),
        organisation=org.name if org else "?",
        peer=peer.name if peer else "?",
        has_credentials=row.sealed is not None,
    )


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
    record(
        session,
        actor=actor,
        org=org,
        row=row,
        peer=peer,
        action="service.request_failed",
        error=row.description,
    )
    commit(session)
    return describe(session, row=row)


def _active(session: Session, row: ConsumerService) -> Peer:
    peer = session.get(Peer, row.peer_id)
    peer = found(peer, "the peer")
    if peer.status is not PeerStatus.active:
        raise Conflict(f"peer {peer.name} is {peer.status}: it takes no requests")
    return peer


def _plan_to(
    session: Session, peer: Peer, row: ConsumerService, plan_id: str
) -> tuple[Offering, Plan]:
    """The plan the service is to have, in the peer's last good catalog."""
    try:
        offering, plan = find_plan(session, peer=peer, offering_id=row.offering_id, plan_id=plan_id)
    except NotFound as exc:
        raise InvalidInput(exc.detail, errors={"plan_id": exc.detail}) from exc
    if plan_id != row.plan_id and not plan_updateable(offering, row.plan_id):
        message = f"{peer.name} lets no instance of {row.offering_id} change its plan"
        raise InvalidInput(message, errors={"plan_id": message})
    return offering, plan


def _context(ctx: FederationContext, org: Organisation, actor: Actor) -> dict[str, Any]:
    return InfracmsContext(
        node=ctx.name,
        organization=str(org.id),
        organization_name=org.name,
        requested_by=actor.name,
    ).to_json_value()


def _service_in(
    session: Session, actor: Actor, organisation: str, service: uuid.UUID, action: Action
) -> tuple[Organisation, ConsumerService]:
    org = organisation_by_name(session, name=organisation)
    authorize(actor, action, org.id)
    row = session.get(ConsumerService, service)
    if row is None or row.organisation_id != org.id:
        raise NotFound(f"no requested service {service} in {org.name}")
    return org, row
