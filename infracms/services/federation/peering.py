"""Peering: invitations, accepting one, answering a peering request, suspend, resume, revoke.

Node admins manage peers (``Action.peer_manage``). A peering request from another node
is checked by ``federation.peering.open_peering_request`` (token, identity, signature,
nonce) and then consumes the invitation id atomically: a token works once, even when
two requests race. The token itself is never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import update
from sqlmodel import Session, col, select

from federation import peering as protocol
from federation.errors import InvitationExpired, MalformedMessage, URLRefused
from federation.invitee import accept_invitation as ask_to_peer
from federation.messages import HttpRequest
from federation.models.peering import Invitation, NodeIdentity, PeeringAcceptance
from federation.nonces import NonceStore
from infracms.errors import Conflict, InvalidInput, NotFound
from infracms.models.base import utcnow
from infracms.models.federation import Peer, PeerInvitation, PeerKey, PeerStatus
from infracms.services import audit
from infracms.services.authz import Action, authorize
from infracms.services.common import commit
from infracms.services.context import Actor
from infracms.services.federation.node import FederationContext
from infracms.services.federation.peers import PeerPublic, describe, peer_by_name

MAX_INVITATION_HOURS = 24 * 30


@dataclass(frozen=True)
class IssuedInvitation:
    """A new invitation: the token is shown once and never stored."""

    id: str
    token: str
    expires_at: datetime


def create_invitation(
    *, session: Session, actor: Actor, ctx: FederationContext, valid_hours: int = 72
) -> IssuedInvitation:
    """Make a one-time invitation token for another node's admin."""
    authorize(actor, Action.peer_manage, None)
    if not 1 <= valid_hours <= MAX_INVITATION_HOURS:
        raise InvalidInput(
            "bad expiry", errors={"valid_hours": f"must be 1 to {MAX_INVITATION_HOURS}"}
        )
    identity = ctx.identity
    expires_at = (ctx.clock() + timedelta(hours=valid_hours)).replace(microsecond=0)
    invitation, token = protocol.create_invitation(
        key=ctx.key, inviter=identity.name, url=identity.base_url, expires_at=expires_at
    )
    session.add(PeerInvitation(id=invitation.id, expires_at=expires_at, created_by=actor.name))
    audit.record(
        session,
        actor=actor,
        action="peer.invite",
        subject=f"invitation:{invitation.id}",
        payload={"invitation": invitation.id, "expires_at": expires_at.isoformat()},
    )
    commit(session)
    return IssuedInvitation(invitation.id, token, expires_at)


class InvitationPublic(BaseModel):
    """An invitation this node made, and where it stands: open, used or ended."""

    id: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_by: str | None
    state: str  # "open", "used" (by used_by) or "ended" (expired or revoked)


def list_invitations(
    *, session: Session, actor: Actor, now: datetime | None = None, limit: int = 50
) -> list[InvitationPublic]:
    """The invitations this node made, newest first (the tokens are never stored)."""
    authorize(actor, Action.peer_manage, None)
    moment = now or utcnow()
    rows = session.exec(
        select(PeerInvitation).order_by(col(PeerInvitation.created_at).desc()).limit(limit)
    ).all()
    return [_invitation_public(row, moment) for row in rows]


def revoke_invitation(
    *, session: Session, actor: Actor, invitation_id: str, now: datetime | None = None
) -> InvitationPublic:
    """End an open invitation now: its token is refused from then on (audited)."""
    authorize(actor, Action.peer_manage, None)
    moment = now or utcnow()
    row = session.get(PeerInvitation, invitation_id)
    if row is None:
        raise NotFound(f"no invitation {invitation_id!r}")
    state = _invitation_public(row, moment).state
    if state != "open":
        raise Conflict(f"invitation {invitation_id!r} is {state} already")
    row.expires_at = moment
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="peer.invitation_revoke",
        subject=f"invitation:{invitation_id}",
        payload={"invitation": invitation_id},
    )
    commit(session)
    return _invitation_public(row, moment)


def _invitation_public(row: PeerInvitation, now: datetime) -> InvitationPublic:
    state = "used" if row.used_at is not None else "open" if row.expires_at > now else "ended"
    return InvitationPublic(
        id=row.id,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
        used_by=row.used_by,
        state=state,
    )


def _read_token(token: str) -> Invitation:
    """The invitation a token carries; a token that does not parse is bad input (422),
    not a failure of a peer: none has been contacted."""
    try:
        return protocol.read_invitation(token).invitation
    except MalformedMessage as exc:
        raise InvalidInput(
            "the invitation token does not parse", errors={"token": str(exc)}
        ) from exc


