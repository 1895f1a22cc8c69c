"""Witnessing on PostgreSQL: row locks instead of SQLite's single writer, and racing requests."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlmodel import Session, select

from federation.keys import NodeKey
from federation.witness import Cosignature, Cosigner
from federation.witness_api import split_note
from infracms.db import session_scope
from infracms.models.witness import AuditCosignature, WitnessConflict, WitnessedLog
from infracms.services import audit
from infracms.services.witness import Submitter, add_checkpoint, cosigner
from infracms.services.witness.gather import store_cosignatures
from tests.support.postgres import fresh_database
from tests.witness.logs import Tree
from tests.witness.nodes import Network, Node, pin, started_node

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_nodes(
    tmp_path: Path, network: Network, postgres_server: str
) -> Iterator[tuple[Node, Node, Node]]:
    """a.example, b.example and c.example, each on a PostgreSQL database of its own, peered."""
    with (
        fresh_database(postgres_server) as url_a,
        fresh_database(postgres_server) as url_b,
        fresh_database(postgres_server) as url_c,
        started_node(tmp_path, "a.example", network, url_a) as a,
        started_node(tmp_path, "b.example", network, url_b) as b,
        started_node(tmp_path, "c.example", network, url_c) as c,
    ):
        for witness in (b, c):
            pin(a, witness)
            pin(witness, a)
        yield a, b, c


def test_cosignatures_stored_at_once_are_all_kept(pg_nodes: tuple[Node, Node, Node]) -> None:
    """Peers answering together: each store locks the checkpoint row, none loses a line."""
    a, b, c = pg_nodes
    a.append(20)
    latest = audit.sign_checkpoint(engine=a.engine, settings=a.settings)
    text = split_note(latest.note)[0]
    witnesses = [cosigner(n.name, n.key) for n in (b, c)] + [
        Cosigner(f"w{i}.example/witness", NodeKey.generate()) for i in range(6)
    ]

    def store(witness: Cosigner) -> None:
        cosignature = witness.cosign(text, 1772366400)
        store_cosignatures(
            a.engine, witness.name.removesuffix("/witness"), latest.size, [cosignature]
        )

    with ThreadPoolExecutor(len(witnesses)) as pool:
        list(pool.map(store, witnesses))
    note = a.client.get("/api/v1/audit/checkpoint").text
    noted, lines = split_note(note)
    assert noted == text
    for witness in witnesses:
        (line,) = [line for line in lines if line.startswith(f"\u2014 {witness.name} ")]
        witness.verifier().verify(text, Cosignature.parse_line(line))
    with Session(a.engine) as session:
        assert len(session.exec(select(AuditCosignature)).all()) == len(witnesses)


def test_racing_first_submissions_leave_one_state_and_no_error(
    pg_nodes: tuple[Node, Node, Node],
) -> None:
    a, b, _ = pg_nodes
    body = Tree(5).request(a.key, 0).to_bytes()

    def submit(_: int) -> tuple[int, bytes]:
        with session_scope(b.engine, write=True) as session:
            answer = add_checkpoint(
                session=session,
                ctx=b.ctx,
                submitter=Submitter("a.example", a.key.key_id),
                body=body,
            )
        return answer.status, answer.body

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(submit, range(8)))
    assert any(status == 200 for status, _ in answers), answers
    assert all(status == 200 or (status, text) == (409, b"5\n") for status, text in answers), (
        answers
    )
    with Session(b.engine) as session:
        rows = session.exec(select(WitnessedLog)).all()
        assert [(row.origin, row.size) for row in rows] == [("a.example", 5)]
        assert session.exec(select(WitnessConflict)).all() == []


def test_a_fork_is_recorded_on_postgresql(pg_nodes: tuple[Node, Node, Node]) -> None:
    a, b, _ = pg_nodes
    who = Submitter("a.example", a.key.key_id)
    with session_scope(b.engine, write=True) as session:
        first = add_checkpoint(
            session=session, ctx=b.ctx, submitter=who, body=Tree(5).request(a.key, 0).to_bytes()
        )
    fork = Tree(5, tag="fork").request(a.key, 5).to_bytes()
    with session_scope(b.engine, write=True) as session:
        refused = add_checkpoint(session=session, ctx=b.ctx, submitter=who, body=fork)
    assert (first.status, refused.status, refused.body) == (200, 409, b"5\n")
    with Session(b.engine) as session:
        (conflict,) = session.exec(select(WitnessConflict)).all()
    assert conflict.kind == "fork"
