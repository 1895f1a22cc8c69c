"""Signed catalogs and their incremental sync (PROTOCOL.md section 5).

The body of ``GET /federation/v1/catalog`` is the RFC 8785 canonical JSON of
``{"catalog": <catalog>, "signature": {"keyid": ..., "sig": ...}}``; the signature
covers ``"infracms-federation/v1 catalog" || 0x0A || JCS(catalog)``, and the strong
ETag is ``"<base64url(SHA-256(those signed bytes))>"``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from federation.documents import open_envelope, read_signature, sign_document, verify_document
from federation.encoding import (
    CONTEXT_CATALOG,
    SigningInput,
    b64url_encode,
    canonical_json,
    signing_input,
)
from federation.errors import CatalogRollback, IdentityMismatch
from federation.keys import KeyResolver, NodeKey, lookup_key
from federation.limits import MAX_CATALOG_BYTES, check_size
from federation.models.base import load
from federation.models.catalog import Catalog
from federation.models.peering import DetachedSignature

CATALOG_MEDIA_TYPE = "application/json"


@dataclass(frozen=True)
class SignedCatalog:
    """A catalog with its signature, as served and as a peer keeps its last good copy.

    ``signed_bytes`` are the exact bytes the signature covers; the ETag and the
    served body are computed once, since canonicalising a large catalog is not free.
    """

    catalog: Catalog
    payload: dict[str, Any] = field(repr=False)
    signature: DetachedSignature
    signed_bytes: SigningInput = field(repr=False)

    @cached_property
    def etag(self) -> str:
        """The strong ETag: base64url SHA-256 of the signed bytes, in quotes."""
        return f'"{b64url_encode(hashlib.sha256(self.signed_bytes).digest())}"'

    @cached_property
    def body(self) -> bytes:
        """The canonical JSON envelope, as served and stored."""
        return canonical_json(
            {"catalog": self.payload, "signature": self.signature.to_json_value()}
        )

    def to_bytes(self) -> bytes:
        """The canonical JSON envelope (same as ``body``)."""
        return self.body


def catalog_etag(payload: dict[str, Any]) -> str:
    """The strong ETag of a catalog's JSON value."""
    digest = hashlib.sha256(signing_input(CONTEXT_CATALOG, payload)).digest()
    return f'"{b64url_encode(digest)}"'


def sign_catalog(catalog: Catalog, key: NodeKey) -> SignedCatalog:
    """Sign a catalog with this node's key."""
    payload = catalog.to_json_value()
    signature, signed = sign_document(CONTEXT_CATALOG, payload, key)
    return SignedCatalog(catalog, payload, signature, signed)


def verify_catalog(
    body: bytes | str | dict[str, Any], *, keys: KeyResolver, node: str
) -> SignedCatalog:
    """Check a served catalog against the keys pinned for ``node``; raise a typed error.

    The signature is checked over the catalog exactly as received before it is read;
    a body over ``MAX_CATALOG_BYTES`` or nested deeper than ``MAX_JSON_DEPTH`` is refused
    before it is parsed.
    """
    if isinstance(body, bytes | str):
        check_size(body, MAX_CATALOG_BYTES, f"catalog of {node}")
    envelope = open_envelope(body, ("catalog", "signature"), "signed catalog")
    payload, signature = envelope["catalog"], read_signature(envelope["signature"], "catalog")
    key = lookup_key(keys, signature.keyid)
    if key.owner != node:
        raise IdentityMismatch(f"catalog of {node} is signed by a key of {key.owner}")
    signed = verify_document(CONTEXT_CATALOG, payload, signature, key, f"catalog of {node}")
    catalog = load(Catalog, payload, f"catalog of {node}")
    if catalog.node != node:
        raise IdentityMismatch(f"catalog names node {catalog.node!r}, expected {node!r}")
    key.check_valid_at(catalog.generated_at)
    return SignedCatalog(catalog, payload, signature, signed)


def check_catalog_progress(held: SignedCatalog | None, new: SignedCatalog) -> None:
    """Refuse a catalog older than the one held, or a different one with the same version."""
    if held is None:
        return
    old, got = held.catalog.version, new.catalog.version
    if got < old:
        raise CatalogRollback(f"peer served catalog version {got}, already holding version {old}")
    if got == old and new.etag != held.etag:
        raise CatalogRollback(f"peer served a different catalog under the same version {got}")
