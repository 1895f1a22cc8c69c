"""Node keys: Ed25519 (RFC 8032) key pairs, key ids, and the keys pinned for peers.

A key id is the RFC 7638 JWK thumbprint of the public key as an RFC 8037 OKP JWK:
``base64url(SHA-256('{"crv":"Ed25519","kty":"OKP","x":"<base64url key>"}'))``, 43
characters. Any JOSE library computes the same value, and it doubles as the key
fingerprint carried by invitations.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NewType, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from federation.encoding import b64url_decode, b64url_encode
from federation.errors import KeyNotValid, MalformedMessage, SignatureInvalid, UnknownKey

KeyId = NewType("KeyId", str)
"""RFC 7638 JWK thumbprint of an Ed25519 public key, base64url, 43 characters."""
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def key_id_of(public_key: bytes) -> KeyId:
    """RFC 7638 thumbprint of the RFC 8037 OKP JWK of a 32-byte Ed25519 public key."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise MalformedMessage(f"Ed25519 public key is {len(public_key)} bytes, expected 32")
    jwk = '{"crv":"Ed25519","kty":"OKP","x":"' + b64url_encode(public_key) + '"}'
    return KeyId(b64url_encode(hashlib.sha256(jwk.encode("ascii")).digest()))


def decode_public_key(text: str) -> bytes:
    """A base64url public key as its 32 raw bytes."""
    raw = b64url_decode(text, "public key")
    if len(raw) != PUBLIC_KEY_SIZE:
        raise MalformedMessage(f"Ed25519 public key is {len(raw)} bytes, expected 32")
    return raw


def verify_ed25519(public_key: bytes, signature: bytes, message: bytes, what: str) -> None:
    """Check an Ed25519 signature; raise ``SignatureInvalid`` naming ``what`` if it fails."""
    if len(signature) != SIGNATURE_SIZE:
        raise SignatureInvalid(f"{what} signature is {len(signature)} bytes, expected 64")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature as exc:
        raise SignatureInvalid(f"{what} signature does not verify") from exc


@dataclass(frozen=True, eq=False)
class NodeKey:
    """This node's Ed25519 private key with its key id. Keep it secret; compared by identity."""

    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> NodeKey:
        """A fresh random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> NodeKey:
        """The key for a 32-byte RFC 8032 seed (the private key as stored)."""
        if len(seed) != 32:
            raise ValueError(f"Ed25519 seed is {len(seed)} bytes, expected 32")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public_key(self) -> bytes:
        """The 32 raw bytes of the public key."""
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def public_key_b64(self) -> str:
        """The public key in unpadded base64url, as documents carry it."""
        return b64url_encode(self.public_key)

    @property
    def key_id(self) -> KeyId:
        """This key's RFC 7638 thumbprint."""
        return key_id_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self.private_key.sign(message)

    def trusted(self, owner: str) -> TrustedKey:
        """This key's public half, as a peer pins it."""
        return TrustedKey(owner=owner, public_key=self.public_key)


@dataclass(frozen=True)
class TrustedKey:
    """A peer's pinned public key: who owns it and when it may sign.

    ``not_before``/``not_after`` bound the signature creation times accepted; after a
    key rotation the old key gets a ``not_after`` at the end of the overlap.
    """

    owner: str
    public_key: bytes = field(repr=False)
    not_before: datetime | None = None
    not_after: datetime | None = None

    def __post_init__(self) -> None:
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise ValueError(f"Ed25519 public key is {len(self.public_key)} bytes, expected 32")

    @property
    def key_id(self) -> KeyId:
        """The RFC 7638 thumbprint of this key."""
        return key_id_of(self.public_key)

    def check_valid_at(self, moment: datetime) -> None:
        """Raise ``KeyNotValid`` unless a signature made at ``moment`` may use this key."""
        if self.not_before is not None and moment < self.not_before:
            raise KeyNotValid(
                f"key {self.key_id} of {self.owner} is valid from {self.not_before.isoformat()}, "
                f"signature was made at {moment.isoformat()}"
            )
        if self.not_after is not None and moment > self.not_after:
            raise KeyNotValid(
                f"key {self.key_id} of {self.owner} was valid until {self.not_after.isoformat()}, "
                f"signature was made at {moment.isoformat()}"
            )

    def verify(self, signature: bytes, message: bytes, what: str) -> None:
        """Check an Ed25519 signature by this key."""
        verify_ed25519(self.public_key, signature, message, what)


class KeyResolver(Protocol):
    """Finds the pinned key for a key id; the node backs it with its peers table."""

    def resolve(self, key_id: str) -> TrustedKey | None:
        """The pinned key with this id, or None if no peer has it (suspended peers: None)."""
        ...


class StaticKeyResolver:
    """A fixed set of pinned keys, for tests, for bootstrapping a peering, and for witnesses."""

    def __init__(self, keys: Iterable[TrustedKey]) -> None:
        self._keys: dict[str, TrustedKey] = {key.key_id: key for key in keys}

    def resolve(self, key_id: str) -> TrustedKey | None:
        """The pinned key with this id, or None."""
        return self._keys.get(key_id)


def lookup_key(keys: KeyResolver, key_id: str) -> TrustedKey:
    """The pinned key for ``key_id``, or ``UnknownKey``."""
    key = keys.resolve(key_id)
    if key is None:
        raise UnknownKey(f"key id {key_id!r} is not pinned for any peer", key_id=key_id)
    return key


def resolve_key(keys: KeyResolver, key_id: str, at: datetime) -> TrustedKey:
    """The pinned key for ``key_id`` that is valid at ``at``, or a typed error."""
    key = lookup_key(keys, key_id)
    key.check_valid_at(at)
    return key
