"""The checks of a received signature that ``http_message_signatures`` leaves to callers.

Time window against an injectable clock, Content-Digest with typed errors, and the
library's Ed25519 verification with its own wall-clock checks turned off (they are
done here first, against the verifier's clock and policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    MappingKeyResolver,
    algorithms,
)

from federation import _sigparams as sp
from federation.errors import (
    DigestMismatch,
    MalformedMessage,
    OutsideTimeWindow,
    SignatureExpired,
    SignatureInvalid,
    SignatureNotYetValid,
)
from federation.keys import TrustedKey
from federation.messages import LibraryRequest, LibraryResponse

DEFAULT_LIFETIME = timedelta(seconds=60)
"""How long a signature made by this library stays valid (``expires - created``)."""
MAX_LIFETIME = timedelta(seconds=300)
"""The longest ``expires - created`` a verifier accepts."""
CLOCK_SKEW = timedelta(seconds=30)
"""How far apart the two nodes' clocks may be."""


@dataclass(frozen=True)
class SignaturePolicy:
    """What a verifier accepts: the tag, the longest lifetime, and the clock skew."""

    tag: str = sp.TAG
    max_lifetime: timedelta = MAX_LIFETIME
    clock_skew: timedelta = CLOCK_SKEW


def check_time_window(
    created: datetime, expires: datetime, now: datetime, policy: SignaturePolicy
) -> None:
    """``0 < expires - created <= max lifetime`` and ``created - skew <= now <= expires + skew``."""
    lifetime = expires - created
    if lifetime <= timedelta(0) or lifetime > policy.max_lifetime:
        raise OutsideTimeWindow(
            f"signature lifetime is {lifetime.total_seconds():.0f} s, expected more than 0 "
            f"and at most {policy.max_lifetime.total_seconds():.0f} s"
        )
    if created - policy.clock_skew > now:
        raise SignatureNotYetValid(
            f"signature created at {created.isoformat()}, now is {now.isoformat()}"
        )
    if now > expires + policy.clock_skew:
        raise SignatureExpired(
            f"signature expired at {expires.isoformat()}, now is {now.isoformat()}"
        )


def check_content_digest(value: str | None, body: bytes) -> None:
    """RFC 9530: Content-Digest is present, has a sha-256 member, and every member matches."""
    if value is None:
        raise DigestMismatch("message has no Content-Digest field")
    try:
        algorithms_used = sp.digest_algorithms(value)
    except MalformedMessage as exc:
        raise DigestMismatch(f"Content-Digest is malformed: {exc}") from exc
    if "sha-256" not in algorithms_used:
        raise DigestMismatch(f"Content-Digest {value!r} has no sha-256 member")
    try:
        ContentDigest.verify(value, body)
    except HTTPMessageSignaturesException as exc:
        raise DigestMismatch(f"Content-Digest does not match the body: {exc}") from exc


class _Verifier(HTTPMessageVerifier):
    """The library's verifier, with its wall-clock time checks left to ``check_time_window``."""

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        """Done before, against the caller's clock and policy."""


def check_signature(
    view: LibraryRequest | LibraryResponse, selected: sp.Selected, key: TrustedKey
) -> None:
    resolver = MappingKeyResolver(
        public_keys={selected.key_id: Ed25519PublicKey.from_public_bytes(key.public_key)},
        private_keys={},
    )
    verifier = _Verifier(signature_algorithm=algorithms.ED25519, key_resolver=resolver)
    try:
        verifier.verify(view, max_age=None, expect_tag=selected.tag, expect_label=selected.label)
    except HTTPMessageSignaturesException as exc:
        raise SignatureInvalid(
            f"signature by key {selected.key_id} does not verify: {exc}"
        ) from exc
