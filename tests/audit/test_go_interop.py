"""Interop with another implementation: Go's golang.org/x/mod/sumdb/{note,tlog}.

The checker (tests/audit/go/auditcheck) is built once per session; without Go these
tests fail, telling what to install, rather than skip.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from infracms.audit.checkpoint import Checkpoint, sign_checkpoint
from infracms.audit.merkle import (
    Hash,
    RootHash,
    consistency_proof,
    dict_reader,
    hash_leaf,
    inclusion_proof,
    tree_root,
)
from infracms.audit.note import Signer, parse_note, sign_note
from tests.audit import gocheck
from tests.audit.builders import ORIGIN, build_log
from tests.audit.test_vectors import check_vectors

pytestmark = pytest.mark.interop
Go = Callable[[dict[str, Any]], Any]


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def test_go_still_makes_the_static_vectors(go_checker: Go) -> None:
    records = [b64(r) for r in gocheck.vector_records()]
    made = go_checker({**gocheck.VECTOR_REQUEST, "records": records})
    assert made == json.loads(gocheck.VECTORS.read_text()), (
        "Go makes other vectors than tests/audit/vectors/go_sumdb.json: "
        "rerun `python -m tests.audit.gocheck` if the request changed on purpose"
    )


def test_go_opens_our_signed_checkpoints(go_checker: Go) -> None:
    log = build_log([1, 6, 40, 3])
    vkey = log.signer.verifier().key_string
    read = dict_reader(log.store)
    for signed, size in zip(log.checkpoints, [1, 7, 47, 50], strict=True):
        opened = go_checker({"op": "open", "verifier_key": vkey, "note": signed})
        assert opened["error"] == "", opened
        assert (opened["origin"], opened["size"]) == (ORIGIN, size)
        assert opened["root"] == b64(tree_root(size, read))
        assert opened["signers"] == [f"{ORIGIN}+{log.signer.verifier().key_id:08x}"]


def test_go_opens_our_notes_with_extensions_and_cosignatures(
    go_checker: Go, signer: Signer
) -> None:
    witness = Signer.generate("witness.example/w1")
    body = Checkpoint(ORIGIN, 3, RootHash(Hash(bytes(32))), ("ext: one", "ext: two"))
    signed = sign_note(parse_note(sign_checkpoint(body, signer)), witness)
    for key in (signer, witness):
        opened = go_checker(
            {"op": "open", "verifier_key": key.verifier().key_string, "note": signed}
        )
        assert opened["error"] == "" and opened["text"] == parse_note(signed).text, opened


def test_go_refuses_what_we_must_refuse(go_checker: Go, signer: Signer) -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 3, RootHash(Hash(bytes(32)))), signer)
    vkey = signer.verifier().key_string
    tampered = signed.replace("\n3\n", "\n4\n")
    assert (
        "invalid signature"
        in go_checker({"op": "open", "verifier_key": vkey, "note": tampered})["error"]
    )
    stranger = Signer.generate(ORIGIN).verifier().key_string
    assert (
        "no verifiable"
        in go_checker({"op": "open", "verifier_key": stranger, "note": signed})["error"]
    )


def test_go_checks_our_inclusion_and_consistency_proofs(go_checker: Go) -> None:
    log = build_log([70])
    read = dict_reader(log.store)
    leaves = [hash_leaf(e) for e in log.entries]
    sizes = [1, 2, 3, 7, 8, 9, 31, 32, 33, 64, 69, 70]
    roots = {size: tree_root(size, read) for size in range(1, 71)}
    inclusion = [
        {"size": size, "root": b64(roots[size]), "index": index, "leaf": b64(leaves[index]),
         "proof": [b64(h) for h in inclusion_proof(index, size, read)]}
        for size in sizes for index in range(size)
    ]  # fmt: skip
    consistency = [
        {"old_size": old, "old_root": b64(roots[old]), "size": size, "root": b64(roots[size]),
         "proof": [b64(h) for h in consistency_proof(old, size, read)]}
        for size in sizes for old in range(1, size + 1)
    ]  # fmt: skip
    checked = go_checker({"op": "check", "inclusion": inclusion, "consistency": consistency})
    assert checked["inclusion"] == [""] * len(inclusion)
    assert checked["consistency"] == [""] * len(consistency)

    inclusion[100]["proof"][0] = b64(bytes(32))
    consistency[100]["old_root"] = b64(bytes(32))
    checked = go_checker(
        {"op": "check", "inclusion": inclusion[99:101], "consistency": consistency[99:101]}
    )
    assert checked["inclusion"][0] == "" and checked["inclusion"][1] != ""
    assert checked["consistency"][0] == "" and checked["consistency"][1] != ""


def test_we_accept_fresh_vectors_made_by_go(go_checker: Go) -> None:
    log = build_log([37])
    request = {
        **gocheck.VECTOR_REQUEST,
        "seed": secrets.token_hex(32),
        "name": "fresh.example/log",
        "origin": "fresh.example/log",
        "records": [b64(e) for e in log.entries],
        "checkpoint_sizes": [5, 16, 17, 37],
    }
    check_vectors(go_checker(request))
