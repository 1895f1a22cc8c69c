"""C2SP tlog-checkpoint bodies: format, strict parsing, signing and opening."""

from __future__ import annotations

import base64

import pytest

from infracms.audit.checkpoint import (
    Checkpoint,
    format_checkpoint,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from infracms.audit.errors import AuditVerificationError
from infracms.audit.merkle import EMPTY_ROOT, Hash, RootHash
from infracms.audit.note import Signer

ROOT = RootHash(Hash(bytes(range(32))))
ROOT_B64 = base64.b64encode(ROOT).decode()


def test_the_spec_example_parses() -> None:
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    checkpoint = parse_checkpoint(body)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert format_checkpoint(checkpoint) == body


@pytest.mark.parametrize(
    "checkpoint",
    [
        Checkpoint("coop.example/audit", 0, EMPTY_ROOT),
        Checkpoint("coop.example/audit", 12345, ROOT),
        Checkpoint("o", 2**63 - 1, ROOT, ("ext one", "\u00e9xt two")),
    ],
)
def test_checkpoints_round_trip(checkpoint: Checkpoint, signer: Signer) -> None:
    assert parse_checkpoint(format_checkpoint(checkpoint)) == checkpoint
    signed = sign_checkpoint(checkpoint, signer)
    assert open_checkpoint(signed, signer.verifier(), origin=checkpoint.origin) == checkpoint


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (f"o\n012\n{ROOT_B64}\n", "without zeroes"),
        (f"o\n-1\n{ROOT_B64}\n", "without zeroes"),
        (f"o\n1.0\n{ROOT_B64}\n", "without zeroes"),
        (f"o\n\u0661\n{ROOT_B64}\n", "without zeroes"),
        (f"o\n{2**63}\n{ROOT_B64}\n", "is over"),
        (f"o\n1\n{ROOT_B64[:-1]}\n", "not base64"),
        ("o\n1\nAAAA\n", "canonical base64 of 32 bytes"),
        (f"o\n1\n{ROOT_B64}", "end with a newline"),
        ("o\n1\n", "expected 3 or more"),
        (f"\n1\n{ROOT_B64}\n", "origin line is empty"),
        (f"o\n1\n{ROOT_B64}\n\next\n", "empty extension"),
    ],
)
def test_malformed_bodies_are_refused(body: str, complaint: str) -> None:
    with pytest.raises(AuditVerificationError, match=complaint):
        parse_checkpoint(body)


@pytest.mark.parametrize(
    ("checkpoint", "complaint"),
    [
        (Checkpoint("", 1, ROOT), "origin must not be empty"),
        (Checkpoint("a\nb", 1, ROOT), "control character"),
        (Checkpoint("o", -1, ROOT), "size must be"),
        (Checkpoint("o", 1, RootHash(Hash(b"short"))), "expected 32"),
        (Checkpoint("o", 1, ROOT, ("",)), "extension line must not be empty"),
    ],
)
def test_formatting_refuses_what_cannot_be_parsed(checkpoint: Checkpoint, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        format_checkpoint(checkpoint)


def test_open_checks_origin_and_signature(signer: Signer) -> None:
    signed = sign_checkpoint(Checkpoint(signer.name, 7, ROOT), signer)
    assert open_checkpoint(signed, signer.verifier()).size == 7  # origin defaults to key name
    with pytest.raises(
        AuditVerificationError, match=r"origin is 'coop\.example/audit', expected 'x'"
    ):
        open_checkpoint(signed, signer.verifier(), origin="x")
    with pytest.raises(AuditVerificationError, match="no signature by a known key"):
        open_checkpoint(signed, Signer.generate(signer.name).verifier())
    with pytest.raises(AuditVerificationError, match="does not verify"):
        open_checkpoint(signed.replace("\n7\n", "\n8\n"), signer.verifier())
