"""Key rotation statements (PROTOCOL.md section 2.3).

A node that replaces its key sends each peer ``{"rotation": ..., "old_key_signature":
..., "new_key_signature": ...}``: the old key vouches for the new one, and the new key
proves it is held. Peers then accept both keys until ``old_key_valid_until``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from federation.documents import open_envelope, read_signature, sign_document, verify_document
from federation.encoding import CONTEXT_KEY_ROTATION, canonical_json
from federation.errors import IdentityMismatch, SignatureNotYetValid
from federation.keys import NodeKey, TrustedKey, decode_public_key
from federation.models.base import load
from federation.models.peering import DetachedSignature, KeyRotation

MEMBERS = ("rotation", "old_key_signature", "new_key_signature")


@dataclass(frozen=True)
class SignedKeyRotation:
    """A rotation statement signed by both the old and the new key."""

    rotation: KeyRotation
    payload: dict[str, Any]
    old_key_signature: DetachedSignature
    new_key_signature: DetachedSignature

    def to_bytes(self) -> bytes:
        """The canonical JSON envelope, as sent to peers."""
        return canonical_json(
            {
                "rotation": self.payload,
                "old_key_signature": self.old_key_signature.to_json_value(),
                "new_key_signature": self.new_key_signature.to_json_value(),
            }
        )

    def pinned_keys(self, old: TrustedKey) -> tuple[TrustedKey, TrustedKey]:
        """The keys to pin after this rotation: the old one ending, the new one starting."""
        ending = TrustedKey(
            old.owner, old.public_key, old.not_before, self.rotation.old_key_valid_until
        )
        new_key = decode_public_key(self.rotation.new_public_key)
        return ending, TrustedKey(old.owner, new_key, not_before=self.rotation.issued_at)


def rotate_key(
    *, node: str, old: NodeKey, new: NodeKey, issued_at: datetime, overlap: timedelta
) -> SignedKeyRotation:
    """A rotation statement from ``old`` to ``new``, the old key valid ``overlap`` longer."""
    rotation = KeyRotation(
        node=node,
        old_key_id=old.key_id,
        new_public_key=new.public_key_b64,
        new_key_id=new.key_id,
        issued_at=issued_at,
        old_key_valid_until=issued_at + overlap,
    )
    payload = rotation.to_json_value()
    return SignedKeyRotation(
        rotation,
        payload,
        sign_document(CONTEXT_KEY_ROTATION, payload, old)[0],
        sign_document(CONTEXT_KEY_ROTATION, payload, new)[0],
    )


def verify_key_rotation(
    body: bytes | str | dict[str, Any], *, pinned: TrustedKey, now: datetime, skew: timedelta
) -> SignedKeyRotation:
    """Check a rotation against the peer's pinned key; raise a typed error."""
    envelope = open_envelope(body, MEMBERS, "key rotation")
    payload = envelope["rotation"]
    old_sig = read_signature(envelope["old_key_signature"], "old key")
    new_sig = read_signature(envelope["new_key_signature"], "new key")
    verify_document(CONTEXT_KEY_ROTATION, payload, old_sig, pinned, "key rotation (old key)")
    rotation = load(KeyRotation, payload, "key rotation")
    new_key = TrustedKey(pinned.owner, decode_public_key(rotation.new_public_key))
    verify_document(CONTEXT_KEY_ROTATION, payload, new_sig, new_key, "key rotation (new key)")
    if rotation.node != pinned.owner or rotation.old_key_id != pinned.key_id:
        raise IdentityMismatch(
            f"rotation is for {rotation.node} key {rotation.old_key_id}, "
            f"pinned is {pinned.owner} key {pinned.key_id}"
        )
    if rotation.issued_at - skew > now:
        raise SignatureNotYetValid(
            f"rotation issued at {rotation.issued_at.isoformat()}, now is {now.isoformat()}"
        )
    pinned.check_valid_at(rotation.issued_at)
    return SignedKeyRotation(rotation, payload, old_sig, new_sig)
