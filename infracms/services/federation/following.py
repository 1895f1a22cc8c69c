"""Following a service requested from a peer: its last operation, then its binding.

The node follows a service on demand (Refresh) and periodically (``follow_all``), so two
followers may ask the provider about one service at once. No lock is held while a peer
answers; what a follower learnt is written only if the service is still as it read it (a
compare-and-set on its status and binding id), and a binding is made only by the
follower that claimed it first: the provider never gets two bindings for one service,
and each change is audited once. After an update succeeded the service is bound again
(the connection details may have changed) and the old binding dropped.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from federation.client import PeerClient
from federation.errors import BrokerError, FederationError
from federation.models.osb import BindRequest, LastOperationState
from infracms.models.base import utcnow
from infracms.models.federation import ConsumerService, ConsumerStatus, Peer
from infracms.models.organisation import Organisation
from infracms.services import audit
from infracms.services.common import found
from infracms.services.context import Actor, system_actor
from infracms.services.federation.node import FederationContext
from infracms.services.federation.peers import keys_of

S = ConsumerStatus
FOLLOWED = (S.in_progress, S.updating, S.deprovisioning, S.succeeded)


@dataclass
class Seen:
    """The service as a follower read it: what its compare-and-set expects."""

    status: ConsumerStatus
    binding_id: str | None


@dataclass
class Learnt:
    """What a follower learnt from the provider, to be written if nobody came first."""

    status: ConsumerStatus
    description: str | None
    binding_id: str | None = None
    sealed: str | None = None


class _Overtaken(Exception):
    """Another follower claimed the binding: it writes what it learns."""


def follow_all(session: Session, *, ctx: FederationContext) -> int:
    """The periodic job: follow every service still in progress; how many were asked."""
    rows = session.exec(
        select(ConsumerService).where(
            col(ConsumerService.status).in_((S.in_progress, S.updating, S.deprovisioning))
        )
    ).all()
    for row in rows:
        org = session.get(Organisation, row.organisation_id)
        org = found(org, "the organisation")
        follow(session, ctx=ctx, org=org, row=row, actor=system_actor("service-follow"))
    return len(rows)


def follow(
    session: Session,
    *,
    ctx: FederationContext,
    org: Organisation,
    row: ConsumerService,
    actor: Actor,
) -> None:
    """Ask the provider how the service goes, bind it once it succeeded, and store that."""
    if row.status not in FOLLOWED or (row.status is S.succeeded and row.sealed):
        return
    peer = session.get(Peer, row.peer_id)
    peer = found(peer, "the peer")
    seen, learnt = Seen(row.status, row.binding_id), Learnt(row.status, row.description)
    try:
        with client_for(session, ctx=ctx, peer=peer) as client:
            if row.status is not S.succeeded:
                _poll(client, row, learnt)
            if learnt.status is S.succeeded and (row.sealed is None or seen.status is S.updating):
                _bind(session, client, ctx, row, seen, learnt)
    except _Overtaken:
        session.refresh(row)
        return
    except FederationError as exc:
        learnt.description = f"{type(exc).__name__}: {exc}"[:2000]
        if seen.status is S.updating and learnt.sealed is None:
            learnt.status = S.updating  # bound again only then: the next follow tries again
    _store(session, actor, org, row, peer, seen, learnt)


def _poll(client: PeerClient, row: ConsumerService, learnt: Learnt) -> None:
    try:
        answer = client.last_operation(
            str(row.id), service_id=row.offering_id, plan_id=row.plan_id, operation=row.operation
        )
    except BrokerError as exc:
        if exc.status_code == 410 and row.status is S.deprovisioning:
            learnt.status = S.ended
            return
        raise
    learnt.description = answer.description
    if answer.state is LastOperationState.SUCCEEDED:
        learnt.status = S.ended if row.status is S.deprovisioning else S.succeeded
    elif answer.state is LastOperationState.FAILED:
        learnt.status = S.failed


def _bind(
    session: Session,
    client: PeerClient,
    ctx: FederationContext,
    row: ConsumerService,
    seen: Seen,
    learnt: Learnt,
) -> None:
    """Claim a new binding id, bind with it, and drop the binding it replaces."""
    binding_id, old = str(uuid.uuid4()), seen.binding_id
    if not _compare_and_set(session, row, seen, binding_id=binding_id):
        session.rollback()
        raise _Overtaken
    session.commit()
    seen.binding_id = binding_id
    try:
        answer = client.bind(
            str(row.id), binding_id, BindRequest(service_id=row.offering_id, plan_id=row.plan_id)
        )
    except FederationError:
        _compare_and_set(session, row, seen, binding_id=old)  # give the claim back
        session.commit()
        seen.binding_id = old
        raise
    credentials = answer.body.credentials or {}
    learnt.binding_id = binding_id
    learnt.sealed = ctx.keyring.seal(json.dumps(credentials), context=sealing_context(row))
    if old is not None:
        try:
            client.unbind(str(row.id), old, service_id=row.offering_id, plan_id=row.plan_id)
        except FederationError as exc:  # the new details are in hand; the old binding stays
            learnt.description = f"{learnt.description or ''} (binding {old} kept: {exc})"


def _store(
    session: Session,
    actor: Actor,
    org: Organisation,
    row: ConsumerService,
    peer: Peer,
    seen: Seen,
    learnt: Learnt,
) -> None:
    """Write what was learnt if the service is still as seen, with its audit entry."""
    values: dict[str, Any] = {
        "status": learnt.status,
        "description": learnt.description,
        "checked_at": utcnow(),
    }
    if learnt.status is S.ended:
        values["ended_at"] = utcnow()
    if learnt.sealed is not None:
        values |= {"binding_id": learnt.binding_id, "sealed": learnt.sealed}
    if not _compare_and_set(session, row, seen, **values):
        session.rollback()  # another follower wrote first: its news stand
        session.refresh(row)
        return
    session.refresh(row)
    if row.status is not seen.status or learnt.sealed is not None:
        record(
            session, actor=actor, org=org, row=row, peer=peer, action=f"service.{row.status.name}"
        )
    session.commit()


def _compare_and_set(session: Session, row: ConsumerService, seen: Seen, **values: Any) -> bool:
    """Set `values` on the service (in the session's transaction) if its status and
    binding id are still those `seen`."""
    binding = col(ConsumerService.binding_id)
    result = session.execute(
        update(ConsumerService)
        .where(
            col(ConsumerService.id) == row.id,
            col(ConsumerService.status) == seen.status,
            binding.is_(None) if seen.binding_id is None else binding == seen.binding_id,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def client_for(session: Session, *, ctx: FederationContext, peer: Peer) -> PeerClient:
    """A client for the peer; the session's transaction ends first (no lock held while the
    peer answers)."""
    name, base_url, peer_keys = peer.name, peer.base_url, keys_of(session, peer=peer)
    session.commit()
    return ctx.client(name, base_url, peer_keys)


def record(
    session: Session,
    *,
    actor: Actor,
    org: Organisation,
    row: ConsumerService,
    peer: Peer,
    action: str,
    **extra: Any,
) -> None:
    """The audit entry of a change to a requested service (the provider's cross-reference)."""
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


def sealing_context(row: ConsumerService) -> str:
    """The context a service's connection details are sealed with."""
    return f"consumer-service:{row.id}"
