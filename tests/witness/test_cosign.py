"""This node as a witness, against its database: what it cosigns, refuses and records."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from federation.keys import NodeKey
from federation.witness import SIZE_MEDIA_TYPE, CosignatureVerifier
from federation.witness_api import AddCheckpointRequest, parse_cosignatures
from infracms.db import session_scope
from infracms.models import AuditEntry
from infracms.models.federation import PeerStatus
from infracms.models.witness import ConflictKind, WitnessConflict, WitnessedLog
from infracms.services.witness import Submitter, WitnessAnswer, add_checkpoint
from tests.helpers import audit_size, count
from tests.witness.logs import Tree
from tests.witness.nodes import Node, pin_key, set_status

A_KEY = NodeKey.generate()
A = Submitter("a.example", A_KEY.key_id)


@pytest.fixture
def witness(node_b: Node) -> Node:
    """b.example, holding a.example (with A_KEY) as a peer."""
    pin_key(node_b, "a.example", A_KEY)
    return node_b


def submit(
    node: Node, request: AddCheckpointRequest | bytes, submitter: Submitter = A
) -> WitnessAnswer:
    body = request if isinstance(request, bytes) else request.to_bytes()
    with session_scope(node.engine, write=True) as session:
        return add_checkpoint(session=session, ctx=node.ctx, submitter=submitter, body=body)


def held(node: Node) -> tuple[int, bytes] | None:
    with Session(node.engine) as session:
        row = session.get(WitnessedLog, "a.example")
        return None if row is None else (row.size, bytes(row.root))


def conflicts(node: Node) -> list[WitnessConflict]:
    with Session(node.engine) as session:
        return list(session.exec(select(WitnessConflict)).all())


def refusal_entries(node: Node) -> list[AuditEntry]:
    with Session(node.engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == "witness.refuse")
        return list(session.exec(query).all())


def test_a_consistent_checkpoint_gets_a_cosignature_that_verifies(witness: Node) -> None:
    entries = audit_size(witness.engine)
    first = submit(witness, Tree(7).request(A_KEY, 0))
    assert (first.status, first.content_type) == (200, "text/plain; charset=utf-8")
    grown = Tree(20).request(A_KEY, 7)
    answer = submit(witness, grown)
    assert answer.status == 200, answer.body
    (cosignature,) = parse_cosignatures(answer.body)
    verifier = CosignatureVerifier("b.example/witness", witness.key.public_key)
    verifier.verify(grown.checkpoint_text, cosignature)
    assert held(witness) == (20, Tree(20).root)
    assert audit_size(witness.engine) == entries, "cosigning appends no audit entry"


def test_the_same_checkpoint_again_is_cosigned_again(witness: Node) -> None:
    assert submit(witness, Tree(7).request(A_KEY, 0)).status == 200
    assert submit(witness, Tree(7).request(A_KEY, 7)).status == 200
    assert held(witness) == (7, Tree(7).root)


def test_an_inconsistent_checkpoint_is_refused_and_the_refusal_recorded(witness: Node) -> None:
    cosigned = Tree(7).request(A_KEY, 0)
    assert submit(witness, cosigned).status == 200
    rewritten = Tree(20, tag="rewritten")
    forged = AddCheckpointRequest(7, Tree(20).proof_from(7), rewritten.signed(A_KEY))
    answer = submit(witness, forged)
    assert answer.status == 422
    assert json.loads(answer.body)["error"] == "InconsistentCheckpoint"
    assert held(witness) == (7, Tree(7).root), "the witness still holds what it cosigned"
    (conflict,) = conflicts(witness)
    assert conflict.kind is ConflictKind.inconsistent and conflict.status == 422
    assert conflict.held_checkpoint == cosigned.checkpoint
    assert conflict.submitted_checkpoint == forged.checkpoint
    assert (conflict.held_size, conflict.submitted_size, conflict.old_size) == (7, 20, 7)
    assert conflict.submitted_root == rewritten.root and conflict.submitted_by == A_KEY.key_id
    assert len(conflict.proof.split()) == len(forged.proof)
    (entry,) = refusal_entries(witness)
    payload = json.loads(entry.payload)
    assert (entry.actor_kind, entry.actor_name, entry.subject) == (
        "peer",
        "a.example",
        "log:a.example",
    )
    assert payload["conflict"] == str(conflict.id) and payload["kind"] == "inconsistent"
    assert payload["held_checkpoint"] == cosigned.checkpoint
    assert payload["submitted_checkpoint"] == forged.checkpoint


def test_a_fork_at_the_cosigned_size_is_refused_409_and_recorded(witness: Node) -> None:
    assert submit(witness, Tree(7).request(A_KEY, 0)).status == 200
    answer = submit(witness, Tree(7, tag="fork").request(A_KEY, 7))
    assert (answer.status, answer.content_type, answer.body) == (409, SIZE_MEDIA_TYPE, b"7\n")
    (conflict,) = conflicts(witness)
    assert conflict.kind is ConflictKind.fork
    assert len(refusal_entries(witness)) == 1


def test_a_smaller_checkpoint_is_answered_409_with_the_current_size(witness: Node) -> None:
    assert submit(witness, Tree(7).request(A_KEY, 0)).status == 200
    assert submit(witness, Tree(20).request(A_KEY, 7)).status == 200
    stale = submit(witness, Tree(12).request(A_KEY, 7))
    assert (stale.status, stale.content_type, stale.body) == (409, SIZE_MEDIA_TYPE, b"20\n")
    assert conflicts(witness) == [] and refusal_entries(witness) == []
    rollback = submit(witness, AddCheckpointRequest(20, (), Tree(12).signed(A_KEY)))
    assert rollback.status == 400
    (conflict,) = conflicts(witness)
    assert conflict.kind is ConflictKind.rollback and held(witness) == (20, Tree(20).root)


def test_a_replayed_request_changes_nothing(witness: Node) -> None:
    step = Tree(20).request(A_KEY, 7)
    assert submit(witness, Tree(7).request(A_KEY, 0)).status == 200
    assert submit(witness, step).status == 200
    assert submit(witness, Tree(30).request(A_KEY, 20)).status == 200
    replay = submit(witness, step)
    assert (replay.status, replay.body) == (409, b"30\n")
    assert held(witness) == (30, Tree(30).root) and conflicts(witness) == []


def test_a_checkpoint_signed_with_another_key_is_refused_403(witness: Node) -> None:
    impostor = NodeKey.generate()
    answer = submit(witness, Tree(7).request(impostor, 0))
    assert answer.status == 403
    assert json.loads(answer.body)["error"] == "LogSignatureInvalid"
    assert "no signature by a known key" in json.loads(answer.body)["description"]
    assert held(witness) is None and conflicts(witness) == []


def test_a_checkpoint_of_another_log_is_refused(witness: Node) -> None:
    unknown = submit(witness, Tree(7, origin="c.example").request(A_KEY, 0))
    assert unknown.status == 404
    assert "c.example" in json.loads(unknown.body)["description"]
    pin_key(witness, "c.example", NodeKey.generate())
    not_theirs = submit(witness, Tree(7, origin="c.example").request(A_KEY, 0))
    assert not_theirs.status == 403
    assert json.loads(not_theirs.body)["error"] == "NotTheLog"
    assert count(witness.engine, WitnessedLog) == 0


def test_a_suspended_peer_is_not_witnessed(witness: Node) -> None:
    set_status(witness, "a.example", PeerStatus.suspended)
    assert submit(witness, Tree(7).request(A_KEY, 0)).status == 404


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"old 0\n\nnot a note",
        b"old x\n\na.example\n1\nAAAA\n\n\xe2\x80\x94 a.example AAAAAAA=\n",
    ],
)
def test_a_malformed_request_is_refused_400(witness: Node, body: bytes) -> None:
    answer = submit(witness, body)
    assert answer.status == 400 and json.loads(answer.body)["error"] == "MalformedMessage"
