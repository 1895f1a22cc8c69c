"""Key rotation: the old key vouches for the new one, both valid for the overlap."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from federation.errors import IdentityMismatch, KeyNotValid, SignatureInvalid, SignatureNotYetValid
from federation.keys import TrustedKey
from federation.rotation import rotate_key, verify_key_rotation
from tests.federation.helpers import A_KEY, B_KEY, C_KEY, NOW, later, seeded_key

NEW_KEY = seeded_key("node a, second key")
PINNED = A_KEY.trusted("a.example")
SKEW = timedelta(seconds=30)


def _rotation(**changes: object):  # type: ignore[no-untyped-def]
    options = {
        "node": "a.example",
        "old": A_KEY,
        "new": NEW_KEY,
        "issued_at": NOW,
        "overlap": timedelta(days=7),
    }
    return rotate_key(**(options | changes))  # type: ignore[arg-type]


def test_rotation_verifies_and_yields_the_keys_to_pin() -> None:
    signed = verify_key_rotation(_rotation().to_bytes(), pinned=PINNED, now=NOW, skew=SKEW)
    old, new = signed.pinned_keys(PINNED)
    assert (old.key_id, old.not_after) == (A_KEY.key_id, NOW + timedelta(days=7))
    assert (new.key_id, new.owner, new.not_before) == (NEW_KEY.key_id, "a.example", NOW)
    old.check_valid_at(later(86400))
    new.check_valid_at(later(86400))
    with pytest.raises(KeyNotValid):
        old.check_valid_at(NOW + timedelta(days=7, seconds=1))
    with pytest.raises(KeyNotValid):
        new.check_valid_at(later(-1))


def test_rotation_not_signed_by_the_pinned_key_is_refused() -> None:
    forged = rotate_key(
        node="a.example", old=C_KEY, new=NEW_KEY, issued_at=NOW, overlap=timedelta(days=1)
    )
    with pytest.raises(SignatureInvalid, match="old key"):
        verify_key_rotation(forged.to_bytes(), pinned=PINNED, now=NOW, skew=SKEW)


def test_rotation_without_proof_of_the_new_key_is_refused() -> None:
    value = json.loads(_rotation().to_bytes())
    value["new_key_signature"] = json.loads(_rotation(new=B_KEY).to_bytes())["new_key_signature"]
    with pytest.raises(SignatureInvalid):
        verify_key_rotation(value, pinned=PINNED, now=NOW, skew=SKEW)


def test_tampered_rotation_is_refused() -> None:
    value = json.loads(_rotation().to_bytes())
    value["rotation"]["old_key_valid_until"] = "2026-03-20T00:00:00Z"
    with pytest.raises(SignatureInvalid):
        verify_key_rotation(value, pinned=PINNED, now=NOW, skew=SKEW)


def test_rotation_for_another_node_is_refused() -> None:
    with pytest.raises(IdentityMismatch, match="pinned is a"):
        verify_key_rotation(
            _rotation(node="c.example").to_bytes(), pinned=PINNED, now=NOW, skew=SKEW
        )


def test_rotation_from_the_future_or_by_an_ended_key_is_refused() -> None:
    with pytest.raises(SignatureNotYetValid):
        verify_key_rotation(
            _rotation(issued_at=later(3600)).to_bytes(), pinned=PINNED, now=NOW, skew=SKEW
        )
    ended = TrustedKey("a.example", A_KEY.public_key, not_after=later(-1))
    with pytest.raises(KeyNotValid):
        verify_key_rotation(_rotation().to_bytes(), pinned=ended, now=NOW, skew=SKEW)
