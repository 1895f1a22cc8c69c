"""The export file: layout, round trip, and what the writer refuses."""

from __future__ import annotations

import io
import json

import pytest

from infracms.audit.errors import AuditVerificationError
from infracms.audit.exportfile import (
    LEAF_HASHES_PER_LINE,
    ExportHeader,
    export_lines,
    parse_header,
    read_export,
    write_export,
)
from infracms.audit.note import Signer
from tests.audit.builders import ORIGIN, build_log


def test_an_export_round_trips() -> None:
    log = build_log([3, 300, 10])
    export = read_export(io.BytesIO(log.export()))
    assert export.header == ExportHeader(
        origin=ORIGIN, verifier_key=log.signer.verifier().key_string, size=313, checkpoints=3
    )
    assert export.checkpoints == tuple(log.checkpoints)
    assert export.leaf_hashes == tuple(log.leaf_hashes)
    assert export.entries == tuple(log.entries)


def test_the_layout_is_header_checkpoints_leaf_hashes_entries() -> None:
    log = build_log([300, 13])
    lines = log.export().split(b"\n")
    assert lines[-1] == b"" and all(lines[:-1])
    header = json.loads(lines[0])
    assert header["format"] == "infracms-audit-export" and header["size"] == 313
    assert [list(json.loads(line)) for line in lines[1:5]] == [
        ["checkpoint"], ["checkpoint"], ["leaf_hashes"], ["leaf_hashes"]
    ]  # fmt: skip
    assert len(json.loads(lines[3])["leaf_hashes"]) == (LEAF_HASHES_PER_LINE * 32 + 2) // 3 * 4
    assert lines[5:-1] == log.entries  # entries exactly as hashed
    assert parse_header(lines[0]).size == 313


def test_an_empty_log_exports() -> None:
    log = build_log([0])
    export = read_export(io.BytesIO(log.export()))
    assert (export.header.size, export.entries, export.leaf_hashes) == (0, (), ())


def kwargs(log: object) -> dict[str, object]:
    return {
        "verifier_key": log.signer.verifier().key_string,  # type: ignore[attr-defined]
        "checkpoints": log.checkpoints,  # type: ignore[attr-defined]
        "leaf_hashes": log.leaf_hashes,  # type: ignore[attr-defined]
        "entries": log.entries,  # type: ignore[attr-defined]
    }


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"checkpoints": []}, "at least one signed checkpoint"),
        ({"entries": "drop-last"}, "got 19 entries, expected 20"),
        ({"leaf_hashes": "drop-last"}, "got 19 leaf hashes, expected 20"),
        ({"entries": "newline"}, "holds a newline"),
        ({"checkpoints": "reversed"}, "must ascend"),
    ],
)
def test_the_writer_refuses_an_export_that_would_not_verify(
    changes: dict[str, str], complaint: str
) -> None:
    log = build_log([10, 10])
    args = kwargs(log)
    for name, change in changes.items():
        value = list(args[name])  # type: ignore[call-overload]
        if change == "drop-last":
            value = value[:-1]
        elif change == "newline":
            value[3] = value[3] + b"\n"
        elif change == "reversed":
            value.reverse()
        else:
            value = change  # type: ignore[assignment]
        args[name] = value
    with pytest.raises(ValueError, match=complaint):
        write_export(io.BytesIO(), **args)  # type: ignore[arg-type]


def test_the_writer_refuses_checkpoints_by_another_key() -> None:
    log = build_log([5])
    args = kwargs(log)
    args["verifier_key"] = Signer.generate(ORIGIN).verifier().key_string
    with pytest.raises(AuditVerificationError, match="no signature by a known key"):
        list(export_lines(**args))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        (b"not json", "not JSON"),
        (b'{"format":"other","version":1}', "expected 'infracms-audit-export' version 1"),
        (b'{"format":"infracms-audit-export","version":1}', "incomplete"),
        (
            b'{"format":"infracms-audit-export","version":1,"origin":"o","verifier_key":"k",'
            b'"size":-1,"checkpoints":1}',
            "must be counts",
        ),
    ],
)
def test_bad_headers_are_refused(line: bytes, complaint: str) -> None:
    with pytest.raises(AuditVerificationError, match=complaint):
        parse_header(line)


def test_a_truncated_export_is_refused() -> None:
    data = build_log([300]).export()
    cut = b"\n".join(data.split(b"\n")[:3]) + b"\n"
    with pytest.raises(AuditVerificationError, match="not a 'leaf_hashes' line"):
        read_export(io.BytesIO(cut))
