"""What one peer may ask of this node per minute, and how many requests it may leave
pending (PROTOCOL.md section 8.1): counted from rows the node keeps anyway (the nonce
of each signed request, the pending instances), so no counter can drift."""

from __future__ import annotations

import uuid

from sqlmodel import Session, func, select

from infracms.models.base import utcnow
from infracms.models.federation import InstanceStatus, ServiceInstance
from infracms.services.federation.broker_errors import TooManyPending, TooManyRequests
from infracms.services.federation.nonces import recent_requests


def check_rate(session: Session, *, peer_id: uuid.UUID, peer: str, per_minute: int) -> None:
    """Refuse (429) a peer's request beyond ``per_minute`` signed requests in a minute."""
    count = recent_requests(session, peer_id=peer_id, now=utcnow())
    if count > per_minute:
        raise TooManyRequests(
            f"{peer} sent {count} signed requests in the last minute, at most {per_minute} "
            "are answered; nothing was changed, try again in a minute"
        )


def check_pending(session: Session, *, client: str, most: int) -> None:
    """Refuse (429) a new request from a client that already has ``most`` pending."""
    pending = session.exec(
        select(func.count())
        .select_from(ServiceInstance)
        .where(ServiceInstance.client == client, ServiceInstance.status == InstanceStatus.pending)
    ).one()
    if pending >= most:
        raise TooManyPending(
            f"{client} has {pending} requests awaiting consent, at most {most} are kept; "
            "nothing was stored, ask again once some are decided"
        )
