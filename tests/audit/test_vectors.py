"""Our code against static vectors made by Go's sumdb/note and sumdb/tlog (no Go needed).

tests/audit/vectors/go_sumdb.json was written by ``python -m tests.audit.gocheck``;
test_go_interop.py checks that Go still makes exactly this.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest

from infracms.audit._verifier_core import root_at, tree_levels
from infracms.audit.checkpoint import open_checkpoint, sign_checkpoint
from infracms.audit.entry import parse_entry
from infracms.audit.errors import BadEntryError
from infracms.audit.exportfile import write_export
from infracms.audit.merkle import (
    Hash,
    LeafHash,
    RootHash,
    consistency_proof,
    dict_reader,
    hash_leaf,
    inclusion_proof,
    integrate,
    stored_hash_index,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from infracms.audit.note import Signer, Verifier, open_note, sign_note
from infracms.audit.verifier import verify_export
from tests.audit.gocheck import VECTORS


def b64(value: str) -> bytes:
    return base64.b64decode(value)


def hashes(values: list[str]) -> list[Hash]:
    return [Hash(b64(v)) for v in values]


@pytest.fixture(scope="module")
def go() -> Any:
    return json.loads(VECTORS.read_text())


def check_vectors(go: Any) -> None:
    """Everything our code must agree on with a set of Go-made vectors."""
    check_keys_and_notes(go)
    check_tree(go)
    check_export(go)


def check_keys_and_notes(go: Any) -> None:
    signer, verifier = (
        Signer.from_key_string(go["signer_key"]),
        Verifier.from_key_string(go["verifier_key"]),
    )
    assert signer.key_string == go["signer_key"]
    assert signer.verifier().key_string == go["verifier_key"] == verifier.key_string
    assert open_note(go["signed_note"], [verifier]).text == go["text"]
    assert sign_note(go["text"], signer) == go["signed_note"], "Ed25519 is deterministic"
    for signed in go["signed_checkpoints"]:
        checkpoint = open_checkpoint(signed, verifier, origin=go["origin"])
        assert checkpoint.root == b64(go["tree_hashes"][checkpoint.size - 1])
        assert sign_checkpoint(checkpoint, signer) == signed


def check_tree(go: Any) -> None:
    records = [b64(r) for r in go["records"]]
    leaves = [hash_leaf(r) for r in records]
    assert leaves == hashes(go["record_hashes"])
    result = integrate(0, dict_reader({}), leaves)
    go_stored = hashes(go["stored_hashes"])
    assert len(result.stored) == len(go_stored)
    for node, value in result.stored:
        assert go_stored[stored_hash_index(node)] == value, f"stored hash {node}"
    read = dict_reader(dict(result.stored))
    roots = [RootHash(h) for h in hashes(go["tree_hashes"])]
    levels = tree_levels(b"".join(leaves))
    for size, root in enumerate(roots, start=1):
        assert tree_root(size, read) == root == root_at(levels, size), f"root of {size}"
    for vector in go["inclusion"]:
        index, size, proof = vector["index"], vector["size"], hashes(vector["proof"])
        assert inclusion_proof(index, size, read) == proof, f"inclusion {index} in {size}"
        verify_inclusion(LeafHash(leaves[index]), index, size, proof, roots[size - 1])
    for vector in go["consistency"]:
        old, size, proof = vector["old_size"], vector["size"], hashes(vector["proof"])
        assert consistency_proof(old, size, read) == proof, f"consistency {old} to {size}"
        verify_consistency(old, size, roots[old - 1], roots[size - 1], proof)


def go_export(go: Any) -> bytes:
    out = io.BytesIO()
    write_export(
        out,
        verifier_key=go["verifier_key"],
        checkpoints=go["signed_checkpoints"],
        leaf_hashes=[LeafHash(h) for h in hashes(go["record_hashes"])],
        entries=[b64(r) for r in go["records"]],
    )
    return out.getvalue()


def check_export(go: Any) -> None:
    """The verifier accepts Go's checkpoints and hashes over our entries, and names tampering."""
    lines = go_export(go).splitlines(keepends=True)
    report = verify_export(lines, go["verifier_key"])
    assert (report.size, report.root_b64) == (len(go["records"]), go["tree_hashes"][-1])
    first_entry = len(lines) - len(go["records"])
    lines[first_entry + 9] = lines[first_entry + 9].replace(b'"subject":"', b'"subject":"x')
    with pytest.raises(BadEntryError) as caught:
        verify_export(lines, go["verifier_key"])
    assert (caught.value.position, caught.value.reason) == (9, "modified")


def test_keys_and_notes_match_go(go: Any) -> None:
    check_keys_and_notes(go)


def test_tree_hashes_stored_hashes_and_proofs_match_go(go: Any) -> None:
    check_tree(go)


def test_the_verifier_accepts_an_export_signed_and_hashed_by_go(go: Any) -> None:
    check_export(go)


def test_the_vector_records_are_canonical_entries(go: Any) -> None:
    for index, record in enumerate(go["records"]):
        assert parse_entry(b64(record)).index == index
