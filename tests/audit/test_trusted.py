"""`verify --trusted`: an export must extend the checkpoints an auditor saved earlier.

The node key alone cannot tell a log its holder rewrote and re-signed, or rolled back;
a checkpoint the auditor saved can (RFC 9162 section 2.1.4 consistency proofs).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from infracms.audit._verifier_core import tree_levels
from infracms.audit._verifier_trusted import consistency_proof as verifier_proof
from infracms.audit._verifier_trusted import split_notes
from infracms.audit.checkpoint import Checkpoint, sign_checkpoint
from infracms.audit.errors import AuditVerificationError, TrustedCheckpointError
from infracms.audit.merkle import (
    consistency_proof,
    dict_reader,
    hash_leaf,
    integrate,
    root_of,
)
from infracms.audit.note import Signer
from infracms.audit.verifier import verify_export
from tests.audit.builders import ORIGIN, Log, build_log

BATCHES = [1, 63, 64, 100, 72]  # checkpoints at 1, 64, 128, 228, 300
Go = Callable[[dict[str, Any]], Any]


@pytest.fixture(scope="module")
def log() -> Log:
    return build_log(BATCHES)


def forge(signer: Signer, entries: Sequence[bytes], batches: Sequence[int]) -> Log:
    """A log of ``entries`` signed afresh with ``signer``, as a node admin would rebuild it."""
    forged = Log(signer=signer)
    for count in batches:
        start = len(forged.entries)
        new = list(entries[start : start + count])
        result = integrate(start, dict_reader(forged.store), [hash_leaf(e) for e in new])
        forged.store.update(result.stored)
        forged.entries.extend(new)
        forged.checkpoints.append(
            sign_checkpoint(Checkpoint(ORIGIN, result.size, result.root), signer)
        )
    return forged


def lines_of(log: Log) -> list[bytes]:
    return log.export().splitlines(keepends=True)


def saved(log: Log, size: int) -> str:
    """The checkpoint of ``size`` as the auditor saved it from the node."""
    sizes = [1, 64, 128, 228, 300]
    return log.checkpoints[sizes.index(size)]


def rewritten(log: Log, index: int) -> Log:
    entries = list(log.entries)
    entries[index] = entries[index].replace(b'"subject":"', b'"subject":"x')
    return forge(log.signer, entries, BATCHES)


def test_an_honest_export_extends_every_saved_checkpoint(log: Log) -> None:
    trusted = [saved(log, size) for size in (1, 64, 128, 228, 300)]
    report = verify_export(lines_of(log), log.signer.verifier().key_string, trusted=trusted)
    assert [(m.size, m.proof_hashes) for m in report.trusted] == [
        (size, len(consistency_proof(size, 300, dict_reader(log.store))))
        for size in (1, 64, 128, 228, 300)
    ]


def test_a_rewrite_resigned_with_the_node_key_passes_the_key_but_not_the_saved_checkpoint(
    log: Log,
) -> None:
    forged = lines_of(rewritten(log, 150))
    key = log.signer.verifier().key_string
    assert verify_export(forged, key).size == 300  # the key alone cannot tell
    with pytest.raises(TrustedCheckpointError) as caught:
        verify_export(forged, key, trusted=[saved(log, 228)])
    error = caught.value
    assert (error.trusted_size, error.export_size, error.agreed_size) == (228, 300, None)
    assert "parts from your trusted checkpoint at size 228" in str(error), error
    assert f"expected {base64.b64encode(root_of(log.leaf_hashes[:228])).decode()}" in str(error)


def test_several_saved_checkpoints_narrow_where_the_logs_part(log: Log) -> None:
    forged = lines_of(rewritten(log, 150))
    both = saved(log, 128) + saved(log, 228)  # one file, `>>` twice
    with pytest.raises(TrustedCheckpointError) as caught:
        verify_export(forged, log.signer.verifier().key_string, trusted=[both])
    assert (caught.value.trusted_size, caught.value.agreed_size) == (228, 128)
    assert "an entry in [128, 228) was rewritten" in str(caught.value)


def test_a_rollback_resigned_names_both_sizes(log: Log) -> None:
    shorter = lines_of(forge(log.signer, log.entries[:200], [1, 63, 64, 72]))
    key = log.signer.verifier().key_string
    assert verify_export(shorter, key).size == 200
    with pytest.raises(TrustedCheckpointError) as caught:
        verify_export(shorter, key, trusted=[saved(log, 128), saved(log, 228)])
    error = caught.value
    assert (error.trusted_size, error.export_size, error.agreed_size) == (228, 200, 128)
    assert str(error).startswith(
        "rollback: the export's log has size 200, but your trusted checkpoint has size 228"
    )


def test_a_saved_checkpoint_must_be_signed_by_the_key(log: Log) -> None:
    other = build_log([228], Signer.generate(ORIGIN)).checkpoints[0]
    with pytest.raises(AuditVerificationError, match="trusted checkpoint does not open"):
        verify_export(lines_of(log), log.signer.verifier().key_string, trusted=[other])
    with pytest.raises(AuditVerificationError, match="holds no signed note"):
        verify_export(lines_of(log), log.signer.verifier().key_string, trusted=["\n"])


def test_split_notes_reads_notes_written_one_after_another(log: Log) -> None:
    assert split_notes("".join(log.checkpoints)) == log.checkpoints
    assert split_notes(log.checkpoints[0]) == [log.checkpoints[0]]


@pytest.mark.parametrize("new", [1, 2, 3, 7, 8, 9, 31, 64, 100])
def test_the_verifiers_proofs_equal_the_writers(new: int) -> None:
    log = build_log([new])
    levels = tree_levels(b"".join(log.leaf_hashes))
    for old in range(1, new):
        assert verifier_proof(levels, old, new) == consistency_proof(
            old, new, dict_reader(log.store)
        ), (old, new)


@pytest.mark.interop
def test_go_tlog_agrees_on_which_saved_checkpoints_the_export_extends(
    log: Log, go_checker: Go
) -> None:
    forged = rewritten(log, 150)
    checks = []
    for source in (log, forged):
        levels = tree_levels(b"".join(source.leaf_hashes))
        for size in (64, 228):
            checks.append(
                {
                    "old_size": size,
                    "old_root": base64.b64encode(root_of(log.leaf_hashes[:size])).decode(),
                    "size": 300,
                    "root": base64.b64encode(root_of(source.leaf_hashes)).decode(),
                    "proof": [
                        base64.b64encode(h).decode() for h in verifier_proof(levels, size, 300)
                    ],
                }
            )
    errors = go_checker({"op": "check", "inclusion": [], "consistency": checks})["consistency"]
    assert [e == "" for e in errors] == [True, True, True, False], errors
