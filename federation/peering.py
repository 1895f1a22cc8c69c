"""Invitations and peering (PROTOCOL.md section 3).

An invitation token is ``inv1.<base64url(JCS(invitation))>.<base64url(signature)>``;
the signature covers ``"infracms-federation/v1 invitation" || 0x0A || JCS(invitation)``
by the inviter's key. The invitee fetches the inviter's identity from the token's URL,
accepts it only if its key id equals the token's fingerprint, checks the token's
signature with that key, and sends a signed ``PeeringRequest``. The inviter checks its
own token, the request's signature by the key the request itself carries, and
consumes the token id (the node does that atomically in its database).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from federation.encoding import (
    CONTEXT_INVITATION,
    b64url_decode,
    b64url_encode,
    canonical_json,
    parse_json,
)
from federation.errors import IdentityMismatch, InvitationExpired, MalformedMessage
from federation.httpsig import SignaturePolicy, VerifiedSignature, verify_request
from federation.keys import NodeKey, StaticKeyResolver, TrustedKey
from federation.messages import HttpRequest
from federation.models.base import load
from federation.models.peering import Invitation, NodeIdentity, PeeringRequest
from federation.nonces import NonceStore

TOKEN_PREFIX = "inv1"


@dataclass(frozen=True)
class InvitationToken:
    """A decoded token: the invitation, the exact signed payload bytes, and the signature."""

    invitation: Invitation
    payload: bytes
    signature: bytes

    def verify(self, key: TrustedKey) -> None:
        """Check the token's signature by the inviter's key."""
        key.verify(self.signature, CONTEXT_INVITATION.encode() + b"\n" + self.payload, "invitation")


def create_invitation(
    *, key: NodeKey, inviter: str, url: str, expires_at: datetime, invitation_id: str | None = None
) -> tuple[Invitation, str]:
    """A new one-time invitation and its token; the node stores the id until it is used."""
    invitation = Invitation(
        id=invitation_id or secrets.token_hex(16),
        inviter=inviter,
        url=url,
        fingerprint=key.key_id,
        expires_at=expires_at,
    )
    payload = canonical_json(invitation.to_json_value())
    signature = key.sign(CONTEXT_INVITATION.encode() + b"\n" + payload)
    return invitation, f"{TOKEN_PREFIX}.{b64url_encode(payload)}.{b64url_encode(signature)}"


def read_invitation(token: str) -> InvitationToken:
    """Decode a token without checking its signature (to show whom it is from, and where)."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise MalformedMessage(f"invitation token must be '{TOKEN_PREFIX}.<payload>.<signature>'")
    payload = b64url_decode(parts[1], "invitation payload")
    value = parse_json(payload, "invitation payload")
    if canonical_json(value) != payload:
        raise MalformedMessage("invitation payload is not RFC 8785 canonical JSON")
    invitation = load(Invitation, value, "invitation")
    return InvitationToken(invitation, payload, b64url_decode(parts[2], "invitation signature"))


def verify_invitation(token: str, *, inviter: NodeIdentity, now: datetime) -> Invitation:
    """Check a token against the inviter's identity: fingerprint, name, URL, signature, expiry."""
    decoded = read_invitation(token)
    invitation = decoded.invitation
    if inviter.key_id != invitation.fingerprint:
        raise IdentityMismatch(
            f"inviter's key id is {inviter.key_id}, the invitation expects {invitation.fingerprint}"
        )
    if (inviter.name, inviter.base_url) != (invitation.inviter, invitation.url):
        raise IdentityMismatch(
            f"inviter is {inviter.name} at {inviter.base_url}, the invitation names "
            f"{invitation.inviter} at {invitation.url}"
        )
    decoded.verify(inviter.trusted_key())
    if now > invitation.expires_at:
        raise InvitationExpired(
            f"invitation {invitation.id} expired at {invitation.expires_at.isoformat()}"
        )
    return invitation


@dataclass(frozen=True)
class OpenedPeeringRequest:
    """A peering request that passed every check; the node now consumes ``invitation.id``."""

    request: PeeringRequest
    invitation: Invitation
    signature: VerifiedSignature

    @property
    def peer(self) -> NodeIdentity:
        """The invitee's identity, to pin."""
        return self.request.node


def open_peering_request(
    request: HttpRequest,
    *,
    own: NodeIdentity,
    nonces: NonceStore,
    now: datetime,
    policy: SignaturePolicy = SignaturePolicy(),
) -> OpenedPeeringRequest:
    """Inviter side of ``POST /federation/v1/peering``: check token, identity and signature."""
    body = load(PeeringRequest, request.body, "peering request")
    invitation = verify_invitation(body.invitation, inviter=own, now=now)
    if body.node.name == own.name or body.node.key_id == own.key_id:
        raise IdentityMismatch("a node cannot peer with itself")
    keys = StaticKeyResolver([body.node.trusted_key()])
    signature = verify_request(request, keys=keys, nonces=nonces, now=now, policy=policy)
    return OpenedPeeringRequest(body, invitation, signature)
