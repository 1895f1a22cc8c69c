"""The committed vectors are exactly what the generator makes, and they verify on their own."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation.catalogs import verify_catalog
from federation.encoding import b64url_decode
from federation.httpsig import verify_request, verify_response
from federation.keys import StaticKeyResolver, TrustedKey, key_id_of
from federation.messages import HttpRequest, HttpResponse
from federation.models import NodeIdentity
from federation.nonces import MemoryNonceStore
from federation.peering import read_invitation, verify_invitation
from federation.rotation import verify_key_rotation
from federation.vectors import generate
from federation.witness import Cosignature, CosignatureVerifier
from federation.witness_api import AddCheckpointRequest, parse_cosignatures
from infracms.audit.note import Verifier, open_note

FOLDER = Path(generate.__file__).parent


def _load(name: str) -> dict[str, Any]:
    return json.loads((FOLDER / name).read_text())


KEYS = _load("keys.json")


def _trusted(name: str) -> TrustedKey:
    public = b64url_decode(KEYS[name]["public_key"], "public key")
    assert key_id_of(public) == KEYS[name]["key_id"]
    return TrustedKey(owner=name.removesuffix("-next"), public_key=public)


def _created(vector: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(vector["created"], tz=UTC)


def _raw_check(name: str, message: bytes, signature: bytes) -> None:
    """Plain Ed25519 over the vector's stated signed bytes, with no federation code."""
    Ed25519PublicKey.from_public_bytes(_trusted(name).public_key).verify(signature, message)


def _signature_value(headers: list[list[str]]) -> bytes:
    value = dict(headers)["Signature"]
    return base64.b64decode(value.split("=:", 1)[1].rstrip(":"))


def test_committed_vectors_are_byte_for_byte_what_the_generator_makes() -> None:
    built = generate.build_vectors()
    committed = {path.name for path in FOLDER.glob("*.json")}
    assert committed == set(built), (
        f"vector files {sorted(committed)}, generator makes {sorted(built)}"
    )
    for name, content in built.items():
        assert (FOLDER / name).read_bytes() == content, (
            f"{name} differs; run python -m federation.vectors.generate"
        )


def test_seeds_make_the_listed_keys() -> None:
    for name, entry in KEYS.items():
        assert generate.key(name).public_key_b64 == entry["public_key"]
        assert bytes.fromhex(entry["seed_hex"]) == generate.seed(name)


def _request(vector: dict[str, Any]) -> HttpRequest:
    headers = [(name, value) for name, value in vector["signed_headers"]]
    return HttpRequest.build(vector["method"], vector["url"], headers, vector["body"].encode())


def test_request_vector_verifies() -> None:
    vector = _load("request.json")
    request = _request(vector)
    verified = verify_request(
        request,
        keys=StaticKeyResolver([_trusted("b.example")]),
        nonces=MemoryNonceStore(clock=lambda: _created(vector)),
        now=_created(vector),
    )
    assert (verified.nonce, int(verified.expires.timestamp())) == (
        vector["nonce"],
        vector["expires"],
    )
    _raw_check(
        "b.example", vector["signature_base"].encode(), _signature_value(vector["signed_headers"])
    )


def test_response_vector_verifies_against_the_request_vector() -> None:
    vector, request = _load("response.json"), _request(_load("request.json"))
    headers = [(name, value) for name, value in vector["signed_headers"]]
    response = HttpResponse.build(vector["status"], headers, vector["body"].encode())
    verify_response(
        response,
        request=request,
        keys=StaticKeyResolver([_trusted("a.example")]),
        now=_created(vector),
    )
    _raw_check(
        "a.example", vector["signature_base"].encode(), _signature_value(vector["signed_headers"])
    )


def test_catalog_vector_verifies() -> None:
    vector = _load("catalog.json")
    signed = verify_catalog(
        vector["body"].encode(), keys=StaticKeyResolver([_trusted("a.example")]), node="a.example"
    )
    assert signed.etag == vector["etag"] and signed.catalog == generate.catalog()
    signature = b64url_decode(json.loads(vector["body"])["signature"]["sig"], "sig")
    _raw_check("a.example", vector["signing_input"].encode(), signature)


def test_invitation_vector_verifies() -> None:
    vector = _load("invitation.json")
    inviter = NodeIdentity(
        name="a.example",
        base_url="https://a.example",
        public_key=KEYS["a.example"]["public_key"],
        key_id=KEYS["a.example"]["key_id"],
    )
    invitation = verify_invitation(vector["token"], inviter=inviter, now=generate.CREATED)
    assert invitation.to_json_value() == vector["invitation"]
    _raw_check(
        "a.example", vector["signing_input"].encode(), read_invitation(vector["token"]).signature
    )


def test_key_rotation_vector_verifies() -> None:
    vector = _load("key-rotation.json")
    signed = verify_key_rotation(
        vector["body"],
        pinned=_trusted("a.example"),
        now=generate.CREATED,
        skew=timedelta(seconds=30),
    )
    assert signed.rotation.new_key_id == KEYS["a.example-next"]["key_id"]
    body = json.loads(vector["body"])
    for name, member in (
        ("a.example", "old_key_signature"),
        ("a.example-next", "new_key_signature"),
    ):
        _raw_check(
            name, vector["signing_input"].encode(), b64url_decode(body[member]["sig"], "sig")
        )


def test_cosignature_vector_verifies_with_infracms_audit_for_the_log_signature() -> None:
    vector = _load("cosignature.json")
    request = AddCheckpointRequest.parse(vector["add_checkpoint_body"].encode())
    opened = open_note(request.checkpoint, [Verifier.from_key_string(vector["log_vkey"])])
    assert opened.text == request.checkpoint_text
    (cosignature,) = parse_cosignatures(vector["response_body"].encode())
    assert cosignature.timestamp == vector["timestamp"]
    CosignatureVerifier.from_vkey(vector["witness_vkey"]).verify(opened.text, cosignature)
    _raw_check("b.example", vector["signed_message"].encode(), cosignature.signature)
    assert Cosignature.parse_line(vector["response_body"].rstrip("\n")) == cosignature
