"""A node gathering cosignatures of its checkpoints from its peers, and serving them."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from sqlalchemy import delete, update
from sqlmodel import Session, select

from federation.witness import Cosignature, CosignatureVerifier
from federation.witness_api import split_note
from infracms.audit import store
from infracms.audit.checkpoint import parse_checkpoint
from infracms.audit.verifier import WitnessPolicy, verify_export
from infracms.db import session_scope
from infracms.models.witness import AuditCosignature, WitnessedLog
from infracms.services import audit
from infracms.services.witness import beat_job, gather_cosignatures
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import ADMIN, audit_size, sign_in
from tests.witness.nodes import Node, pin


def gather(node: Node) -> list[tuple[str, str]]:
    return [(o.peer, o.status) for o in gather_cosignatures(engine=node.engine, ctx=node.ctx)]


def witness_of(node: Node) -> CosignatureVerifier:
    return CosignatureVerifier(f"{node.name}/witness", node.key.public_key)


def latest_note(node: Node) -> str:
    answer = node.client.get("/api/v1/audit/checkpoint")
    assert answer.status_code == 200
    return answer.text


def cosigners(note: str, *witnesses: CosignatureVerifier) -> list[str]:
    """The witnesses whose cosignature on the note verifies."""
    text, lines = split_note(note)
    found = []
    for line in lines:
        for witness in witnesses:
            if line.startswith(f"\u2014 {witness.name} "):
                witness.verify(text, Cosignature.parse_line(line))
                found.append(witness.name)
    return found


def held_by(witness: Node, origin: str) -> int | None:
    with Session(witness.engine) as session:
        row = session.get(WitnessedLog, origin)
        return None if row is None else row.size


def export(node: Node) -> bytes:
    with session_scope(node.engine) as session:
        lines = audit.export_lines(session=session, actor=ADMIN, settings=node.settings)
        return b"".join(lines)


def test_a_checkpoint_carries_its_peers_cosignature(peered: tuple[Node, Node]) -> None:
    node_a, node_b = peered
    entries = audit_size(node_a.engine)
    assert gather(node_a) == [("b.example", "cosigned")]
    note = latest_note(node_a)
    assert cosigners(note, witness_of(node_b)) == ["b.example/witness"]
    size = parse_checkpoint(split_note(note)[0]).size
    assert held_by(node_b, "a.example") == size
    assert audit_size(node_a.engine) == entries == size, "storing cosignatures appends nothing"
    assert gather(node_a) == [("b.example", "current")]


def test_a_grown_log_is_cosigned_from_the_size_the_peer_holds(peered: tuple[Node, Node]) -> None:
    node_a, node_b = peered
    gather(node_a)
    first = held_by(node_b, "a.example")
    node_a.append(40)
    assert gather(node_a) == [("b.example", "cosigned")]
    assert held_by(node_b, "a.example") == (first or 0) + 40
    assert cosigners(latest_note(node_a), witness_of(node_b)) == ["b.example/witness"]


def test_the_export_carries_cosignatures_and_meets_a_policy(peered: tuple[Node, Node]) -> None:
    node_a, node_b = peered
    node_a.append(10)
    gather(node_a)
    key = audit.verifier_key(node_a.settings)
    policy = WitnessPolicy.parse([witness_of(node_b).vkey])
    report = verify_export(io.BytesIO(export(node_a)), key, policy=policy)
    assert report.witnessed[-1].cosigners == ("b.example/witness",)
    assert report.witnessed[-1].size == report.size


def test_two_witnesses_cosign_and_each_keeps_its_own_state(
    peered: tuple[Node, Node], node_c: Node
) -> None:
    node_a, node_b = peered
    pin(node_a, node_c)
    pin(node_c, node_a)
    assert sorted(gather(node_a)) == [("b.example", "cosigned"), ("c.example", "cosigned")]
    note = latest_note(node_a)
    assert sorted(cosigners(note, witness_of(node_b), witness_of(node_c))) == [
        "b.example/witness",
        "c.example/witness",
    ]
    with Session(node_a.engine) as session:
        rows = session.exec(select(AuditCosignature)).all()
    assert sorted(row.peer for row in rows) == ["b.example", "c.example"]


def test_a_lost_record_is_recovered_from_the_witness_409(peered: tuple[Node, Node]) -> None:
    node_a, node_b = peered
    gather(node_a)
    with session_scope(node_a.engine, write=True) as session:
        session.execute(delete(AuditCosignature))
        session.commit()
    node_a.append(5)
    assert gather(node_a) == [("b.example", "cosigned")]
    assert cosigners(latest_note(node_a), witness_of(node_b)) == ["b.example/witness"]


def test_a_witness_holding_more_than_the_log_is_reported(peered: tuple[Node, Node]) -> None:
    """As if a.example were restored from a backup older than what b.example cosigned."""
    node_a, node_b = peered
    gather(node_a)
    with session_scope(node_b.engine, write=True) as session:
        session.execute(update(WitnessedLog).values(size=10**6))
        session.commit()
    with session_scope(node_a.engine, write=True) as session:
        session.execute(delete(AuditCosignature))
        session.commit()
    node_a.append(1)
    (outcome,) = gather_cosignatures(engine=node_a.engine, ctx=node_a.ctx)
    assert outcome.status == "refused" and not outcome.ok
    assert "has cosigned size 1000000 of this log" in outcome.detail
    assert "lost entries" in outcome.detail


def test_a_peer_that_is_down_leaves_the_checkpoint_as_it_was(peered: tuple[Node, Node]) -> None:
    node_a, node_b = peered
    node_a.network.clients.pop("b.example")
    (outcome,) = gather_cosignatures(engine=node_a.engine, ctx=node_a.ctx)
    assert outcome.status == "failed" and "PeerUnreachable" in outcome.detail
    assert cosigners(latest_note(node_a), witness_of(node_b)) == []


def test_a_node_without_peers_asks_nobody(node_a: Node) -> None:
    assert gather(node_a) == []


def test_admins_gather_through_the_api(peered: tuple[Node, Node]) -> None:
    node_a, node_b = peered
    assert node_a.client.post("/api/v1/witness/gather").status_code == 401
    sign_in(node_a.client, node_a.engine, node_a.settings, "admin", ADMIN_PASSWORD)
    answer = node_a.client.post("/api/v1/witness/gather")
    assert answer.status_code == 200, answer.text
    (outcome,) = answer.json()
    assert (outcome["peer"], outcome["status"]) == ("b.example", "cosigned")
    assert cosigners(latest_note(node_a), witness_of(node_b)) == ["b.example/witness"]


def test_a_checkpoint_removed_while_its_peer_answered_keeps_nothing(
    peered: tuple[Node, Node],
) -> None:
    node_a, _ = peered

    def tamper(request: object) -> None:
        with session_scope(node_a.engine, write=True) as session:
            session.execute(delete(store.CHECKPOINTS))
            session.commit()

    node_a.network.after_answer = tamper
    (outcome,) = gather_cosignatures(engine=node_a.engine, ctx=node_a.ctx)
    assert outcome.status == "failed" and outcome.detail.startswith("not kept")
    with Session(node_a.engine) as session:
        assert session.exec(select(AuditCosignature)).all() == []


def test_the_beat_job_logs_a_peer_it_cannot_reach(
    peered: tuple[Node, Node], caplog: pytest.LogCaptureFixture
) -> None:
    """`infracms beat` reaches peers over the real network, where b.example is nowhere."""
    node_a, _ = peered
    beat_job(SimpleNamespace(engine=node_a.engine, settings=node_a.settings))
    assert "witness b.example: failed PeerUnreachable" in caplog.text
