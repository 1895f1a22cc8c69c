"""The offline verifier: a good export passes; each kind of tampering is named."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace

import pytest

from infracms.audit._verifier_core import root_at, tree_levels
from infracms.audit.checkpoint import Checkpoint, sign_checkpoint
from infracms.audit.entry import Actor, entry_bytes
from infracms.audit.errors import AuditVerificationError, BadCheckpointError, BadEntryError
from infracms.audit.merkle import NodeId, dict_reader, hash_leaf, integrate, root_of
from infracms.audit.note import Signer
from infracms.audit.verifier import verify_export, verify_export_file
from tests.audit.builders import ORIGIN, Log, build_log, entry_fields

BATCHES = [1, 63, 64, 100, 72]  # checkpoints at 1, 64, 128, 228, 300
SIZES = [1, 64, 128, 228, 300]


@pytest.fixture(scope="module")
def log() -> Log:
    return build_log(BATCHES)


@pytest.fixture(scope="module")
def lines(log: Log) -> list[bytes]:
    return log.export().splitlines(keepends=True)


def entry_line(index: int) -> int:
    """The line number (0-based) of entry ``index`` in the module's export."""
    return 1 + len(BATCHES) + 2 + index  # header, checkpoints, two leaf-hash lines


def verify(log: Log, lines: list[bytes]) -> object:
    return verify_export(lines, log.signer.verifier().key_string)


def test_an_untouched_export_verifies(log: Log, lines: list[bytes], tmp_path: object) -> None:
    report = verify(log, lines)
    assert report == verify_export_file(_write(tmp_path, lines), log.signer.verifier().key_string)
    assert (report.origin, report.entries, report.checkpoints, report.size) == (ORIGIN, 300, 5, 300)
    assert report.root == root_of([hash_leaf(e) for e in log.entries])
    assert report.root_b64 == base64.b64encode(report.root).decode()


def _write(tmp_path: object, lines: list[bytes]) -> str:
    path = f"{tmp_path}/export.jsonl"
    with open(path, "wb") as out:
        out.writelines(lines)
    return path


def test_an_empty_log_verifies() -> None:
    log = build_log([0])
    assert verify(log, log.export().splitlines(keepends=True)).entries == 0


def failure(log: Log, lines: list[bytes]) -> AuditVerificationError:
    with pytest.raises(AuditVerificationError) as caught:
        verify(log, lines)
    return caught.value


POSITIONS = [0, 1, 63, 64, 150, 227, 228, 298, 299]


@pytest.mark.parametrize("index", POSITIONS)
def test_a_modified_entry_is_named(log: Log, lines: list[bytes], index: int) -> None:
    changed = list(lines)
    changed[entry_line(index)] = changed[entry_line(index)].replace(b'"subject":"', b'"subject":"x')
    error = failure(log, changed)
    assert isinstance(error, BadEntryError), error
    assert (error.position, error.reason) == (index, "modified"), error
    want = base64.b64encode(hash_leaf(log.entries[index])).decode()
    assert f"entry {index} was modified" in str(error) and f"expected {want}" in str(error)


@pytest.mark.parametrize("index", POSITIONS)
def test_a_deleted_entry_is_named(log: Log, lines: list[bytes], index: int) -> None:
    changed = list(lines)
    del changed[entry_line(index)]
    error = failure(log, changed)
    assert isinstance(error, BadEntryError), error
    assert (error.position, error.reason) == (index, "deleted"), error


@pytest.mark.parametrize("index", [*POSITIONS, 300])
def test_an_inserted_entry_is_named(log: Log, lines: list[bytes], index: int) -> None:
    forged = log.entries[min(index, 299)].replace(b'"subject":"', b'"subject":"forged')
    forged = forged.replace(b'"index":%d,' % min(index, 299), b'"index":%d,' % index)
    changed = list(lines)
    changed.insert(entry_line(index), forged + b"\n")
    error = failure(log, changed)
    assert isinstance(error, BadEntryError), error
    assert (error.position, error.reason) == (index, "inserted"), error


