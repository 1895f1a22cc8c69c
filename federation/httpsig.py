"""RFC 9421 HTTP Message Signatures with Ed25519 between nodes, and RFC 9530 Content-Digest.

Requests cover ``@method``, ``@target-uri``, ``@authority``, ``content-digest`` and,
when the request has one, ``content-type``; their parameters are ``created``,
``keyid``, ``alg="ed25519"``, ``expires``, ``nonce`` and ``tag``. Responses cover
``@status``, ``content-digest``, ``content-type`` (when present) and, from the request
they answer, ``"@method";req``, ``"@target-uri";req`` and ``"signature";req;key=...``,
which ties a response to exactly one signed request. PROTOCOL.md has the rules.

``http_message_signatures`` builds signature bases and checks the Ed25519 signature
and Content-Digest values; this module adds the policy it leaves to callers: the
required components, the time window against an injectable clock, key pinning with
validity, and replay protection through a ``NonceStore``. Checks run in the order
PROTOCOL.md gives, and every failure raises a typed ``VerificationError``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from http_message_signatures import ContentDigest, HTTPMessageSigner, algorithms

from federation import _sigparams as sp
from federation._sigchecks import (
    CLOCK_SKEW,
    DEFAULT_LIFETIME,
    MAX_LIFETIME,
    SignaturePolicy,
    check_content_digest,
    check_signature,
    check_time_window,
)
from federation.encoding import from_unix_seconds
from federation.errors import NonceReused
from federation.keys import KeyResolver, NodeKey, TrustedKey, resolve_key
from federation.messages import (
    HttpRequest,
    HttpResponse,
    LibraryRequest,
    LibraryResponse,
    library_request,
    library_response,
)
from federation.nonces import NonceStore

__all__ = [
    "ALGORITHM",
    "CLOCK_SKEW",
    "DEFAULT_LIFETIME",
    "LABEL",
    "MAX_LIFETIME",
    "REQUEST_COMPONENTS",
    "RESPONSE_COMPONENTS",
    "TAG",
    "SignaturePolicy",
    "SignedRequest",
    "SignedResponse",
    "VerifiedSignature",
    "check_content_digest",
    "check_time_window",
    "content_digest",
    "new_nonce",
    "sign_request",
    "sign_response",
    "verify_request",
    "verify_response",
]

TAG = sp.TAG
LABEL = sp.LABEL
ALGORITHM = "ed25519"
REQUEST_COMPONENTS = ("@method", "@target-uri", "@authority", "content-digest")
RESPONSE_COMPONENTS = (
    "@status",
    "content-digest",
    '"@method";req',
    '"@target-uri";req',
    f'"signature";req;key="{LABEL}"',
)


@dataclass(frozen=True)
class SignedRequest:
    """A request with Content-Digest, Signature-Input and Signature, and what was signed."""

    request: HttpRequest
    signature_base: bytes


@dataclass(frozen=True)
class SignedResponse:
    """A response with Content-Digest, Signature-Input and Signature, and what was signed."""

    response: HttpResponse
    signature_base: bytes


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature that passed every check: whose key, when, and with which nonce."""

    key: TrustedKey
    key_id: str
    created: datetime
    expires: datetime
    nonce: str | None
    covered: tuple[str, ...]

    @property
    def peer(self) -> str:
        """The name of the node that owns the signing key."""
        return self.key.owner


def new_nonce() -> str:
    """A fresh nonce: 32 random bytes in base64url (43 characters)."""
    return secrets.token_urlsafe(32)


def content_digest(body: bytes) -> str:
    """The RFC 9530 Content-Digest field value of ``body`` with sha-256."""
    return ContentDigest.create(body)


def sign_request(
    request: HttpRequest,
    *,
    key: NodeKey,
    created: datetime,
    nonce: str,
    lifetime: timedelta = DEFAULT_LIFETIME,
    tag: str = TAG,
) -> SignedRequest:
    """Add Content-Digest and an Ed25519 signature to ``request``."""
    has_type = request.header("content-type") is not None
    if request.body and not has_type:
        raise ValueError("a request with a body needs a Content-Type to be signed")
    components = REQUEST_COMPONENTS + (("content-type",) if has_type else ())
    view = library_request(request)
    base = _sign(view, request.body, components, key, created, created + lifetime, nonce, tag)
    return SignedRequest(request.with_headers(_signature_fields(view)), base)


