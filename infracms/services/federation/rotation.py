"""Key rotation: pinning a peer's new key, and replacing this node's own key.

A peer's rotation statement arrives signed (HTTP signature) by its old key; once
``federation.rotation.verify_key_rotation`` accepts it, the old key gets an end of
validity and the new one is pinned from ``issued_at``. This node's own rotation writes
the new key file (the old one kept beside it until the overlap ends, to resend the
statement), records it, and sends the statement to every active peer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from sqlmodel import Session, select

from federation.errors import FederationError, IdentityMismatch
from federation.httpsig import CLOCK_SKEW, VerifiedSignature
from federation.keys import NodeKey
from federation.messages import HttpRequest
from federation.rotation import SignedKeyRotation, rotate_key, verify_key_rotation
from infracms.errors import ConfigurationError, InvalidInput
from infracms.keys import load_identity, write_private_file
from infracms.models.federation import Peer, PeerKey, PeerStatus
from infracms.services import audit
from infracms.services.authz import Action, authorize
from infracms.services.common import commit, found
from infracms.services.context import Actor
from infracms.services.federation.node import FederationContext
from infracms.services.federation.peers import keys_of, peer_by_name

STATEMENT_FILE = "key-rotation.json"
MAX_OVERLAP_DAYS = 30


@dataclass(frozen=True)
class RotationReport:
    """Which key replaced which, and which peers were told (or why not)."""

    old_key_id: str
    new_key_id: str
    delivered: list[str]
    failed: dict[str, str]


def receive_key_rotation(
    *,
    session: Session,
    ctx: FederationContext,
    request: HttpRequest,
    signature: VerifiedSignature,
) -> None:
    """``POST /federation/v1/key-rotation`` from a peer whose request was verified."""
    peer = peer_by_name(session, name=signature.peer)
    statement = verify_key_rotation(
        request.body, pinned=signature.key, now=ctx.clock(), skew=CLOCK_SKEW
    )
    if signature.key_id != statement.rotation.old_key_id:
        raise IdentityMismatch(
            f"rotation of key {statement.rotation.old_key_id} sent with key {signature.key_id}"
        )
    rotation = statement.rotation
    if session.get(PeerKey, rotation.new_key_id) is not None:
        return  # already pinned: a resent statement
    old = found(session.get(PeerKey, rotation.old_key_id), "the key that signed the request")
    ending, starting = statement.pinned_keys(signature.key)
    old.not_after = ending.not_after
    session.add(old)
    session.add(
        PeerKey(
            key_id=rotation.new_key_id,
            peer_id=peer.id,
            public_key=rotation.new_public_key,
            not_before=starting.not_before,
        )
    )
    audit.record(
        session,
        actor=Actor(kind="peer", id=peer.name, name=f"peer:{peer.name}"),
        action="peer.key_rotation",
        subject=f"peer:{peer.name}",
        payload={
            "peer": peer.name,
            "old_key_id": rotation.old_key_id,
            "new_key_id": rotation.new_key_id,
            "issued_at": rotation.issued_at.isoformat(),
            "old_key_valid_until": rotation.old_key_valid_until.isoformat(),
            "nonce": signature.nonce,
        },
    )
    commit(session)


def rotate_own_key(
    *, session: Session, actor: Actor, ctx: FederationContext, overlap_days: int = 7
) -> RotationReport:
    """Replace this node's key: write the new key, record it, tell every active peer."""
    authorize(actor, Action.peer_manage, None)
    if not 0 <= overlap_days <= MAX_OVERLAP_DAYS:
        raise InvalidInput("bad overlap", errors={"overlap_days": "must be 0 to 30"})
    old, new = ctx.key, NodeKey.generate()
    statement = rotate_key(
        node=ctx.name,
        old=old,
        new=new,
        issued_at=ctx.clock().replace(microsecond=0),
        overlap=timedelta(days=overlap_days),
    )
    _save_keys(ctx, old, new, statement)
    audit.record(
        session,
        actor=actor,
        action="node.key_rotation",
        subject=f"node:{ctx.name}",
        payload={
            "old_key_id": old.key_id,
            "new_key_id": new.key_id,
            "old_key_valid_until": statement.rotation.old_key_valid_until.isoformat(),
        },
    )
    commit(session)
    return send_key_rotation(session=session, actor=actor, ctx=ctx)


def send_key_rotation(*, session: Session, actor: Actor, ctx: FederationContext) -> RotationReport:
    """Send the latest rotation statement to every active peer, signed by the old key."""
    authorize(actor, Action.peer_manage, None)
    statement, old = _load_statement(ctx)
    sender = dataclasses.replace(ctx, key=old)
    peers = session.exec(select(Peer).where(Peer.status == PeerStatus.active)).all()
    targets = [(p.name, p.base_url, keys_of(session, peer=p)) for p in peers]
    session.rollback()  # hold no lock while peers answer
    delivered, failed = [], {}
    for name, base_url, peer_keys in targets:
        try:
            with sender.client(name, base_url, peer_keys) as client:
                client.send_key_rotation(statement)
            delivered.append(name)
        except FederationError as exc:
            failed[name] = str(exc)
    audit.record(
        session,
        actor=actor,
        action="node.key_rotation.send",
        subject=f"node:{ctx.name}",
        payload={
            "new_key_id": statement.rotation.new_key_id,
            "delivered": delivered,
            "failed": sorted(failed),
        },
    )
    commit(session)
    return RotationReport(old.key_id, statement.rotation.new_key_id, delivered, failed)


def _previous_key_path(ctx: FederationContext) -> Path:
    path = ctx.settings.resolved_identity_key_file
    return path.with_name(path.name + ".previous")


def _save_keys(
    ctx: FederationContext, old: NodeKey, new: NodeKey, statement: SignedKeyRotation
) -> None:
    write_private_file(_previous_key_path(ctx), _pem(old))
    write_private_file(ctx.settings.data_dir / STATEMENT_FILE, statement.to_bytes())
    write_private_file(ctx.settings.resolved_identity_key_file, _pem(new))


def _load_statement(ctx: FederationContext) -> tuple[SignedKeyRotation, NodeKey]:
    path = ctx.settings.data_dir / STATEMENT_FILE
    if not path.exists():
        raise ConfigurationError("this node has not rotated its key")
    previous = ctx.settings.model_copy(update={"identity_key_file": _previous_key_path(ctx)})
    old = NodeKey(load_identity(previous))
    statement = verify_key_rotation(
        path.read_bytes(),
        pinned=old.trusted(ctx.name),
        now=ctx.clock(),
        skew=CLOCK_SKEW,
    )
    return statement, old


def _pem(key: NodeKey) -> bytes:
    return key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