@pytest.mark.parametrize("index", [0, 63, 150, 298])
def test_an_inserted_copy_is_named(log: Log, lines: list[bytes], index: int) -> None:
    changed = list(lines)
    changed.insert(entry_line(index + 1), lines[entry_line(index)])
    error = failure(log, changed)
    assert isinstance(error, BadEntryError), error
    assert (error.position, error.reason) == (index + 1, "inserted"), error
    assert f"copy of entry {index}" in str(error)


@pytest.mark.parametrize(("first", "second"), [(0, 1), (63, 64), (150, 151), (10, 290), (298, 299)])
def test_reordered_entries_are_named(log: Log, lines: list[bytes], first: int, second: int) -> None:
    changed = list(lines)
    a, b = entry_line(first), entry_line(second)
    changed[a], changed[b] = changed[b], changed[a]
    error = failure(log, changed)
    assert isinstance(error, BadEntryError), error
    assert (error.position, error.reason) == (first, "reordered"), error
    assert f"moved to position {second}" in str(error)


def test_an_entry_moved_to_the_end_is_named(log: Log, lines: list[bytes]) -> None:
    changed = list(lines)
    changed.append(changed.pop(entry_line(42)))
    error = failure(log, changed)
    assert isinstance(error, BadEntryError)
    assert (error.position, error.reason) == (42, "reordered"), error


def test_an_unreadable_entry_is_named(log: Log, lines: list[bytes]) -> None:
    changed = list(lines)
    changed[entry_line(77)] = b'{"hello": "world"}\n'
    error = failure(log, changed)
    assert isinstance(error, BadEntryError)
    assert (error.position, error.reason) == (77, "malformed"), error


def test_crlf_line_endings_break_every_entry(log: Log, lines: list[bytes]) -> None:
    changed = [line.replace(b"\n", b"\r\n") for line in lines]
    error = failure(log, changed)
    assert isinstance(error, BadEntryError) and error.position == 0, error


def sign(log: Log, size: int, root: bytes, signer: Signer | None = None) -> bytes:
    signed = sign_checkpoint(Checkpoint(ORIGIN, size, root), signer or log.signer)  # type: ignore[arg-type]
    return json.dumps({"checkpoint": signed}, ensure_ascii=False).encode() + b"\n"


def checkpoint_failure(
    log: Log, lines: list[bytes], number: int, line: bytes
) -> BadCheckpointError:
    changed = list(lines)
    changed[1 + number] = line
    error = failure(log, changed)
    assert isinstance(error, BadCheckpointError), error
    return error


@pytest.mark.parametrize("number", range(len(SIZES)))
def test_a_checkpoint_signed_by_another_key_is_named(
    log: Log, lines: list[bytes], number: int
) -> None:
    root = json.loads(lines[1 + number])["checkpoint"].split("\n")[2]
    forged = sign(log, SIZES[number], base64.b64decode(root), Signer.generate(ORIGIN))
    error = checkpoint_failure(log, lines, number, forged)
    assert (error.number, error.size) == (number, SIZES[number])
    assert "no signature by coop.example/audit+" in str(error)


def test_a_checkpoint_with_a_changed_body_is_named(log: Log, lines: list[bytes]) -> None:
    tampered = lines[3].replace(b"\\n128\\n", b"\\n127\\n")
    error = checkpoint_failure(log, lines, 2, tampered)
    assert error.number == 2 and "does not verify" in str(error)


def test_a_validly_signed_checkpoint_over_other_entries_is_named(
    log: Log, lines: list[bytes]
) -> None:
    # The node itself signs a root its entries do not give (or entries were rewritten).
    error = checkpoint_failure(log, lines, 3, sign(log, 228, bytes(32)))
    assert (error.number, error.size) == (3, 228)
    assert "[128, 228)" in str(error), error


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], "expected at least 64"),
        (lambda ls: [ls[0], *ls[1:5], ls[4], *ls[6:]], "expected the export's size 300"),
        (lambda ls: [ls[0], ls[1], b"not json\n", *ls[3:]], "checkpoint 1: expected a checkpoint"),
    ],
)
def test_checkpoints_out_of_order_or_missing_are_refused(
    log: Log, lines: list[bytes], mutate: Callable[[list[bytes]], list[bytes]], complaint: str
) -> None:
    error = failure(log, mutate(list(lines)))
    assert isinstance(error, BadCheckpointError) and complaint in str(error), error


