"""Encodings, keys and the nonce store."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from federation.encoding import (
    b64url_decode,
    b64url_encode,
    canonical_json,
    format_time,
    signing_input,
)
from federation.errors import KeyNotValid, MalformedMessage
from federation.keys import NodeKey, StaticKeyResolver, TrustedKey, key_id_of, resolve_key
from federation.nonces import MemoryNonceStore
from tests.federation.helpers import A_KEY, NOW, later


def test_rfc8037_key_thumbprint_example() -> None:
    """RFC 8037 appendix A.3: the RFC 7638 thumbprint of the RFC 8032 test 1 key."""
    public = b64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "x")
    assert key_id_of(public) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    seed = b64url_decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A", "d")
    assert NodeKey.from_seed(seed).public_key == public


@pytest.mark.parametrize("text", ["AAA=", "A+B/", "AAB", "A", "é"])
def test_base64url_is_strict(text: str) -> None:
    with pytest.raises(MalformedMessage):
        b64url_decode(text, "value")


def test_base64url_round_trip() -> None:
    for size in range(0, 70):
        raw = bytes(range(size))
        assert b64url_decode(b64url_encode(raw), "value") == raw


def test_signing_input_is_context_newline_jcs() -> None:
    assert signing_input("ctx", {"b": 1, "a": "é"}) == b'ctx\n{"a":"\xc3\xa9","b":1}'
    with pytest.raises(MalformedMessage):
        canonical_json({"x": float("nan")})


def test_format_time() -> None:
    assert format_time(NOW + timedelta(microseconds=5)) == "2026-03-01T12:00:00Z"


def test_key_resolution_checks_validity() -> None:
    key = TrustedKey("a.example", A_KEY.public_key, not_before=NOW, not_after=later(60))
    resolver = StaticKeyResolver([key])
    assert resolve_key(resolver, A_KEY.key_id, later(30)) is key
    with pytest.raises(KeyNotValid, match="valid from"):
        resolve_key(resolver, A_KEY.key_id, later(-1))
    with pytest.raises(ValueError, match="32"):
        TrustedKey("a.example", b"short")
    with pytest.raises(ValueError, match="32"):
        NodeKey.from_seed(b"short")
    assert "private" not in repr(A_KEY) and A_KEY.key_id == key.key_id


def test_nonce_store_remembers_until_expiry_then_forgets() -> None:
    now = [NOW]
    store = MemoryNonceStore(clock=lambda: now[0])
    assert store.check_and_remember(key_id="k", nonce="n", expires_at=later(60))
    assert not store.check_and_remember(key_id="k", nonce="n", expires_at=later(60))
    assert store.check_and_remember(key_id="other", nonce="n", expires_at=later(60))
    now[0] = later(61)
    assert store.check_and_remember(key_id="k2", nonce="n2", expires_at=later(120))
    assert store.size == 1


def test_nonce_store_accepts_a_nonce_once_across_threads() -> None:
    store, accepted = MemoryNonceStore(clock=lambda: NOW), []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        accepted.append(store.check_and_remember(key_id="k", nonce="same", expires_at=later(60)))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(accepted) == [False] * 7 + [True]
