"""``infracms audit verify`` with a witness policy: cosignatures counted, checked, required."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from importlib import resources

import pytest

from federation.keys import NodeKey
from federation.witness import Cosigner
from federation.witness_api import AddCheckpointRequest
from infracms.audit._verifier_core import CheckFailed
from infracms.audit.errors import AuditVerificationError, BadCheckpointError
from infracms.audit.verifier import (
    VerificationReport,
    WitnessPolicy,
    WitnessPolicyError,
    verify_export,
)
from tests.audit.builders import Log, build_log

W1 = Cosigner("w1.example/witness", NodeKey.generate())
W2 = Cosigner("w2.example/witness", NodeKey.generate())
W3 = Cosigner("w3.example/witness", NodeKey.generate())
BATCHES = [3, 5, 8, 2]


def cosign(note: str, *witnesses: Cosigner, at: int = 1772366400) -> str:
    """The note with each witness's C2SP cosignature line appended."""
    text = note[: note.rfind("\n\n") + 1]
    return note + "".join(w.cosign(text, at).line for w in witnesses)


def cosigned_log(*by_checkpoint: tuple[Cosigner, ...]) -> Log:
    """A log whose checkpoint ``n`` carries the cosignatures ``by_checkpoint[n]``."""
    log = build_log(BATCHES)
    for number, witnesses in enumerate(by_checkpoint):
        log.checkpoints[number] = cosign(log.checkpoints[number], *witnesses)
    return log


def verify(log: Log, policy: WitnessPolicy | None) -> VerificationReport:
    return verify_export(io.BytesIO(log.export()), log.signer.verifier().key_string, policy=policy)


def policy(*witnesses: Cosigner, minimum: int | None = None) -> WitnessPolicy:
    return WitnessPolicy.parse([w.verifier().vkey for w in witnesses], minimum)


def test_each_checkpoint_reports_the_trusted_witnesses_that_cosigned_it() -> None:
    log = cosigned_log((), (W1,), (W1, W2, W3), (W2,))
    report = verify(log, policy(W1, W2, minimum=1))
    assert [c.cosigners for c in report.witnessed] == [
        (),
        ("w1.example/witness",),
        ("w1.example/witness", "w2.example/witness"),
        ("w2.example/witness",),
    ]
    assert [c.size for c in report.witnessed] == [3, 8, 16, 18]


def test_a_policy_met_on_the_latest_checkpoint_passes() -> None:
    log = cosigned_log((), (), (), (W1, W2))
    assert verify(log, policy(W1, W2)).witnessed[-1].cosigners == (
        "w1.example/witness",
        "w2.example/witness",
    )


def test_a_policy_not_met_fails_naming_what_is_missing_and_the_latest_that_meets_it() -> None:
    log = cosigned_log((), (W1, W2), (W1,), (W1,))
    with pytest.raises(WitnessPolicyError) as failed:
        verify(log, policy(W1, W2))
    message = str(failed.value)
    assert "the log verified (18 entries, 4 checkpoints)" in message
    assert "latest checkpoint (size 18) carries 1 cosignature" in message
    assert "expected at least 2 (missing: w2.example/witness)" in message
    assert "checkpoint 1 (size 8) is the latest that meets it" in message
    assert failed.value.report.witnessed[1].cosigners == (
        "w1.example/witness",
        "w2.example/witness",
    )
    with pytest.raises(WitnessPolicyError, match="no checkpoint meets it"):
        verify(cosigned_log(), policy(W1))


def test_lower_minimum_and_untrusted_witnesses() -> None:
    log = cosigned_log((), (), (), (W1, W3))
    assert verify(log, policy(W1, W2, minimum=1)).witnessed[-1].cosigners == ("w1.example/witness",)
    with pytest.raises(WitnessPolicyError, match="carries 0 cosignatures"):
        verify(log, policy(W2))
    assert verify(log, policy(W2, minimum=0)).witnessed[-1].cosigners == ()


def test_a_forged_cosignature_by_a_trusted_witness_fails_its_checkpoint() -> None:
    log = cosigned_log((), (), (W1,), (W1,))
    line = log.checkpoints[2].splitlines()[-1]
    name, encoded = line[2:].split(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 1
    forged = f"\u2014 {name} {base64.b64encode(bytes(raw)).decode()}"
    log.checkpoints[2] = log.checkpoints[2].replace(line, forged)
    with pytest.raises(BadCheckpointError) as failed:
        verify(log, policy(W1))
    assert failed.value.number == 2
    assert "cosignature by w1.example/witness+" in str(failed.value)
    assert "does not verify" in str(failed.value)
    assert verify(log, None).checkpoints == 4, "without a policy cosignatures are not read"


def test_a_cosignature_copied_from_another_checkpoint_does_not_count() -> None:
    log = cosigned_log((), (), (W1,), ())
    copied = log.checkpoints[2].splitlines()[-1]
    log.checkpoints[3] += copied + "\n"
    with pytest.raises(BadCheckpointError, match=r"checkpoint 3 .*does not verify"):
        verify(log, policy(W1))


@pytest.mark.parametrize(
    ("vkeys", "minimum", "message"),
    [
        (["TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"], None, "a log key"),
        (["w1.example/witness+00000000+" + W1.verifier().vkey.split("+", 2)[2]], None, "key id"),
        (["not a key"], None, "not name\\+id\\+key"),
        ([W1.verifier().vkey], 2, "asks for 2 cosignatures, but names 1 witness:"),
    ],
)
def test_an_unusable_policy_is_refused(vkeys: list[str], minimum: int | None, message: str) -> None:
    with pytest.raises(AuditVerificationError, match=message):
        WitnessPolicy.parse(vkeys, minimum)


def test_a_witness_key_made_by_another_implementation_parses() -> None:
    """A native cosignature v1 key from transparency-dev/formats' tests, its key id theirs."""
    vkey = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    (witness,) = WitnessPolicy.parse([vkey]).witnesses
    assert (witness.name, witness.key_id.hex()) == ("remora.n621.de", "da77ade7")


def test_the_protocol_vector_cosignature_verifies_with_the_verifiers_own_code() -> None:
    vector = json.loads(
        resources.files("federation").joinpath("vectors/cosignature.json").read_text()
    )
    request = AddCheckpointRequest.parse(vector["add_checkpoint_body"].encode())
    line = vector["response_body"].rstrip("\n")
    name, encoded = line[2:].split(" ")
    trusted = WitnessPolicy.parse([vector["witness_vkey"]])
    found = trusted.cosigners(request.checkpoint_text, [(name, base64.b64decode(encoded))])
    assert found == ("b.example/witness",)
    other_text = request.checkpoint_text.replace("\n42\n", "\n43\n")
    with pytest.raises(CheckFailed, match="does not verify"):
        trusted.cosigners(other_text, [(name, base64.b64decode(encoded))])


def test_the_verifier_imports_neither_the_writer_nor_federation() -> None:
    code = (
        "import sys, infracms.audit.verifier\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'federation' or m in\n"
        "       ['infracms.audit.' + w for w in ('merkle', 'note', 'checkpoint', 'entry',\n"
        "        'exportfile')]]\n"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"the verifier imported {result.stdout.strip()}"
