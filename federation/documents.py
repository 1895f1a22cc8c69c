"""Signed JSON documents: an Ed25519 signature over ``context || 0x0A || JCS(payload)``.

A signed document travels as an envelope, a JSON object holding the payload and its
detached signature(s) as members. A verifier signs nothing it re-serialised from a
model: it canonicalises the payload exactly as received, checks the signature over
that, and only then reads it into a model.
"""

from __future__ import annotations

from typing import Any

from federation.encoding import (
    SigningInput,
    b64url_decode,
    b64url_encode,
    parse_json,
    signing_input,
)
from federation.errors import MalformedMessage, SignatureInvalid
from federation.keys import NodeKey, TrustedKey
from federation.models.base import load
from federation.models.peering import DetachedSignature


def sign_document(
    context: str, payload: dict[str, Any], key: NodeKey
) -> tuple[DetachedSignature, SigningInput]:
    """The detached signature of ``payload`` under ``context`` by ``key``, and the signed bytes."""
    signed = signing_input(context, payload)
    return DetachedSignature(keyid=key.key_id, sig=b64url_encode(key.sign(signed))), signed


def verify_document(
    context: str, payload: dict[str, Any], signature: DetachedSignature, key: TrustedKey, what: str
) -> SigningInput:
    """Check a detached signature by ``key``; return the signed bytes, or ``SignatureInvalid``."""
    if signature.keyid != key.key_id:
        raise SignatureInvalid(f"{what} is signed by key {signature.keyid}, expected {key.key_id}")
    raw = b64url_decode(signature.sig, f"{what} signature")
    signed = signing_input(context, payload)
    key.verify(raw, signed, what)
    return signed


def open_envelope(
    body: bytes | str | dict[str, Any], members: tuple[str, ...], what: str
) -> dict[str, Any]:
    """An envelope's members, each a JSON object; refuses missing or extra members."""
    data = parse_json(body, what) if isinstance(body, bytes | str) else body
    if not isinstance(data, dict):
        raise MalformedMessage(f"{what} is not a JSON object")
    if set(data) != set(members):
        raise MalformedMessage(f"{what} has members {sorted(data)}, expected {sorted(members)}")
    for name in members:
        if not isinstance(data[name], dict):
            raise MalformedMessage(f"{what} member {name!r} is not a JSON object")
    return data


def read_signature(value: dict[str, Any], what: str) -> DetachedSignature:
    """A detached signature member."""
    return load(DetachedSignature, value, f"{what} signature")