def test_an_entry_rewritten_with_its_leaf_hash_is_narrowed_to_a_checkpoint(log: Log) -> None:
    entries = list(log.entries)
    entries[150] = entries[150].replace(b'"subject":"', b'"subject":"x')
    forged = Log(
        signer=log.signer, entries=entries, store=dict(log.store), checkpoints=log.checkpoints
    )
    leaf = hash_leaf(entries[150])
    forged.store[NodeId(0, 150)] = leaf
    error = failure(log, forged.export().splitlines(keepends=True))
    assert isinstance(error, BadCheckpointError), error
    assert (error.number, error.size) == (3, 228) and "[128, 228)" in str(error)


def test_a_corrupt_leaf_hash_list_with_intact_entries_is_reported(log: Log) -> None:
    forged = Log(
        signer=log.signer, entries=log.entries, store=dict(log.store), checkpoints=log.checkpoints
    )
    forged.store[NodeId(0, 200)] = hash_leaf(b"nothing")
    error = failure(log, forged.export().splitlines(keepends=True))
    assert "leaf-hash list is corrupt, its entries are intact" in str(error), error


@pytest.mark.parametrize(
    ("index", "complaint"),
    [(0, "is not an infracms-audit-export header"), (6, "leaf-hash line")],
)
def test_a_broken_layout_is_refused(
    log: Log, lines: list[bytes], index: int, complaint: str
) -> None:
    changed = list(lines)
    changed[index] = b"{}\n"
    assert complaint in str(failure(log, changed))


def test_the_trusted_key_must_be_the_exports(log: Log, lines: list[bytes]) -> None:
    other = Signer.generate(ORIGIN).verifier().key_string
    with pytest.raises(AuditVerificationError, match="export is for key"):
        verify_export(lines, other)
    with pytest.raises(AuditVerificationError, match="unusable"):
        verify_export(lines, "not a key")
    with pytest.raises(AuditVerificationError, match=r"origin is 'coop\.example/audit'"):
        verify_export(lines, log.signer.verifier().key_string, origin="elsewhere")


def test_an_export_with_no_checkpoint_is_refused(log: Log, lines: list[bytes]) -> None:
    header = json.loads(lines[0])
    header.update(checkpoints=0)
    changed = [json.dumps(header).encode() + b"\n", *lines[1 + len(BATCHES) :]]
    with pytest.raises(AuditVerificationError, match="no checkpoint"):
        verify(log, changed)


def test_the_verifier_imports_none_of_the_writers_code() -> None:
    code = (
        "import sys, infracms.audit.verifier\n"
        "bad = [m for m in ('merkle', 'note', 'checkpoint', 'entry', 'exportfile')\n"
        "       if 'infracms.audit.' + m in sys.modules]\n"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"the verifier imported {result.stdout.strip()}"


def test_the_verifiers_hashing_agrees_with_the_writers() -> None:
    for size in [0, 1, 2, 3, 7, 8, 9, 100]:
        leaves = [hash_leaf(b"%d" % i) for i in range(size)]
        levels = tree_levels(b"".join(leaves))
        for prefix in range(size + 1):
            assert root_at(levels, prefix) == root_of(leaves[:prefix]), (size, prefix)


def test_stream_from_a_file_object(log: Log, lines: list[bytes]) -> None:
    assert verify_export(io.BytesIO(b"".join(lines)), log.signer.verifier().key_string).size == 300


def test_entries_with_quotes_backslashes_and_unicode_verify(signer: Signer) -> None:
    log = Log(signer=signer)
    awkward = [
        replace(entry_fields(0), actor=Actor(kind="peer", id=None, name='O"Brien \\ \u2603')),
        replace(entry_fields(1), action='a\n"b"\\', subject="\u2028\u00e9\U0001f600"),
        replace(entry_fields(2), payload={"\u00e9": ['"', "\\", "\t"], "e": {"": None}}),
    ]
    log.entries = [entry_bytes(fields) for fields in awkward]
    result = integrate(0, dict_reader({}), [hash_leaf(e) for e in log.entries])
    log.store = dict(result.stored)
    log.checkpoints = [sign_checkpoint(Checkpoint(ORIGIN, 3, result.root), signer)]
    assert verify(log, log.export().splitlines(keepends=True)).entries == 3
