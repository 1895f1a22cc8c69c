"""Make the signed test vectors in this folder from fixed seeds (PROTOCOL.md, appendix A).

Every vector is produced by the library itself from the seeds below and a fixed time,
so the output is byte-for-byte reproducible (Ed25519 signatures are deterministic).
Another implementation checks itself by reading these files. Run
``python -m federation.vectors.generate`` to rewrite them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from federation.catalogs import sign_catalog
from federation.encoding import (
    CONTEXT_CATALOG,
    CONTEXT_INVITATION,
    CONTEXT_KEY_ROTATION,
    signing_input,
)
from federation.httpsig import sign_request, sign_response
from federation.keys import NodeKey
from federation.messages import HttpRequest, HttpResponse
from federation.models import Catalog, Offering, Plan, Price, ProvisionRequest
from federation.peering import create_invitation, read_invitation
from federation.rotation import rotate_key
from federation.witness import Cosigner
from federation.witness_api import AddCheckpointRequest, format_cosignatures, split_note

HERE = Path(__file__).resolve().parent
CREATED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SEED_LABELS = {
    "a.example": "infracms federation test vectors: a.example",
    "a.example-next": "infracms federation test vectors: a.example, next key",
    "b.example": "infracms federation test vectors: b.example",
}
"""Each seed is SHA-256 of its label; the seeds are also written to keys.json."""


def seed(name: str) -> bytes:
    """The fixed 32-byte seed of a test key."""
    return hashlib.sha256(SEED_LABELS[name].encode()).digest()


def key(name: str) -> NodeKey:
    """The fixed test key."""
    return NodeKey.from_seed(seed(name))


def _keys() -> dict[str, Any]:
    return {
        name: {
            "seed_hex": seed(name).hex(),
            "public_key": key(name).public_key_b64,
            "key_id": key(name).key_id,
        }
        for name in SEED_LABELS
    }


def _headers(pairs: tuple[tuple[str, str], ...]) -> list[list[str]]:
    return [[name, value] for name, value in pairs]


def _request() -> tuple[HttpRequest, dict[str, Any]]:
    body = ProvisionRequest(
        service_id="backup",
        plan_id="backup-100",
        context={"platform": "infracms", "node": "b.example", "organization": "org-1"},
        parameters={"size_gb": 100},
    ).to_json_value()
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    url = "https://a.example/v2/service_instances/3f6c1f5e-2b1a-4a8e-9d7c-0b5a8e1f2c3d?accepts_incomplete=true"
    request = HttpRequest.build(
        "PUT", url, [("Content-Type", "application/json"), ("X-Broker-API-Version", "2.17")], raw
    )
    signed = sign_request(
        request,
        key=key("b.example"),
        created=CREATED,
        nonce="3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    )
    vector = {
        "description": "b.example signs an OSB provision request to a.example (PROTOCOL.md 4.5)",
        "key": "b.example",
        "method": request.method,
        "url": request.url,
        "headers": _headers(request.headers),
        "body": raw.decode(),
        "created": int(CREATED.timestamp()),
        "expires": int(CREATED.timestamp()) + 60,
        "nonce": "3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "signature_base": signed.signature_base.decode(),
        "signed_headers": _headers(signed.request.headers),
    }
    return signed.request, vector


def _response(request: HttpRequest) -> dict[str, Any]:
    answer = HttpResponse.build(
        202, [("Content-Type", "application/json")], b'{"operation":"op-1"}'
    )
    signed = sign_response(answer, request=request, key=key("a.example"), created=CREATED)
    return {
        "description": "a.example answers the provision request: 202, pending consent",
        "key": "a.example",
        "status": 202,
        "headers": _headers(answer.headers),
        "body": answer.body.decode(),
        "created": int(CREATED.timestamp()),
        "expires": int(CREATED.timestamp()) + 60,
        "signature_base": signed.signature_base.decode(),
        "signed_headers": _headers(signed.response.headers),
    }


def catalog() -> Catalog:
    """The catalog of the vectors: one backup offering with two plans."""
    schema = {
        "type": "object",
        "properties": {"size_gb": {"type": "integer", "minimum": 10, "maximum": 1000}},
        "required": ["size_gb"],
        "additionalProperties": False,
    }
    plans = (
        Plan(
            id="backup-100",
            name="100 GB",
            parameters=schema,
            capacity=20,
            region="eu-west",
            price=Price(amount="4.00", currency="EUR", unit="month"),
        ),
        Plan(
            id="backup-1000",
            name="1 TB",
            parameters=schema,
            capacity=5,
            region="eu-west",
            price=Price(amount="30.00", currency="EUR", unit="month"),
        ),
    )
    offering = Offering(
        id="backup",
        name="Encrypted off-site backup",
        description="Nightly restic backups to our hosts.",
        kind="backup",
        module="backup",
        tags=("restic",),
        plans=plans,
    )
    return Catalog(node="a.example", version=7, generated_at=CREATED, offerings=(offering,))


def _catalog() -> dict[str, Any]:
    signed = sign_catalog(catalog(), key("a.example"))
    return {
        "description": "a.example's signed catalog (PROTOCOL.md 5)",
        "key": "a.example",
        "signing_input": signing_input(CONTEXT_CATALOG, signed.payload).decode(),
        "body": signed.to_bytes().decode(),
        "etag": signed.etag,
    }


def _invitation() -> dict[str, Any]:
    invitation, token = create_invitation(
        key=key("a.example"),
        inviter="a.example",
        url="https://a.example",
        expires_at=CREATED + timedelta(days=2),
        invitation_id="8b1e1c0d6f3a4e27b5d9c2a1f0e4d3b2",
    )
    return {
        "description": "a.example invites b.example (PROTOCOL.md 3.1)",
        "key": "a.example",
        "invitation": invitation.to_json_value(),
        "signing_input": (
            CONTEXT_INVITATION.encode() + b"\n" + read_invitation(token).payload
        ).decode(),
        "token": token,
    }


def _rotation() -> dict[str, Any]:
    signed = rotate_key(
        node="a.example",
        old=key("a.example"),
        new=key("a.example-next"),
        issued_at=CREATED,
        overlap=timedelta(days=7),
    )
    return {
        "description": "a.example rotates to its next key; the old one stays valid 7 days (2.3)",
        "old_key": "a.example",
        "new_key": "a.example-next",
        "signing_input": signing_input(CONTEXT_KEY_ROTATION, signed.payload).decode(),
        "body": signed.to_bytes().decode(),
    }


CHECKPOINT_TEXT = (
    "a.example/audit\n42\n"
    + base64.b64encode(hashlib.sha256(b"vector root").digest()).decode()
    + "\n"
)


def _log_vkey_and_signature() -> tuple[str, str]:
    """a.example's C2SP signed-note (type 0x01) verifier key and its checkpoint signature."""
    public = key("a.example").public_key
    key_id = hashlib.sha256(b"a.example/audit\n\x01" + public).digest()[:4]
    encoded_key = base64.b64encode(b"\x01" + public).decode()
    signature = key_id + key("a.example").sign(CHECKPOINT_TEXT.encode())
    return f"a.example/audit+{key_id.hex()}+{encoded_key}", base64.b64encode(signature).decode()


