"""C2SP signed-note: keys, signing, opening, and the format's edge cases."""

from __future__ import annotations

import pytest

from infracms.audit.errors import AuditVerificationError
from infracms.audit.note import (
    Note,
    Signature,
    Signer,
    Verifier,
    format_note,
    is_valid_key_name,
    key_id,
    open_note,
    parse_note,
    sign_note,
)

# The example in the documentation of Go's golang.org/x/mod/sumdb/note.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXg"
    "KvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_go_documentation_example_signs_and_opens_identically() -> None:
    signer = Signer.from_key_string(GO_SIGNER)
    assert signer.key_string == GO_SIGNER
    assert signer.verifier().key_string == GO_VERIFIER
    assert sign_note(GO_TEXT, signer) == GO_NOTE  # Ed25519 is deterministic
    note = open_note(GO_NOTE, [Verifier.from_key_string(GO_VERIFIER)])
    assert note.text == GO_TEXT
    assert [(s.name, f"{s.key_id:08x}") for s in note.signatures] == [("PeterNeumann", "c74f20a3")]


def test_key_id_is_sha256_of_name_newline_type_and_key() -> None:
    verifier = Verifier.from_key_string(GO_VERIFIER)
    assert key_id(verifier.name, verifier.public_key) == 0xC74F20A3


def test_key_strings_round_trip(signer: Signer) -> None:
    assert Signer.from_key_string(signer.key_string).key_string == signer.key_string
    verifier = signer.verifier()
    assert Verifier.from_key_string(verifier.key_string) == verifier


def test_note_round_trips_through_parse_and_format(signer: Signer) -> None:
    other = Signer.generate("witness.example")
    signed = sign_note(parse_note(sign_note("a\n\nb\n", signer)), other)
    note = parse_note(signed)
    assert note.text == "a\n\nb\n"
    assert [s.name for s in note.signatures] == [signer.name, "witness.example"]
    assert format_note(note) == signed
    assert open_note(signed.encode(), [other.verifier()]).signatures[0].name == "witness.example"


def test_signing_again_replaces_the_same_keys_signature(signer: Signer) -> None:
    once = sign_note("text\n", signer)
    twice = sign_note(parse_note(once), signer)
    assert len(parse_note(twice).signatures) == 1


@pytest.mark.parametrize(
    ("vkey", "complaint"),
    [
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "expected c74f20a3"),
        ("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex digits"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "valid key name"),
        ("PeterNeumann+c74f20a3+AhpcLDE4izWy10TW", "32-byte"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "base64"),
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str, complaint: str) -> None:
    with pytest.raises(AuditVerificationError, match=complaint):
        Verifier.from_key_string(vkey)


def test_key_names_follow_go() -> None:
    assert is_valid_key_name("coop.example/audit")
    for bad in ["", "a b", "a+b", "a\u00a0b", "a\u2003b", "a\nb"]:
        assert not is_valid_key_name(bad), repr(bad)


def test_open_refuses_a_changed_text(signer: Signer) -> None:
    signed = sign_note("pay 10\n", signer).replace("10", "99", 1)
    with pytest.raises(AuditVerificationError, match="does not verify"):
        open_note(signed, [signer.verifier()])


def test_open_ignores_unknown_keys_but_needs_one_known(signer: Signer) -> None:
    stranger = Signer.generate(signer.name)  # same name, other key: another key id
    signed = sign_note(parse_note(sign_note("text\n", stranger)), signer)
    assert len(open_note(signed, [signer.verifier()]).signatures) == 1
    with pytest.raises(AuditVerificationError, match="no signature by a known key"):
        open_note(sign_note("text\n", stranger), [signer.verifier()])


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        ("text\n\u2014 a AAAAAAA=\n", "no blank line"),
        ("text\n\n", "no signature lines"),
        ("text\n\n- a AAAAAAA=\n", "em dash"),
        ("text\n\n\u2014 a AAAA\n", "5 or more"),
        ("text\n\n\u2014 a AAAAAAA\n", "base64"),
        ("text\n\n\u2014 a+b AAAAAAA=\n", "valid key name"),
        ("te\txt\n\n\u2014 a AAAAAAA=\n", "control character"),
        ("text\n\n\u2014 a AAAAAAA=", "end with a newline"),
        ("text\n\n" + "\u2014 a AAAAAAA=\n" * 101, "at most 100"),
    ],
)
def test_malformed_notes_are_refused(message: str, complaint: str) -> None:
    with pytest.raises(AuditVerificationError, match=complaint):
        parse_note(message)


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(AuditVerificationError, match="UTF-8"):
        parse_note(b"\xff\n\n\xe2\x80\x94 a AAAAAAA=\n")


def test_signature_line_encodes_key_id_then_signature() -> None:
    sig = Signature(name="n", key_id=0x01020304, signature=b"\xff" * 4)
    assert sig.line == "\u2014 n AQIDBP////8=\n"
    assert parse_note("t\n\n" + sig.line).signatures == (sig,)


def test_a_note_needs_a_signature_and_a_final_newline(signer: Signer) -> None:
    with pytest.raises(ValueError, match="at least one signature"):
        format_note(Note(text="t\n"))
    with pytest.raises(AuditVerificationError, match="newline"):
        sign_note("no newline", signer)
