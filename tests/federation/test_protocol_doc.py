"""PROTOCOL.md says what the code does: its examples are the committed vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from federation import encoding, httpsig, witness
from federation.encoding import canonical_json
from federation.models import NodeIdentity
from federation.models.peering import MAX_ROTATION_OVERLAP
from federation.vectors import generate

FOLDER = Path(generate.__file__).parent
PROTOCOL = (FOLDER.parent / "PROTOCOL.md").read_text()


def _load(name: str) -> dict[str, Any]:
    return json.loads((FOLDER / name).read_text())


def _appears(text: str) -> None:
    assert text in PROTOCOL, f"PROTOCOL.md does not contain, verbatim:\n{text}"


@pytest.mark.parametrize("name", sorted(p.name for p in FOLDER.glob("*.json")))
def test_every_vector_file_is_described(name: str) -> None:
    _appears(f"vectors/{name}")


def test_request_example_is_the_vector() -> None:
    vector = _load("request.json")
    _appears(f"```\n{vector['signature_base']}\n```")
    _appears(vector["body"])
    _appears(vector["nonce"])
    for name, value in vector["signed_headers"]:
        _appears(f"{name}: {value}")


def test_response_example_is_the_vector() -> None:
    _appears(f"```\n{_load('response.json')['signature_base']}\n```")


def test_identity_invitation_catalog_and_key_examples_are_the_vectors() -> None:
    keys = _load("keys.json")["a.example"]
    _appears(f"the key `{keys['public_key']}`")
    _appears(f"key id `{keys['key_id']}`")
    identity = NodeIdentity(
        name="a.example",
        base_url="https://a.example",
        public_key=keys["public_key"],
        key_id=keys["key_id"],
    )
    _appears(canonical_json(identity.to_json_value()).decode())
    invitation = _load("invitation.json")
    _appears(invitation["token"])
    _appears(canonical_json(invitation["invitation"]).decode())
    catalog = _load("catalog.json")
    _appears(f"ETag `{catalog['etag']}`")
    _appears(catalog["signing_input"].split("\n")[1][:80])


def test_witness_example_is_the_vector() -> None:
    vector = _load("cosignature.json")
    _appears(f"```\n{vector['add_checkpoint_body'].rstrip()}\n```")
    _appears(f"```\n{vector['response_body'].rstrip()}\n```")
    _appears(vector["witness_vkey"])


def test_constants_are_the_documented_ones() -> None:
    for context in (
        encoding.CONTEXT_CATALOG,
        encoding.CONTEXT_INVITATION,
        encoding.CONTEXT_KEY_ROTATION,
    ):
        _appears(f'"{context}"')
    _appears(f'tag="{httpsig.TAG}"')
    _appears(f"label is `{httpsig.LABEL}`")
    assert httpsig.MAX_LIFETIME.total_seconds() == 300 and httpsig.CLOCK_SKEW.total_seconds() == 30
    _appears("at most 300 seconds")
    _appears("clock skew of 30 seconds")
    assert httpsig.DEFAULT_LIFETIME.total_seconds() == 60
    _appears("`expires = created + 60`")
    assert witness.MAX_PROOF_LINES == 63 and MAX_ROTATION_OVERLAP.days == 30
    _appears("between 0 and 30 days")
