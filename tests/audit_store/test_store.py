"""The tree store: integration, checkpoints and proofs from the database, against
the in-memory Merkle code and the verifier's own independent hashing."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from uuid import uuid4

import pytest
from sqlalchemy import Engine, delete, func, select, text

from infracms.audit import merkle, store
from infracms.audit._verifier_core import root_at as independent_root_at
from infracms.audit._verifier_core import tree_levels
from infracms.audit.checkpoint import open_checkpoint
from infracms.audit.merkle import Hash, NodeId
from infracms.audit.note import Signer
from infracms.db import session_scope
from infracms.models.audit import AuditCheckpoint, AuditHash
from tests.audit_store.conftest import Append, append_entries


def leaves_of(engine: Engine) -> list[merkle.LeafHash]:
    """The leaf hash of every entry row, computed afresh from the columns."""
    with session_scope(engine) as session:
        rows = store.pending_rows(session, 0, 10**9)
    return [merkle.hash_leaf(store.leaf_data(row)) for row in rows]


def stored_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.execute(select(func.count()).select_from(AuditHash)).scalar_one())


def test_integration_stores_each_complete_subtree_once_and_signs_the_root(
    engine: Engine, signer: Signer, append: Append
) -> None:
    append(40)
    done = store.integrate(engine, signer)
    leaves = leaves_of(engine)
    size = len(leaves)
    assert (done.entries, done.size, done.checkpoints) == (size, size, 1)
    assert done.root == merkle.root_of(leaves)
    assert done.root == independent_root_at(tree_levels(b"".join(leaves)), size)
    assert stored_count(engine) == 2 * size - size.bit_count()
    with session_scope(engine) as session:
        latest = store.latest_checkpoint(session)
    assert latest is not None
    opened = open_checkpoint(latest.note, signer.verifier())
    assert (opened.origin, opened.size, opened.root) == (signer.name, size, done.root)


def test_integrating_again_with_nothing_new_does_nothing(engine: Engine, signer: Signer) -> None:
    first = store.integrate(engine, signer)
    again = store.integrate(engine, signer)
    assert (again.entries, again.checkpoints, again.size) == (0, 0, first.size)


def test_small_batches_give_the_same_tree_and_a_checkpoint_each(
    engine: Engine, signer: Signer, append: Append
) -> None:
    append(37)
    done = store.integrate(engine, signer, batch=5)
    size = len(leaves_of(engine))
    assert done.checkpoints == -(-size // 5)
    assert done.root == merkle.root_of(leaves_of(engine))
    with session_scope(engine) as session:
        stored = store.list_checkpoints(session, limit=100, offset=0)
        for checkpoint in stored:
            assert store.root_at(session, checkpoint.size) == checkpoint.root
            assert open_checkpoint(checkpoint.note, signer.verifier()).size == checkpoint.size
    assert [c.size for c in stored] == sorted((c.size for c in stored), reverse=True)
    assert stored[0].size == size


def test_proofs_from_the_store_equal_the_in_memory_ones_and_verify(
    engine: Engine, signer: Signer, append: Append
) -> None:
    append(20)
    store.integrate(engine, signer, batch=7)
    leaves = leaves_of(engine)
    memory = dict(merkle.integrate(0, merkle.dict_reader({}), leaves).stored)
    read = merkle.dict_reader(memory)
    with session_scope(engine) as session:
        for size in range(1, len(leaves) + 1):
            root = store.root_at(session, size)
            assert root == merkle.tree_root(size, read)
            for index in range(size):
                proof = store.inclusion_proof(session, index, size)
                assert proof == merkle.inclusion_proof(index, size, read)
                merkle.verify_inclusion(leaves[index], index, size, proof, root)
            for old in range(size + 1):
                proof = store.consistency_proof(session, old, size)
                assert proof == merkle.consistency_proof(old, size, read)
                merkle.verify_consistency(old, size, store.root_at(session, old), root, proof)


def test_proofs_beyond_the_integrated_size_are_refused(engine: Engine, signer: Signer) -> None:
    done = store.integrate(engine, signer)
    with session_scope(engine) as session, pytest.raises(ValueError, match="integrated size"):
        store.inclusion_proof(session, 0, done.size + 1)


def test_concurrent_integrators_and_writers_build_one_tree(engine: Engine, signer: Signer) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def integrator() -> None:
        try:
            while not stop.is_set():
                store.integrate(engine, signer, batch=17)
        except BaseException as exc:
            errors.append(exc)

    def writer(number: int) -> None:
        try:
            append_entries(engine, 60, per_transaction=7, tag=f"w{number}-")
        except BaseException as exc:
            errors.append(exc)

    integrators = [threading.Thread(target=integrator) for _ in range(3)]
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for thread in integrators + writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    stop.set()
    for thread in integrators:
        thread.join(timeout=120)
    assert errors == []
    done = store.integrate(engine, signer)
    leaves = leaves_of(engine)
    assert done.size == len(leaves) >= 180
    assert done.root == merkle.root_of(leaves)
    assert stored_count(engine) == 2 * done.size - done.size.bit_count()
    with session_scope(engine) as session:
        for checkpoint in store.list_checkpoints(session, limit=1000, offset=0):
            assert merkle.root_of(leaves[: checkpoint.size]) == checkpoint.root


def test_a_pending_entry_deleted_before_integration_stops_it_naming_the_index(
    engine: Engine, signer: Signer, append: Append
) -> None:
    done = store.integrate(engine, signer)
    append(3)
    with session_scope(engine, write=True) as session:
        session.execute(text('DELETE FROM audit_entry WHERE "index" = :i'), {"i": done.size})
        session.commit()
    with pytest.raises(store.StoreError, match=f"entry {done.size} is missing"):
        store.integrate(engine, signer)


def test_a_missing_stored_hash_is_named(engine: Engine, signer: Signer, append: Append) -> None:
    append(6)
    done = store.integrate(engine, signer)
    with session_scope(engine, write=True) as session:
        session.execute(delete(AuditHash).where(AuditHash.id == store.node_key(NodeId(1, 0))))
        session.commit()
    with session_scope(engine) as session, pytest.raises(store.StoreError, match=r"level=1"):
        store.inclusion_proof(session, 2, done.size)


def test_every_column_is_in_the_leaf(engine: Engine, signer: Signer) -> None:
    store.integrate(engine, signer)
    with session_scope(engine) as session:
        row = store.pending_rows(session, 0, 1)[0]
    base = store.leaf_data(row)
    changed = {
        "index": row.index + 1,
        "time": row.time + timedelta(microseconds=1),
        "actor_kind": "user",
        "actor_id": "someone",
        "actor_name": row.actor_name + "x",
        "organisation_id": uuid4(),
        "action": row.action + "x",
        "subject": row.subject + "x",
        "payload": '{"x":1}',
        "request_id": "r-1",
    }
    for column, value in changed.items():
        assert store.leaf_data(replace(row, **{column: value})) != base, column


def test_a_row_that_is_no_entry_is_named(engine: Engine) -> None:
    with session_scope(engine) as session:
        row = store.pending_rows(session, 0, 1)[0]
    for bad in ({"payload": "[1]"}, {"payload": "{"}, {"actor_kind": "robot"}):
        with pytest.raises(store.StoreError, match=f"entry {row.index} cannot"):
            store.leaf_data(replace(row, **bad))


def test_sign_current_covers_the_whole_tree_once(engine: Engine, signer: Signer) -> None:
    first = store.sign_current(engine, signer)
    again = store.sign_current(engine, signer)
    assert first == again
    with session_scope(engine) as session:
        count = session.execute(select(func.count()).select_from(AuditCheckpoint)).scalar_one()
        assert count == 1 and store.tree_state(session).size == first.size


def test_node_keys_keep_levels_apart() -> None:
    assert store.node_key(NodeId(0, 5)) == 5
    assert store.node_key(NodeId(1, 0)) == 1 << 56
    assert store.node_key(NodeId(0, (1 << 56) - 1)) < store.node_key(NodeId(1, 0))
    with pytest.raises(ValueError, match="key space"):
        store.node_key(NodeId(0, 1 << 56))
    assert Hash  # the hash type is what the store returns