def accept_invitation(
    *, session: Session, actor: Actor, ctx: FederationContext, token: str
) -> PeerPublic:
    """Accept another node's invitation: check it, ask that node to peer, pin its key."""
    authorize(actor, Action.peer_manage, None)
    invitation = _read_token(token)
    _refuse_known(session, invitation.inviter)
    session.rollback()  # hold no write lock while the other node answers
    try:
        acceptance = ask_to_peer(
            token,
            own=ctx.identity,
            key=ctx.key,
            transport=ctx.transport,
            allow_loopback_http=ctx.allow_loopback_http,
            clock=ctx.clock,
        )
    except URLRefused as exc:  # the token names a URL this node may not contact
        raise InvalidInput(f"no peer was contacted: {exc}", errors={"token": str(exc)}) from exc
    _refuse_known(session, acceptance.node.name)
    peer = _pin(session, acceptance.node, invited_by_us=False)
    audit.record(
        session,
        actor=actor,
        action="peer.accept",
        subject=f"peer:{peer.name}",
        payload={
            "peer": peer.name,
            "base_url": peer.base_url,
            "key_id": acceptance.node.key_id,
            "invitation": invitation.id,
        },
    )
    commit(session, conflict=f"a peer called {peer.name!r} exists already")
    return describe(session, peer=peer)


def receive_peering_request(
    *, session: Session, ctx: FederationContext, request: HttpRequest, nonces: NonceStore
) -> PeeringAcceptance:
    """Inviter side of ``POST /federation/v1/peering``: check, consume the token, pin."""
    now = ctx.clock()
    opened = protocol.open_peering_request(request, own=ctx.identity, nonces=nonces, now=now)
    invitation, node = opened.invitation, opened.peer
    _refuse_known(session, node.name)
    consumed = session.execute(
        update(PeerInvitation)
        .where(
            col(PeerInvitation.id) == invitation.id,
            col(PeerInvitation.used_at).is_(None),
            col(PeerInvitation.expires_at) >= now,
        )
        .values(used_at=now, used_by=node.name)
    )
    if consumed.rowcount != 1:  # type: ignore[attr-defined]
        raise InvitationExpired(
            f"invitation {invitation.id} was not issued by this node, or was already used"
        )
    _pin(session, node, invited_by_us=True)
    audit.record(
        session,
        actor=Actor(kind="peer", id=node.name, name=f"peer:{node.name}"),
        action="peer.join",
        subject=f"peer:{node.name}",
        payload={
            "peer": node.name,
            "base_url": node.base_url,
            "key_id": node.key_id,
            "invitation": invitation.id,
            "nonce": opened.signature.nonce,
        },
    )
    commit(session, conflict=f"a peer called {node.name!r} exists already")
    return PeeringAcceptance(node=ctx.identity, peer=node.name, accepted_at=now)


def set_status(*, session: Session, actor: Actor, name: str, status: PeerStatus) -> PeerPublic:
    """Suspend, resume (active) or revoke a peer; a revoked peer's keys are removed for good."""
    authorize(actor, Action.peer_manage, None)
    peer = peer_by_name(session, name=name)
    if peer.status is PeerStatus.revoked:
        raise Conflict(f"peer {name} was revoked; it can only peer again by a new invitation")
    if peer.status is status:
        return describe(session, peer=peer)
    before = peer.status
    peer.status, peer.changed_at = status, utcnow()
    session.add(peer)
    if status is PeerStatus.revoked:
        for key in session.exec(select(PeerKey).where(PeerKey.peer_id == peer.id)).all():
            session.delete(key)
    verb = {"active": "resume", "suspended": "suspend", "revoked": "revoke"}[status]
    audit.record(
        session,
        actor=actor,
        action=f"peer.{verb}",
        subject=f"peer:{peer.name}",
        payload={"peer": peer.name, "before": before, "after": status},
    )
    commit(session)
    return describe(session, peer=peer)


def list_peers(*, session: Session, actor: Actor) -> list[PeerPublic]:
    """Every peer, by name."""
    authorize(actor, Action.peer_manage, None)
    peers = session.exec(select(Peer).order_by(col(Peer.name))).all()
    return [describe(session, peer=peer) for peer in peers]


def get_peer(*, session: Session, actor: Actor, name: str) -> PeerPublic:
    """One peer with its keys."""
    authorize(actor, Action.peer_manage, None)
    return describe(session, peer=peer_by_name(session, name=name))


def _refuse_known(session: Session, name: str) -> None:
    if session.exec(select(Peer.id).where(Peer.name == name)).first() is not None:
        raise Conflict(f"{name} is already a peer (revoked peers stay listed)")


def _pin(session: Session, node: NodeIdentity, *, invited_by_us: bool) -> Peer:
    peer = Peer(name=node.name, base_url=node.base_url, invited_by_us=invited_by_us)
    session.add(peer)
    session.flush()
    session.add(PeerKey(key_id=node.key_id, peer_id=peer.id, public_key=node.public_key))
    return peer
