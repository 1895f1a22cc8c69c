"""RFC 9421 signatures between nodes: round trips, vectors from the RFCs, every refusal."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from http_message_signatures import HTTPMessageSigner, algorithms

from federation.encoding import b64url_decode
from federation.errors import (
    DigestMismatch,
    KeyNotValid,
    MalformedMessage,
    MissingComponent,
    NonceReused,
    OutsideTimeWindow,
    SignatureExpired,
    SignatureInvalid,
    SignatureNotYetValid,
    UnknownKey,
    UnsupportedVersion,
)
from federation.httpsig import (
    SignaturePolicy,
    content_digest,
    new_nonce,
    sign_request,
    sign_response,
    verify_request,
    verify_response,
)
from federation.keys import NodeKey, StaticKeyResolver, TrustedKey
from federation.messages import HttpRequest, HttpResponse, LibraryRequest
from federation.nonces import MemoryNonceStore
from tests.federation.helpers import A_KEY, B_KEY, NOW, later

URL = "https://a.example/v2/service_instances/i-1?accepts_incomplete=true"
BODY = b'{"plan_id":"o0-small","service_id":"o0"}'
NONCE = "n" * 43
B_KEYS = StaticKeyResolver([B_KEY.trusted("b.example")])


def _request(body: bytes = BODY, **changes: object) -> HttpRequest:
    request = HttpRequest.build("PUT", URL, [("Content-Type", "application/json")], body)
    return replace(request, **changes) if changes else request


def _signed(
    request: HttpRequest | None = None, *, key: NodeKey = B_KEY, **options: object
) -> HttpRequest:
    options = {"created": NOW, "nonce": NONCE} | options
    return sign_request(request or _request(), key=key, **options).request  # type: ignore[arg-type]


def _verify(request: HttpRequest, *, now: datetime = NOW, nonces: MemoryNonceStore | None = None):
    if nonces is None:
        nonces = MemoryNonceStore(clock=lambda: now)
    return verify_request(request, keys=B_KEYS, nonces=nonces, now=now)


def _set(request: HttpRequest, name: str, value: str) -> HttpRequest:
    return request.with_headers([(name, value)])


# --- vectors made by other implementations -------------------------------------------


def test_rfc9421_b26_ed25519_signature_is_reproduced() -> None:
    """RFC 9421 appendix B.2.6, signed with the appendix B.1.4 test key."""
    key = NodeKey.from_seed(b64url_decode("n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU", "seed"))
    assert key.public_key_b64 == "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"
    headers = httpx.Headers(
        [
            ("Host", "example.com"),
            ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
            ("Content-Type", "application/json"),
            ("Content-Length", "18"),
        ]
    )
    message = LibraryRequest("POST", "http://example.com/foo?param=Value&Pet=dog", headers)
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519)
    prepared = signer.prepare(
        message,
        key_id="test-key-ed25519",
        created=datetime.fromtimestamp(1618884473, tz=UTC),
        label="sig-b26",
        include_alg=False,
        covered_component_ids=(
            "date",
            "@method",
            "@path",
            "@authority",
            "content-type",
            "content-length",
        ),
    )
    assert prepared.signature_base.decode() == (
        '"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
        '"@method": POST\n'
        '"@path": /foo\n'
        '"@authority": example.com\n'
        '"content-type": application/json\n'
        '"content-length": 18\n'
        '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" '
        '"content-length");created=1618884473;keyid="test-key-ed25519"'
    )
    assert base64.b64encode(key.sign(prepared.signature_base)).decode() == (
        "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="
    )


def test_rfc9530_content_digest_example() -> None:
    """RFC 9530 section 2: the sha-256 digest of ``{"hello": "world"}``."""
    assert (
        content_digest(b'{"hello": "world"}')
        == "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    )


# --- round trips ---------------------------------------------------------------------


def test_signed_request_verifies_and_names_the_peer() -> None:
    signed = sign_request(_request(), key=B_KEY, created=NOW, nonce=NONCE)
    verified = _verify(signed.request, now=later(30))
    assert (verified.peer, verified.key_id, verified.nonce) == ("b.example", B_KEY.key_id, NONCE)
    assert verified.expires - verified.created == timedelta(seconds=60)
    assert verified.covered == (
        '"@method"',
        '"@target-uri"',
        '"@authority"',
        '"content-digest"',
        '"content-type"',
    )
    base = signed.signature_base.decode()
    assert base.startswith(f'"@method": PUT\n"@target-uri": {URL}\n"@authority": a.example\n')
    assert ';tag="infracms-federation-v1"' in base and ';alg="ed25519"' in base


def test_request_without_body_covers_its_empty_digest() -> None:
    request = HttpRequest.build("GET", "https://a.example/federation/v1/catalog")
    signed = _signed(request)
    assert signed.header("content-digest") == content_digest(b"")
    assert _verify(signed).covered[-1] == '"content-digest"'


def test_body_without_content_type_cannot_be_signed() -> None:
    with pytest.raises(ValueError, match="Content-Type"):
        sign_request(
            HttpRequest.build("POST", URL, body=b"{}"), key=B_KEY, created=NOW, nonce=NONCE
        )


def test_new_nonces_are_long_and_distinct() -> None:
    nonces = {new_nonce() for _ in range(100)}
    assert len(nonces) == 100 and all(len(n) == 43 for n in nonces)


# --- refusals ------------------------------------------------------------------------


def test_forged_signature_by_another_key_under_a_pinned_key_id_is_refused() -> None:
    forged = _signed(key=A_KEY)
    genuine_input = forged.header("signature-input").replace(A_KEY.key_id, B_KEY.key_id)
    with pytest.raises(SignatureInvalid, match="does not verify"):
        _verify(_set(forged, "Signature-Input", genuine_input))


def test_replayed_request_is_refused() -> None:
    signed, nonces = _signed(), MemoryNonceStore(clock=lambda: NOW)
    _verify(signed, nonces=nonces)
    with pytest.raises(NonceReused, match=NONCE):
        _verify(signed, nonces=nonces, now=later(5))


def test_forged_request_does_not_burn_the_nonce() -> None:
    nonces = MemoryNonceStore(clock=lambda: NOW)
    with pytest.raises(SignatureInvalid):
        _verify(_set(_signed(), "Signature", "infracms=:" + "A" * 86 + "==:"), nonces=nonces)
    assert nonces.size == 0
    _verify(_signed(), nonces=nonces)


def test_expired_request_is_refused() -> None:
    with pytest.raises(SignatureExpired, match="expired at 2026-03-01T12:01:00"):
        _verify(_signed(), now=later(60 + 31))


def test_request_within_clock_skew_after_expiry_is_accepted() -> None:
    _verify(_signed(), now=later(60 + 30))


def test_request_from_the_future_is_refused() -> None:
    with pytest.raises(SignatureNotYetValid):
        _verify(_signed(), now=later(-31))


def test_request_with_too_long_a_lifetime_is_refused() -> None:
    with pytest.raises(OutsideTimeWindow, match="lifetime is 301 s"):
        _verify(_signed(lifetime=timedelta(seconds=301)))


def test_request_with_a_shorter_policy_lifetime_is_refused() -> None:
    policy = SignaturePolicy(max_lifetime=timedelta(seconds=30))
    with pytest.raises(OutsideTimeWindow):
        verify_request(_signed(), keys=B_KEYS, nonces=MemoryNonceStore(), now=NOW, policy=policy)


def test_request_by_an_unknown_key_is_refused() -> None:
    with pytest.raises(UnknownKey) as caught:
        _verify(_signed(key=A_KEY))
    assert caught.value.key_id == A_KEY.key_id


def test_request_by_a_rotated_out_key_is_refused() -> None:
    ended = TrustedKey("b.example", B_KEY.public_key, not_after=later(-1))
    with pytest.raises(KeyNotValid, match="valid until"):
        verify_request(
            _signed(), keys=StaticKeyResolver([ended]), nonces=MemoryNonceStore(), now=NOW
        )


def test_tampered_body_is_refused() -> None:
    with pytest.raises(DigestMismatch, match="does not match"):
        _verify(replace(_signed(), body=b'{"plan_id":"o0-large","service_id":"o0"}'))


def test_tampered_body_with_a_matching_digest_is_refused() -> None:
    body = b'{"plan_id":"o0-large","service_id":"o0"}'
    tampered = _set(replace(_signed(), body=body), "Content-Digest", content_digest(body))
    with pytest.raises(SignatureInvalid):
        _verify(tampered)


def test_missing_or_malformed_digest_is_refused() -> None:
    signed = _signed()
    without = replace(signed, headers=tuple(h for h in signed.headers if h[0] != "Content-Digest"))
    with pytest.raises(MissingComponent, match="content-digest"):
        _verify(without)
    with pytest.raises(DigestMismatch, match="byte sequences"):
        _verify(_set(signed, "Content-Digest", "sha-256=not-bytes"))
    with pytest.raises(DigestMismatch, match="malformed"):
        _verify(_set(signed, "Content-Digest", "sha-256=:AAA"))
    with pytest.raises(DigestMismatch, match="no sha-256"):
        _verify(_set(signed, "Content-Digest", content_digest(BODY).replace("sha-256", "sha-512")))


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", URL),
        ("PUT", URL.replace("i-1", "i-2")),
        ("PUT", URL.replace("a.example", "c.example")),
    ],
)
def test_tampered_method_or_target_is_refused(method: str, url: str) -> None:
    with pytest.raises(SignatureInvalid):
        _verify(replace(_signed(), method=method, url=url))


def test_unsigned_request_is_refused() -> None:
    with pytest.raises(MissingComponent, match="no Signature-Input"):
        _verify(_request())


def test_signature_with_another_tag_is_refused() -> None:
    with pytest.raises(MissingComponent, match="no signature with tag"):
        _verify(_signed(tag="someone-else"))


def test_signature_not_covering_a_required_component_is_refused() -> None:
    signed = _signed()
    narrowed = signed.header("signature-input").replace(' "@authority"', "")
    with pytest.raises(MissingComponent, match="@authority"):
        _verify(_set(signed, "Signature-Input", narrowed))


def test_signature_not_covering_content_type_of_a_body_is_refused() -> None:
    signed = _signed()
    narrowed = signed.header("signature-input").replace(' "content-type"', "")
    with pytest.raises(MissingComponent, match="content-type"):
        _verify(_set(signed, "Signature-Input", narrowed))


@pytest.mark.parametrize("parameter", ["keyid", "created", "expires", "nonce"])
def test_signature_without_a_required_parameter_is_refused(parameter: str) -> None:
    signed = _signed()
    params = signed.header("signature-input").split(";")
    kept = ";".join(p for p in params if not p.startswith(f"{parameter}="))
    with pytest.raises(MissingComponent, match=parameter):
        _verify(_set(signed, "Signature-Input", kept))


@pytest.mark.parametrize(
    ("extra", "error", "match"),
    [
        (';alg="rsa-pss-sha512"', UnsupportedVersion, "alg"),
        (";foo=1", MalformedMessage, "unknown parameters"),
    ],
)
def test_signature_with_a_foreign_parameter_is_refused(extra: str, error: type, match: str) -> None:
    signed = _signed()
    value = signed.header("signature-input").replace(';alg="ed25519"', "") + extra
    with pytest.raises(error, match=match):
        _verify(_set(signed, "Signature-Input", value))


@pytest.mark.parametrize("nonce", ["short", "x" * 129, "not base64url!!!!!"])
def test_malformed_nonce_is_refused(nonce: str) -> None:
    with pytest.raises(MalformedMessage, match="nonce"):
        _verify(_signed(nonce=nonce))


def test_two_signatures_with_our_tag_are_refused() -> None:
    signed = _signed()
    value = signed.header("signature-input")
    doubled = value + ", second=" + value.split("=", 1)[1]
    with pytest.raises(MalformedMessage, match="2 signatures"):
        _verify(_set(signed, "Signature-Input", doubled))


def test_garbled_signature_input_is_refused() -> None:
    with pytest.raises(MalformedMessage, match="structured-field"):
        _verify(_set(_signed(), "Signature-Input", "infracms=(((("))


def test_signature_over_an_absent_field_is_refused() -> None:
    signed = _signed()
    without = replace(signed, headers=tuple(h for h in signed.headers if h[0] != "Content-Type"))
    with pytest.raises(MissingComponent, match="not in the message"):
        verify_request(replace(without, body=b""), keys=B_KEYS, nonces=MemoryNonceStore(), now=NOW)


# --- responses -----------------------------------------------------------------------


def _answer() -> HttpResponse:
    return HttpResponse.build(202, [("Content-Type", "application/json")], b'{"operation":"op-1"}')


def test_signed_response_verifies_against_its_request() -> None:
    request = _signed()
    signed = sign_response(_answer(), request=request, key=B_KEY, created=NOW)
    verified = verify_response(signed.response, request=request, keys=B_KEYS, now=later(10))
    assert verified.nonce is None and '"signature";req;key="infracms"' in verified.covered
    assert b'"@status": 202\n' in signed.signature_base


def test_response_replayed_for_another_request_is_refused() -> None:
    first, second = _signed(), _signed(nonce="m" * 43)
    signed = sign_response(_answer(), request=first, key=B_KEY, created=NOW).response
    with pytest.raises(SignatureInvalid):
        verify_response(signed, request=second, keys=B_KEYS, now=NOW)


def test_tampered_response_status_or_body_is_refused() -> None:
    request = _signed()
    signed = sign_response(_answer(), request=request, key=B_KEY, created=NOW).response
    with pytest.raises(SignatureInvalid):
        verify_response(replace(signed, status_code=200), request=request, keys=B_KEYS, now=NOW)
    with pytest.raises(DigestMismatch):
        verify_response(replace(signed, body=b"{}"), request=request, keys=B_KEYS, now=NOW)


def test_response_to_an_unsigned_request_cannot_be_signed() -> None:
    with pytest.raises(ValueError, match="no signature"):
        sign_response(_answer(), request=_request(), key=B_KEY, created=NOW)
