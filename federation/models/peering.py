"""Wire models for identities, invitations, peering and key rotation (PROTOCOL.md sections 2-3)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import model_validator

from federation.encoding import UtcTime
from federation.keys import TrustedKey, decode_public_key, key_id_of
from federation.models.base import (
    BaseUrl,
    Identifier,
    KeyIdStr,
    NodeName,
    PublicKeyB64,
    SignatureB64,
    WireModel,
)

MAX_ROTATION_OVERLAP = timedelta(days=30)
"""The longest time an old key may stay valid after a rotation."""


class NodeIdentity(WireModel):
    """Who a node is: its name, base URL and Ed25519 public key with its key id."""

    format: Literal["infracms.node.v1"] = "infracms.node.v1"
    name: NodeName
    base_url: BaseUrl
    public_key: PublicKeyB64
    key_id: KeyIdStr

    @model_validator(mode="after")
    def _key_id_matches(self) -> NodeIdentity:
        want = key_id_of(decode_public_key(self.public_key))
        if self.key_id != want:
            raise ValueError(f"key_id is {self.key_id}, expected {want} for that public key")
        return self

    def trusted_key(self) -> TrustedKey:
        """This identity's key, as a peer pins it."""
        return TrustedKey(owner=self.name, public_key=decode_public_key(self.public_key))


class Invitation(WireModel):
    """The signed payload of an invitation token: one-time, expiring, naming the inviter.

    ``fingerprint`` is the inviter's key id; the invitee fetches the inviter's identity
    from ``url`` and accepts it only if its key id equals the fingerprint.
    """

    format: Literal["infracms.invitation.v1"] = "infracms.invitation.v1"
    id: Identifier
    inviter: NodeName
    url: BaseUrl
    fingerprint: KeyIdStr
    expires_at: UtcTime


class PeeringRequest(WireModel):
    """Sent by the invitee to the inviter: the invitation token and the invitee's identity."""

    format: Literal["infracms.peering-request.v1"] = "infracms.peering-request.v1"
    invitation: str
    node: NodeIdentity


class PeeringAcceptance(WireModel):
    """The inviter's answer: its own identity, and the name it pinned the invitee under."""

    format: Literal["infracms.peering-acceptance.v1"] = "infracms.peering-acceptance.v1"
    node: NodeIdentity
    peer: NodeName
    accepted_at: UtcTime


class KeyRotation(WireModel):
    """A node replaces its key: the old key stays valid until ``old_key_valid_until``."""

    format: Literal["infracms.key-rotation.v1"] = "infracms.key-rotation.v1"
    node: NodeName
    old_key_id: KeyIdStr
    new_public_key: PublicKeyB64
    new_key_id: KeyIdStr
    issued_at: UtcTime
    old_key_valid_until: UtcTime

    @model_validator(mode="after")
    def _consistent(self) -> KeyRotation:
        want = key_id_of(decode_public_key(self.new_public_key))
        if self.new_key_id != want:
            raise ValueError(f"new_key_id is {self.new_key_id}, expected {want} for that key")
        if self.new_key_id == self.old_key_id:
            raise ValueError("new key is the old key")
        overlap = self.old_key_valid_until - self.issued_at
        if overlap < timedelta(0) or overlap > MAX_ROTATION_OVERLAP:
            raise ValueError(
                f"overlap is {overlap}, expected 0 to {MAX_ROTATION_OVERLAP.days} days"
            )
        return self


class DetachedSignature(WireModel):
    """An Ed25519 signature over a document's signing input, with the signing key's id."""

    keyid: KeyIdStr
    sig: SignatureB64
