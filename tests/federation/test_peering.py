"""Invitations and peering, on both sides, and the refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from federation.encoding import canonical_json
from federation.errors import (
    IdentityMismatch,
    InvitationExpired,
    MalformedMessage,
    NonceReused,
    SignatureInvalid,
)
from federation.httpsig import sign_request
from federation.invitee import accept_invitation
from federation.messages import HttpRequest, HttpResponse
from federation.models import PeeringAcceptance, PeeringRequest
from federation.nonces import MemoryNonceStore
from federation.peering import (
    create_invitation,
    open_peering_request,
    read_invitation,
    verify_invitation,
)
from federation.urls import PEERING_PATH
from tests.federation.helpers import A_KEY, B_KEY, C_KEY, NOW, FakeNode, identity, later

A = identity("a.example", A_KEY)
B = identity("b.example", B_KEY)
EXPIRES = NOW + timedelta(days=2)


def _token(**changes: object) -> str:
    options = {
        "key": A_KEY,
        "inviter": "a.example",
        "url": "https://a.example",
        "expires_at": EXPIRES,
    }
    return create_invitation(**(options | changes))[1]  # type: ignore[arg-type]


def test_token_is_compact_and_carries_name_url_fingerprint_expiry() -> None:
    invitation, token = create_invitation(
        key=A_KEY,
        inviter="a.example",
        url="https://a.example",
        expires_at=EXPIRES,
        invitation_id="inv-1",
    )
    assert token.startswith("inv1.") and len(token) < 400 and token.count(".") == 2
    decoded = read_invitation(token)
    assert decoded.invitation == invitation
    assert (invitation.inviter, invitation.url, invitation.fingerprint) == (
        "a.example",
        "https://a.example",
        A_KEY.key_id,
    )
    assert decoded.payload == canonical_json(invitation.to_json_value())


def test_invitation_ids_are_random() -> None:
    assert read_invitation(_token()).invitation.id != read_invitation(_token()).invitation.id


def test_invitation_verifies_against_the_inviter_identity() -> None:
    assert verify_invitation(_token(), inviter=A, now=NOW).inviter == "a.example"


def test_expired_invitation_is_refused() -> None:
    with pytest.raises(InvitationExpired):
        verify_invitation(_token(), inviter=A, now=EXPIRES + timedelta(seconds=1))


def test_identity_with_another_key_is_refused() -> None:
    impostor = identity("a.example", C_KEY)
    with pytest.raises(IdentityMismatch, match="key id"):
        verify_invitation(_token(), inviter=impostor, now=NOW)


def test_identity_with_another_url_is_refused() -> None:
    moved = identity("a.example", A_KEY, base_url="https://evil.example")
    with pytest.raises(IdentityMismatch, match=r"evil\.example"):
        verify_invitation(_token(), inviter=moved, now=NOW)


def test_token_signed_by_another_key_is_refused() -> None:
    prefix, payload, _ = _token().split(".")
    forged_signature = _token(key=C_KEY).split(".")[2]
    with pytest.raises(SignatureInvalid, match="invitation"):
        verify_invitation(f"{prefix}.{payload}.{forged_signature}", inviter=A, now=NOW)


@pytest.mark.parametrize("token", ["", "inv2.a.b", "inv1.a", "inv1.!!.b", "inv1.e30.AA"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(MalformedMessage):
        read_invitation(token)


def _peering_request(token: str, *, key=B_KEY, node=B, nonce: str = "p" * 43) -> HttpRequest:  # type: ignore[no-untyped-def]
    body = canonical_json(PeeringRequest(invitation=token, node=node).to_json_value())
    request = HttpRequest.build(
        "POST", f"https://a.example{PEERING_PATH}", [("Content-Type", "application/json")], body
    )
    return sign_request(request, key=key, created=NOW, nonce=nonce).request


def test_inviter_opens_a_genuine_peering_request() -> None:
    opened = open_peering_request(
        _peering_request(_token()), own=A, nonces=MemoryNonceStore(clock=lambda: NOW), now=NOW
    )
    assert opened.peer == B and opened.signature.key_id == B_KEY.key_id


def test_peering_request_signed_by_a_key_other_than_the_one_it_carries_is_refused() -> None:
    with pytest.raises(SignatureInvalid):
        request = _peering_request(_token(), key=C_KEY)
        forged = request.with_headers(
            [
                (
                    "Signature-Input",
                    request.header("signature-input").replace(C_KEY.key_id, B_KEY.key_id),
                )
            ]
        )  # type: ignore[union-attr]
        open_peering_request(forged, own=A, nonces=MemoryNonceStore(), now=NOW)


def test_replayed_peering_request_is_refused() -> None:
    nonces, request = MemoryNonceStore(clock=lambda: NOW), _peering_request(_token())
    open_peering_request(request, own=A, nonces=nonces, now=NOW)
    with pytest.raises(NonceReused):
        open_peering_request(request, own=A, nonces=nonces, now=NOW)


def test_peering_request_with_another_nodes_invitation_is_refused() -> None:
    foreign = _token(key=C_KEY)
    with pytest.raises(IdentityMismatch):
        open_peering_request(_peering_request(foreign), own=A, nonces=MemoryNonceStore(), now=NOW)


def test_node_cannot_peer_with_itself() -> None:
    with pytest.raises(IdentityMismatch, match="itself"):
        open_peering_request(
            _peering_request(_token(), key=A_KEY, node=A), own=A, nonces=MemoryNonceStore(), now=NOW
        )


def _inviter() -> FakeNode:
    """Node A serving its identity and accepting peering requests like a real node would."""
    node = FakeNode("a.example", A_KEY, peers=[])
    node.open_paths.add(PEERING_PATH)

    @node.route("GET", "/federation/v1/identity")
    def _identity(request: HttpRequest) -> HttpResponse:
        return HttpResponse.build(
            200, [("Content-Type", "application/json")], canonical_json(A.to_json_value())
        )

    @node.route("POST", PEERING_PATH)
    def _peering(request: HttpRequest) -> HttpResponse:
        opened = open_peering_request(request, own=A, nonces=node.nonces, now=NOW)
        acceptance = PeeringAcceptance(node=A, peer=opened.peer.name, accepted_at=NOW)
        return HttpResponse.build(
            201, [("Content-Type", "application/json")], canonical_json(acceptance.to_json_value())
        )

    return node


def test_invitee_accepts_an_invitation_end_to_end() -> None:
    inviter = _inviter()
    acceptance = accept_invitation(
        _token(), own=B, key=B_KEY, transport=inviter.transport(), clock=lambda: NOW
    )
    assert acceptance.node == A and acceptance.peer == "b.example"
    assert [r.method for r in inviter.seen] == ["GET", "POST"]


def test_invitee_refuses_an_inviter_serving_another_key() -> None:
    inviter = _inviter()

    @inviter.route("GET", "/federation/v1/identity")
    def _impostor(request: HttpRequest) -> HttpResponse:
        impostor = identity("a.example", C_KEY)
        return HttpResponse.build(
            200, [("Content-Type", "application/json")], canonical_json(impostor.to_json_value())
        )

    with pytest.raises(IdentityMismatch, match="key id"):
        accept_invitation(
            _token(), own=B, key=B_KEY, transport=inviter.transport(), clock=lambda: NOW
        )
    assert [r.method for r in inviter.seen] == ["GET"]


def test_invitee_refuses_an_expired_invitation_before_any_request() -> None:
    inviter = _inviter()
    with pytest.raises(InvitationExpired):
        accept_invitation(
            _token(),
            own=B,
            key=B_KEY,
            transport=inviter.transport(),
            clock=lambda: later(3 * 86400),
        )
    assert inviter.seen == []
