"""Every error the federation library raises, in one tree.

Callers catch the branch they can act on: a node answering a peer maps
``MalformedMessage`` to 400 and ``VerificationError`` to 401; a node calling a peer
treats ``PeerRequestError`` as "the peer is down or misbehaving, keep the last good
copy". Third-party errors (cryptography, http-message-signatures, httpx, pydantic)
are wrapped at the boundary, with the original as ``__cause__``.

    FederationError
    ├── MalformedMessage              does not parse as PROTOCOL.md says
    │   ├── UnsupportedVersion        a format, alg or broker API version we do not speak
    │   └── MessageTooLarge           over a size bound of PROTOCOL.md section 8.1
    ├── VerificationError             a signature, key, time window or nonce check failed
    │   ├── MissingComponent          no signature with our tag, or a component or parameter missing
    │   ├── SignatureInvalid          the Ed25519 signature does not verify (forged or tampered)
    │   ├── UnknownKey                the key id is not pinned for any peer
    │   ├── KeyNotValid               the key is pinned but not valid then (rotated out)
    │   ├── DigestMismatch            Content-Digest does not match the body
    │   ├── TimeWindowError
    │   │   ├── SignatureExpired      now is past ``expires``
    │   │   ├── SignatureNotYetValid  ``created`` is in the future
    │   │   └── OutsideTimeWindow     lifetime not positive or longer than allowed
    │   ├── NonceReused               the (key id, nonce) pair was seen before: a replay
    │   ├── InvitationExpired         the invitation token is past its expiry
    │   ├── IdentityMismatch          a document names another node or key than the one pinned
    │   └── CatalogRollback           a peer served an older catalog than the one already held
    └── PeerRequestError              talking to a peer failed (client side)
        ├── URLRefused                the peer URL is not one we may contact
        │   └── SchemeRefused         not https (http only for loopback, when allowed)
        ├── RedirectRefused           the peer answered 3xx; redirects are never followed
        ├── PeerUnreachable           connection failed
        │   └── PeerTimeout           the peer did not answer in time
        └── PeerAnswerError           the peer answered with an error status
            ├── BrokerError           an Open Service Broker error body (``error``, ``description``)
            └── WitnessRefused        the witness refused a checkpoint (403, 404, 409, 422)
"""

from __future__ import annotations


class FederationError(Exception):
    """Base of every error raised by ``federation``."""


class MalformedMessage(FederationError):
    """A message, header or document does not parse as the protocol says."""


class UnsupportedVersion(MalformedMessage):
    """A format, tag or broker API version that this library does not speak."""


class MessageTooLarge(MalformedMessage):
    """A body or document larger than the protocol accepts (PROTOCOL.md section 8.1)."""


class VerificationError(FederationError):
    """A signature, key, time window or nonce check failed; nothing may be changed."""


class MissingComponent(VerificationError):
    """No signature with the expected tag, or a required component or parameter is missing."""


class SignatureInvalid(VerificationError):
    """The Ed25519 signature does not verify over the signed bytes."""


class UnknownKey(VerificationError):
    """The signature's key id is not pinned for any peer."""

    def __init__(self, message: str, *, key_id: str) -> None:
        super().__init__(message)
        self.key_id = key_id


class KeyNotValid(VerificationError):
    """The key is pinned but not valid at the signature's creation time."""


class DigestMismatch(VerificationError):
    """The Content-Digest field is missing, malformed or does not match the body."""


class TimeWindowError(VerificationError):
    """The signature's ``created``/``expires`` do not fit the accepted time window."""


class SignatureExpired(TimeWindowError):
    """The current time is past the signature's ``expires`` (plus the allowed clock skew)."""


class SignatureNotYetValid(TimeWindowError):
    """The signature's ``created`` is in the future (beyond the allowed clock skew)."""


class OutsideTimeWindow(TimeWindowError):
    """The signature's lifetime (``expires - created``) is not positive or too long."""


class NonceReused(VerificationError):
    """The (key id, nonce) pair was already seen: the request is a replay."""


class InvitationExpired(VerificationError):
    """The invitation token is past its expiry."""


class IdentityMismatch(VerificationError):
    """A document names another node, URL or key than the one expected."""


class CatalogRollback(VerificationError):
    """A peer served a catalog older than, or conflicting with, the one already held."""


class PeerRequestError(FederationError):
    """Talking to a peer failed; the caller keeps whatever it held before."""


class URLRefused(PeerRequestError):
    """The peer URL is not one this node may contact."""


class SchemeRefused(URLRefused):
    """The peer URL's scheme is not https (http only for loopback, when allowed)."""


class RedirectRefused(PeerRequestError):
    """The peer answered with a redirect; peer URLs are only contacted as configured."""

    def __init__(self, message: str, *, status_code: int, location: str | None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.location = location


class PeerUnreachable(PeerRequestError):
    """The connection to the peer failed."""


class PeerTimeout(PeerUnreachable):
    """The peer did not answer within the timeout."""


class PeerAnswerError(PeerRequestError):
    """The peer answered with an error status."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class BrokerError(PeerAnswerError):
    """An Open Service Broker API error: status, ``error`` code and ``description``."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.error = error
        self.description = description


class WitnessRefused(PeerAnswerError):
    """A witness refused a checkpoint; ``latest_size`` is set on 409 with a size body."""

    def __init__(self, message: str, *, status_code: int, latest_size: int | None = None) -> None:
        super().__init__(message, status_code=status_code)
        self.latest_size = latest_size


def http_status(error: FederationError) -> int:
    """The status a node answers with when checking a peer's message fails (PROTOCOL.md 8).

    400 for a message that does not parse, 413 for one over a size bound, 401 for any
    failed check (nothing changed), 502 for a failure talking to a third node on the
    requester's behalf.
    """
    if isinstance(error, MessageTooLarge):
        return 413
    if isinstance(error, MalformedMessage):
        return 400
    if isinstance(error, VerificationError):
        return 401
    return 502


def error_body(error: FederationError) -> dict[str, str]:
    """The JSON error body, in the Open Service Broker shape: ``error`` and ``description``."""
    return {"error": type(error).__name__, "description": str(error)}