def sign_response(
    response: HttpResponse,
    *,
    request: HttpRequest,
    key: NodeKey,
    created: datetime,
    lifetime: timedelta = DEFAULT_LIFETIME,
    tag: str = TAG,
) -> SignedResponse:
    """Add Content-Digest and an Ed25519 signature bound to the signed ``request``."""
    if sp.find_label(request.header("signature"), LABEL) is None:
        raise ValueError(f"the request carries no signature labelled {LABEL!r} to answer")
    has_type = response.header("content-type") is not None
    components = RESPONSE_COMPONENTS + (("content-type",) if has_type else ())
    view = library_response(response, request)
    base = _sign(view, response.body, components, key, created, created + lifetime, None, tag)
    return SignedResponse(response.with_headers(_signature_fields(view)), base)


def verify_request(
    request: HttpRequest,
    *,
    keys: KeyResolver,
    nonces: NonceStore,
    now: datetime,
    policy: SignaturePolicy = SignaturePolicy(),
) -> VerifiedSignature:
    """Check a peer's signed request; raise a ``VerificationError`` on any failure.

    The nonce is remembered only once everything else passed, so a forged request
    cannot burn a genuine request's nonce.
    """
    required = REQUEST_COMPONENTS + (("content-type",) if request.body else ())
    selected = sp.select(request.header("signature-input"), policy.tag, required, nonce=True)
    sp.check_fields_present(selected, request.header)
    verified = _verify(selected, request.body, keys, now, policy, library_request(request))
    assert verified.nonce is not None  # required by select(nonce=True)
    expires_at = verified.expires + policy.clock_skew
    if not nonces.check_and_remember(
        key_id=verified.key_id, nonce=verified.nonce, expires_at=expires_at
    ):
        raise NonceReused(f"nonce {verified.nonce!r} of key {verified.key_id} was already used")
    return verified


def verify_response(
    response: HttpResponse,
    *,
    request: HttpRequest,
    keys: KeyResolver,
    now: datetime,
    policy: SignaturePolicy = SignaturePolicy(),
) -> VerifiedSignature:
    """Check a peer's signed response to our signed ``request``."""
    required = RESPONSE_COMPONENTS + (("content-type",) if response.body else ())
    selected = sp.select(response.header("signature-input"), policy.tag, required, nonce=False)
    sp.check_fields_present(selected, response.header)
    return _verify(selected, response.body, keys, now, policy, library_response(response, request))


def _sign(
    view: LibraryRequest | LibraryResponse,
    body: bytes,
    components: tuple[str, ...],
    key: NodeKey,
    created: datetime,
    expires: datetime,
    nonce: str | None,
    tag: str,
) -> bytes:
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519)
    prepared = signer.prepare(
        view,
        key_id=key.key_id,
        created=created,
        expires=expires,
        nonce=nonce,
        label=LABEL,
        tag=tag,
        covered_component_ids=components,
        body=body,
        use_existing_digest=True,
    )
    signer.apply(view, prepared, key.sign(prepared.signature_base))
    return prepared.signature_base


def _signature_fields(view: LibraryRequest | LibraryResponse) -> list[tuple[str, str]]:
    return [
        ("Content-Digest", view.headers["content-digest"]),
        ("Signature-Input", view.headers["signature-input"]),
        ("Signature", view.headers["signature"]),
    ]


def _verify(
    selected: sp.Selected,
    body: bytes,
    keys: KeyResolver,
    now: datetime,
    policy: SignaturePolicy,
    view: LibraryRequest | LibraryResponse,
) -> VerifiedSignature:
    created, expires = from_unix_seconds(selected.created), from_unix_seconds(selected.expires)
    check_time_window(created, expires, now, policy)
    key = resolve_key(keys, selected.key_id, created)
    check_content_digest(view.headers.get("content-digest"), body)
    check_signature(view, selected, key)
    return VerifiedSignature(
        key=key,
        key_id=selected.key_id,
        created=created,
        expires=expires,
        nonce=selected.nonce,
        covered=selected.covered,
    )