def _cosignature() -> dict[str, Any]:
    log_vkey, log_signature = _log_vkey_and_signature()
    checkpoint = f"{CHECKPOINT_TEXT}\n\u2014 a.example/audit {log_signature}\n"
    request = AddCheckpointRequest(0, (), checkpoint)
    witness = Cosigner("b.example/witness", key("b.example"))
    timestamp = int(CREATED.timestamp())
    cosignature = witness.cosign(split_note(checkpoint)[0], timestamp)
    return {
        "description": "b.example witnesses a.example's checkpoint (PROTOCOL.md 7)",
        "key": "b.example",
        "log_vkey": log_vkey,
        "witness_name": witness.name,
        "witness_vkey": witness.verifier().vkey,
        "timestamp": timestamp,
        "add_checkpoint_body": request.to_bytes().decode(),
        "signed_message": f"cosignature/v1\ntime {timestamp}\n{CHECKPOINT_TEXT}",
        "response_body": format_cosignatures([cosignature]).decode(),
    }


def build_vectors() -> dict[str, bytes]:
    """Every vector file's name and exact bytes."""
    signed_request, request_vector = _request()
    vectors = {
        "keys.json": _keys(),
        "request.json": request_vector,
        "response.json": _response(signed_request),
        "catalog.json": _catalog(),
        "invitation.json": _invitation(),
        "key-rotation.json": _rotation(),
        "cosignature.json": _cosignature(),
    }
    return {
        name: (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()
        for name, value in vectors.items()
    }


def main(argv: list[str]) -> int:
    """Write the vectors next to this file (or into the folder given)."""
    target = Path(argv[1]) if len(argv) > 1 else HERE
    for name, content in build_vectors().items():
        (target / name).write_bytes(content)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
