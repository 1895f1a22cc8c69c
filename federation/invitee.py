"""The invitee's side of peering: accept an invitation token (PROTOCOL.md section 3)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx

from federation import urls
from federation._http import DEFAULT_TIMEOUT, SignedHttp
from federation.client import Peer, PeerClient
from federation.encoding import utc_now
from federation.errors import IdentityMismatch, InvitationExpired, PeerAnswerError
from federation.httpsig import SignaturePolicy
from federation.keys import NodeKey, StaticKeyResolver
from federation.models.base import load
from federation.models.peering import NodeIdentity, PeeringAcceptance, PeeringRequest
from federation.peering import read_invitation, verify_invitation


def fetch_identity(
    base_url: str,
    *,
    key: NodeKey,
    transport: httpx.BaseTransport | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    allow_loopback_http: bool = False,
    clock: Callable[[], datetime] = utc_now,
) -> NodeIdentity:
    """``GET /federation/v1/identity``; unverified: trust comes from an invitation's fingerprint."""
    http = SignedHttp(
        base_url=base_url,
        key=key,
        peer_keys=None,
        transport=transport,
        timeout=timeout,
        allow_loopback_http=allow_loopback_http,
        clock=clock,
        policy=SignaturePolicy(),
    )
    try:
        exchange = http.send("GET", urls.IDENTITY_PATH)
    finally:
        http.close()
    if exchange.status_code != 200:
        raise PeerAnswerError(
            f"GET {exchange.request.url} answered {exchange.status_code}, expected 200",
            status_code=exchange.status_code,
        )
    return load(NodeIdentity, exchange.response.body, f"identity of {base_url}")


def accept_invitation(
    token: str,
    *,
    own: NodeIdentity,
    key: NodeKey,
    transport: httpx.BaseTransport | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    allow_loopback_http: bool = False,
    clock: Callable[[], datetime] = utc_now,
) -> PeeringAcceptance:
    """Fetch the inviter's identity, check it against the token, and ask to peer.

    Returns the inviter's acceptance; the caller pins ``acceptance.node``.
    """
    invitation = read_invitation(token).invitation
    if clock() > invitation.expires_at:
        raise InvitationExpired(
            f"invitation {invitation.id} expired at {invitation.expires_at.isoformat()}"
        )
    options = {
        "transport": transport,
        "timeout": timeout,
        "allow_loopback_http": allow_loopback_http,
    }
    inviter = fetch_identity(invitation.url, key=key, clock=clock, **options)  # type: ignore[arg-type]
    verify_invitation(token, inviter=inviter, now=clock())
    peer = Peer(inviter.name, inviter.base_url, StaticKeyResolver([inviter.trusted_key()]))
    with PeerClient(
        peer=peer,
        key=key,
        transport=transport,
        timeout=timeout,
        allow_loopback_http=allow_loopback_http,
        clock=clock,
    ) as client:
        acceptance = client.request_peering(PeeringRequest(invitation=token, node=own))
    if acceptance.node != inviter or acceptance.peer != own.name:
        raise IdentityMismatch(
            f"acceptance is from {acceptance.node.name} for {acceptance.peer}, "
            f"expected {inviter.name} for {own.name}"
        )
    return acceptance
