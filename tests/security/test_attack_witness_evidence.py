"""A peer signs fork after fork of its own log and submits each to this node as its
witness. Each refusal used to be kept as evidence (the signed note, up to 16 KiB) and
audited with both notes in the payload, so 120 requests a minute grew this node's
append-only log by megabytes a minute, forever. The first forks are kept (they prove
it); after ``MAX_CONFLICTS_PER_LOG`` the refusal is answered the same and not stored."""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select

from federation.limits import MAX_CONFLICTS_PER_LOG
from infracms.models import AuditEntry
from infracms.models.witness import WitnessConflict
from tests.witness.conftest import network, node_b  # noqa: F401
from tests.witness.logs import Tree
from tests.witness.nodes import Node
from tests.witness.test_cosign import A_KEY, submit, witness  # noqa: F401

pytestmark = pytest.mark.security


def _kept(node: Node) -> tuple[int, int]:
    with Session(node.engine) as session:
        conflicts = session.exec(select(func.count()).select_from(WitnessConflict)).one()
        entries = session.exec(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "witness.refuse")
        ).one()
    return int(conflicts), int(entries)


def test_a_peer_forking_again_and_again_fills_no_disk(witness: Node) -> None:  # noqa: F811
    assert submit(witness, Tree(7).request(A_KEY, 0)).status == 200
    for n in range(MAX_CONFLICTS_PER_LOG + 15):
        answer = submit(witness, Tree(7, tag=f"fork{n}").request(A_KEY, 7))
        assert answer.status == 409  # answered the same, stored or not
    assert _kept(witness) == (MAX_CONFLICTS_PER_LOG, MAX_CONFLICTS_PER_LOG)
