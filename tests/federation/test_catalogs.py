"""Signed catalogs: sign, verify against the pinned key, ETag, and the sync rules."""

from __future__ import annotations

import json

import pytest

from federation.catalogs import catalog_etag, check_catalog_progress, sign_catalog, verify_catalog
from federation.encoding import canonical_json
from federation.errors import (
    CatalogRollback,
    IdentityMismatch,
    KeyNotValid,
    MalformedMessage,
    SignatureInvalid,
    UnknownKey,
)
from federation.keys import StaticKeyResolver, TrustedKey
from tests.federation.helpers import A_KEY, B_KEY, NOW, later, make_catalog

A_KEYS = StaticKeyResolver([A_KEY.trusted("a.example")])


def _tamper(body: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    value = json.loads(body)
    change(value)
    return json.dumps(value).encode()


def test_signed_catalog_verifies_and_parses() -> None:
    signed = sign_catalog(make_catalog(), A_KEY)
    again = verify_catalog(signed.to_bytes(), keys=A_KEYS, node="a.example")
    assert again.catalog == signed.catalog and again.etag == signed.etag
    assert again.to_bytes() == signed.to_bytes()


def test_body_is_canonical_and_etag_is_strong_and_stable() -> None:
    first, second = sign_catalog(make_catalog(), A_KEY), sign_catalog(make_catalog(), A_KEY)
    assert first.to_bytes() == second.to_bytes() == canonical_json(json.loads(first.to_bytes()))
    assert first.etag == second.etag == catalog_etag(first.payload)
    assert first.etag.startswith('"') and first.etag.endswith('"') and len(first.etag) == 45
    assert sign_catalog(make_catalog(version=2), A_KEY).etag != first.etag


def test_verification_does_not_depend_on_member_order_or_whitespace() -> None:
    body = sign_catalog(make_catalog(), A_KEY).to_bytes()
    reordered = json.dumps(json.loads(body), indent=2, sort_keys=False).encode()
    verify_catalog(reordered, keys=A_KEYS, node="a.example")


def test_tampered_catalog_is_refused() -> None:
    body = sign_catalog(make_catalog(), A_KEY).to_bytes()

    def cheaper(value: dict) -> None:  # type: ignore[type-arg]
        value["catalog"]["offerings"][0]["plans"][1]["price"]["amount"] = "1.00"

    with pytest.raises(SignatureInvalid, match=r"catalog of a\.example"):
        verify_catalog(_tamper(body, cheaper), keys=A_KEYS, node="a.example")


def test_unknown_member_slipped_into_a_catalog_is_refused() -> None:
    body = sign_catalog(make_catalog(), A_KEY).to_bytes()
    with pytest.raises(SignatureInvalid):
        verify_catalog(
            _tamper(body, lambda v: v["catalog"].update(extra=1)), keys=A_KEYS, node="a.example"
        )


def test_catalog_signed_by_another_key_is_refused() -> None:
    body = sign_catalog(make_catalog(), B_KEY).to_bytes()
    with pytest.raises(UnknownKey):
        verify_catalog(body, keys=A_KEYS, node="a.example")


def test_catalog_signed_by_another_peer_is_refused() -> None:
    keys = StaticKeyResolver([A_KEY.trusted("a.example"), B_KEY.trusted("b.example")])
    body = sign_catalog(make_catalog(node="a.example"), B_KEY).to_bytes()
    with pytest.raises(IdentityMismatch, match=r"key of b\.example"):
        verify_catalog(body, keys=keys, node="a.example")


def test_catalog_naming_another_node_is_refused() -> None:
    body = sign_catalog(make_catalog(node="c.example"), A_KEY).to_bytes()
    with pytest.raises(IdentityMismatch, match=r"c\.example"):
        verify_catalog(body, keys=A_KEYS, node="a.example")


def test_catalog_by_a_rotated_out_key_is_refused() -> None:
    ended = StaticKeyResolver([TrustedKey("a.example", A_KEY.public_key, not_after=later(-60))])
    with pytest.raises(KeyNotValid):
        verify_catalog(sign_catalog(make_catalog(), A_KEY).to_bytes(), keys=ended, node="a.example")


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"{}",
        b'{"catalog": {}, "signature": {}, "x": 1}',
        b'{"catalog": [], "signature": {}}',
    ],
)
def test_malformed_envelopes_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        verify_catalog(body, keys=A_KEYS, node="a.example")


def test_sync_refuses_rollback_and_same_version_changes() -> None:
    v1, v2 = (
        sign_catalog(make_catalog(version=1), A_KEY),
        sign_catalog(make_catalog(version=2), A_KEY),
    )
    check_catalog_progress(None, v1)
    check_catalog_progress(v1, v2)
    check_catalog_progress(v2, v2)
    with pytest.raises(CatalogRollback, match="version 1, already holding version 2"):
        check_catalog_progress(v2, v1)
    changed = sign_catalog(make_catalog(version=2, offerings=3), A_KEY)
    with pytest.raises(CatalogRollback, match="same version 2"):
        check_catalog_progress(v2, changed)
    assert v1.catalog.generated_at == NOW
