"""Cosignatures of this node's checkpoints as shown: checked against the witness keys
pinned for each peer (before and after a key rotation), and the witness policy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import select

from federation.keys import NodeKey
from infracms.audit import store
from infracms.db import session_scope
from infracms.models.federation import Peer, PeerKey, PeerStatus
from infracms.models.witness import AuditCosignature
from infracms.services.witness import cosigner, gather_cosignatures
from infracms.services.witness.cosignatures import (
    CosignaturePublic,
    WitnessPolicyPublic,
    cosignatures_of,
    witness_policy,
)
from tests.support.apps import AppPool
from tests.witness.nodes import Network, Node, pin, set_status, started_node


@pytest.fixture
def nodes(app_pool: AppPool) -> Iterator[tuple[Node, Node, Node]]:
    """a.example, witnessed by b.example and c.example; both cosigned its checkpoint."""
    network = Network()
    with (
        started_node(app_pool, "a.example", network) as a,
        started_node(app_pool, "b.example", network) as b,
        started_node(app_pool, "c.example", network) as c,
    ):
        for witness in (b, c):
            pin(a, witness)
            pin(witness, a)
        a.append(3)
        assert all(o.ok for o in gather_cosignatures(engine=a.engine, ctx=a.ctx))
        yield a, b, c


def shown(node: Node) -> list[CosignaturePublic]:
    """The cosignatures of the node's latest checkpoint, as the pages get them."""
    with session_scope(node.engine) as session:
        latest = store.latest_checkpoint(session)
        assert latest is not None
        found = cosignatures_of(session=session, checkpoints=[(latest.size, latest.note)])
    return found[latest.size]


def test_each_cosignature_is_checked_against_the_peers_pinned_key(
    nodes: tuple[Node, Node, Node],
) -> None:
    a, b, _ = nodes
    cosigned = shown(a)
    assert [(c.peer, c.witness, c.verified, c.problem) for c in cosigned] == [
        ("b.example", "b.example/witness", True, None),
        ("c.example", "c.example/witness", True, None),
    ]
    assert cosigned[0].key_id == f"{cosigner(b.name, b.key).verifier().key_id:08x}"


def test_a_rotated_peer_still_vouches_for_what_it_cosigned(
    nodes: tuple[Node, Node, Node],
) -> None:
    a, _, _ = nodes
    with session_scope(a.engine, write=True) as session:
        peer = session.exec(select(Peer).where(Peer.name == "b.example")).one()
        new = NodeKey.generate()
        session.add(PeerKey(key_id=new.key_id, peer_id=peer.id, public_key=new.public_key_b64))
        session.commit()
    assert all(c.verified for c in shown(a))


def test_a_line_by_a_key_not_pinned_or_over_other_text_fails(
    nodes: tuple[Node, Node, Node],
) -> None:
    a, b, c = nodes
    stranger = cosigner(b.name, NodeKey.generate()).cosign("a.example\n3\n" + "A" * 43 + "=\n", 1)
    other_text = cosigner(c.name, c.key).cosign("a.example\n3\n" + "A" * 43 + "=\n", 1)
    with session_scope(a.engine, write=True) as session:
        for row in session.exec(select(AuditCosignature)).all():
            row.line = (stranger if row.peer == "b.example" else other_text).line
            session.add(row)
        session.commit()
    by_b, by_c = shown(a)
    assert not by_b.verified and by_b.problem == (
        f"no key pinned for b.example has the key id {stranger.key_id:08x}"
    )
    assert not by_c.verified and by_c.problem is not None and "c.example" in by_c.problem


def test_the_policy_counts_verified_cosignatures_by_different_peers(
    nodes: tuple[Node, Node, Node],
) -> None:
    a, b, c = nodes
    cosigned = shown(a)
    with session_scope(a.engine) as session:
        policy = witness_policy(session=session, settings=a.settings)
    assert policy.minimum is None and policy.met_by(cosigned) is None
    assert [(w.peer, w.vkey) for w in policy.witnesses] == [
        ("b.example", cosigner(b.name, b.key).verifier().vkey),
        ("c.example", cosigner(c.name, c.key).verifier().vkey),
    ]
    two = WitnessPolicyPublic(witnesses=policy.witnesses, minimum=2)
    assert two.met_by(cosigned)
    assert not two.met_by([cosigned[0], cosigned[0]])  # one peer counts once
    bad = cosigned[1].model_copy(update={"verified": False})
    assert not two.met_by([cosigned[0], bad])
    set_status(a, "c.example", PeerStatus.suspended)
    settings = a.settings.model_copy(update={"min_witnesses": 1})
    with session_scope(a.engine) as session:
        policy = witness_policy(session=session, settings=settings)
    assert (policy.minimum, [w.peer for w in policy.witnesses]) == (1, ["b.example"])
