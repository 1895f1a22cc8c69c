"""C2SP tlog-cosignature v1 and tlog-witness add-checkpoint, against the spec texts."""

from __future__ import annotations

import base64
import hashlib

import pytest

from federation.errors import MalformedMessage, SignatureInvalid
from federation.witness import (
    Cosignature,
    CosignatureVerifier,
    Cosigner,
    cosigned_message,
    cosigner_key_id,
)
from federation.witness_api import (
    AddCheckpointRequest,
    CheckpointBody,
    format_cosignatures,
    format_size_conflict,
    parse_cosignatures,
    parse_size_conflict,
    split_note,
)
from infracms.audit.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from infracms.audit.note import Signer, parse_note
from tests.federation.helpers import B_KEY, C_KEY

# The example checkpoint of https://c2sp.org/tlog-cosignature and tlog-witness.
SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)
SPEC_COSIGNATURE_LINE = (
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZ"
    "qhf5nNo0xUe+mbIUBkBIfZ+qnA=="
)
WITNESS = Cosigner("b.example/witness", B_KEY)


def test_spec_example_cosignature_parses_with_its_documented_timestamp() -> None:
    """The spec's example signed message says ``time 1679315147``; the line carries it."""
    cosignature = Cosignature.parse_line(SPEC_COSIGNATURE_LINE)
    assert (cosignature.name, cosignature.key_id, cosignature.timestamp) == (
        "witness.example.com/w1",
        0x8D66CF3F,
        1679315147,
    )
    assert len(cosignature.signature) == 64
    assert cosignature.line == SPEC_COSIGNATURE_LINE + "\n"


def test_spec_example_signed_message_layout() -> None:
    text, _ = split_note(SPEC_CHECKPOINT)
    assert cosigned_message(text, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )


def test_native_cosignature_vkey_from_transparency_dev_formats_parses() -> None:
    """A type-0x04 vkey from transparency-dev/formats' tests: our key id matches its own."""
    verifier = CosignatureVerifier.from_vkey(
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    )
    assert verifier.key_id == 0xDA77ADE7 and verifier.name == "remora.n621.de"
    assert verifier.vkey == "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"


@pytest.mark.parametrize(
    "vkey",
    [
        "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6",  # a 0x01 note key, not a cosigner
        "remora.n621.de+00000000+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
        "remora.n621.de+da77ade7+not base64",
    ],
)
def test_wrong_vkeys_are_refused(vkey: str) -> None:
    with pytest.raises(MalformedMessage):
        CosignatureVerifier.from_vkey(vkey)


def test_key_id_is_sha256_of_name_newline_0x04_key() -> None:
    want = hashlib.sha256(b"b.example/witness\n\x04" + B_KEY.public_key).digest()[:4]
    assert cosigner_key_id("b.example/witness", B_KEY.public_key) == int.from_bytes(want, "big")


def test_cosignature_round_trip_and_refusals() -> None:
    text, _ = split_note(SPEC_CHECKPOINT)
    cosignature = WITNESS.cosign(text, 1772366400)
    again = Cosignature.parse_line(cosignature.line.rstrip("\n"))
    assert again == cosignature
    WITNESS.verifier().verify(text, again)
    with pytest.raises(SignatureInvalid, match="does not verify"):
        WITNESS.verifier().verify(text.replace("20852163", "20852164"), again)
    with pytest.raises(SignatureInvalid, match=r"expected c\.example/witness"):
        Cosigner("c.example/witness", C_KEY).verifier().verify(text, again)


def test_cosignature_lines_append_to_a_checkpoint_signed_by_infracms_audit() -> None:
    """Cross-implementation: infracms.audit signs a checkpoint, federation cosigns it."""
    log = Signer.generate("a.example/audit")
    checkpoint = Checkpoint(origin="a.example/audit", size=5, root=hashlib.sha256(b"root").digest())  # type: ignore[arg-type]
    note = sign_checkpoint(checkpoint, log)
    text, log_lines = split_note(note)
    body = CheckpointBody.parse(text)
    assert (body.origin, body.size, body.root_hash) == ("a.example/audit", 5, checkpoint.root)
    cosigned = note + WITNESS.cosign(text, 1772366400).line
    parsed = parse_note(cosigned)
    assert [s.name for s in parsed.signatures] == ["a.example/audit", "b.example/witness"]
    assert parse_checkpoint(parsed.text) == checkpoint
    WITNESS.verifier().verify(parsed.text, Cosignature.parse_line(cosigned.splitlines()[-1]))
    assert len(log_lines) == 1


def test_add_checkpoint_spec_example_body_parses_and_round_trips() -> None:
    proof = [
        "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=",
        "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=",
        "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=",
        "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=",
    ]
    body = ("old 20852014\n" + "".join(p + "\n" for p in proof) + "\n" + SPEC_CHECKPOINT).encode()
    request = AddCheckpointRequest.parse(body)
    assert (
        request.old_size == 20852014
        and [base64.b64encode(h).decode() for h in request.proof] == proof
    )
    assert CheckpointBody.parse(request.checkpoint_text).size == 20852163
    assert request.to_bytes() == body


@pytest.mark.parametrize(
    "body",
    [
        b"old 01\n\n" + SPEC_CHECKPOINT.encode(),
        b"old 5\n" + SPEC_CHECKPOINT.encode(),
        b"new 5\n\n" + SPEC_CHECKPOINT.encode(),
        b"old 0\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\n" + SPEC_CHECKPOINT.encode(),
        b"old 5\nAAAA\n\n" + SPEC_CHECKPOINT.encode(),
        b"old 5\n\nexample.com/log\n5\n",
        b"old 5\n\n" + b"\xff",
    ],
)
def test_malformed_add_checkpoint_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        AddCheckpointRequest.parse(body)


def test_too_long_a_proof_is_refused() -> None:
    with pytest.raises(MalformedMessage, match="at most 63"):
        AddCheckpointRequest(5, (bytes(32),) * 64, SPEC_CHECKPOINT)


def test_answers_round_trip() -> None:
    text, _ = split_note(SPEC_CHECKPOINT)
    cosignatures = (WITNESS.cosign(text, 1), Cosigner("c.example/witness", C_KEY).cosign(text, 2))
    assert parse_cosignatures(format_cosignatures(cosignatures)) == cosignatures
    assert parse_size_conflict(format_size_conflict(20852014)) == 20852014
    with pytest.raises(MalformedMessage):
        parse_cosignatures(b"")
    with pytest.raises(MalformedMessage):
        parse_size_conflict(b"12")


@pytest.mark.parametrize(
    "text",
    [
        "origin\n5\n",
        "origin\n05\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "origin\n5\nAAAA\n",
        "o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
    ],
)
def test_malformed_checkpoint_texts_are_refused(text: str) -> None:
    with pytest.raises(MalformedMessage):
        CheckpointBody.parse(text)
