"""Benchmark the audit log in the database: append, integration, signing, proofs.

Usage: ``.venv/bin/python bench/audit_append.py [--entries N] [--proof-size M]``

On a fresh SQLite node in a temporary directory it measures

- batched append: N entries through ``services.audit.record`` in transactions of
  1,000 (target: at least 10,000 entries/s);
- integration: hashing those entries into the stored tree, with a checkpoint per
  batch (``store.integrate``);
- signing a checkpoint and storing it, in its own transaction (target: 5 ms);
- inclusion and consistency proofs read from the store at M entries (1,000,000 by
  default; target: 2 ms), after building that log by inserting rows in bulk;

and prints a table.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine

from infracms.audit import merkle, store
from infracms.audit.checkpoint import Checkpoint, sign_checkpoint
from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.models.base import utcnow
from infracms.services import audit
from infracms.services.context import Actor
from infracms.services.setup import initialise

ACTOR = Actor(kind="user", id="5f0c7a34-1d2e-4e5f-9a7b-0c1d2e3f4a5b", name="alice")
ORG = UUID("8a1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d")
BASE = datetime(2024, 5, 1, tzinfo=UTC)
TEMPLATE = (
    '{{"action":"host.update","actor":{{"id":"5f0c7a34-1d2e-4e5f-9a7b-0c1d2e3f4a5b",'
    '"kind":"user","name":"alice"}},"index":{index},"organisation":"{org}","payload":'
    '{{"after":{{"ssh_port":{port}}},"before":{{"ssh_port":22}}}},"request_id":null,'
    '"subject":"host:clinic/web{host}","time":"{time}","v":1}}'
)


def node(directory: Path) -> tuple[Settings, Engine]:
    settings = Settings(
        data_dir=directory,
        admin_password="bench bench bench",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
    )  # type: ignore[call-arg]
    engine = make_engine(settings)
    initialise(settings, engine)
    return settings, engine


def bench_append(engine: Engine, entries: int, per_transaction: int = 1_000) -> float:
    """Entries per second through ``record``, committed `per_transaction` at a time."""
    start = time.perf_counter()
    done = 0
    while done < entries:
        with session_scope(engine, write=True) as session:
            for _ in range(per_transaction):
                audit.record(
                    session,
                    actor=ACTOR,
                    action="host.update",
                    subject=f"host:clinic/web{done % 500}",
                    organisation_id=ORG,
                    payload={"before": {"ssh_port": 22}, "after": {"ssh_port": 2200 + done % 7}},
                )
                done += 1
            session.commit()
    return entries / (time.perf_counter() - start)


def bench_integrate(engine: Engine, settings: Settings) -> tuple[float, int]:
    """Entries per second hashed into the stored tree, and checkpoints signed doing it."""
    start = time.perf_counter()
    done = store.integrate(engine, audit.node_signer(settings))
    return done.entries / (time.perf_counter() - start), done.checkpoints


def timings(action: Callable[[], Any], repeat: int) -> list[float]:
    """Milliseconds each call of `action` took."""
    result = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        result.append((time.perf_counter() - start) * 1000)
    return result


def bench_signing(engine: Engine, settings: Settings, repeat: int = 200) -> list[float]:
    """Sign a checkpoint of a size not yet signed and store it, one transaction each."""
    signer = audit.node_signer(settings)
    with session_scope(engine) as session:
        signed = {c.size for c in store.list_checkpoints(session, limit=10**6, offset=0)}
        sizes = iter([s for s in range(1, store.tree_state(session).size) if s not in signed])
        roots = {s: store.root_at(session, s) for s in range(1, repeat + 50) if s not in signed}

    def sign_and_store() -> None:
        size = next(sizes)
        note = sign_checkpoint(Checkpoint(signer.name, size, roots[size]), signer)
        with session_scope(engine, write=True) as session:
            session.execute(
                store.CHECKPOINTS.insert().values(
                    size=size, root=roots[size], note=note, signed_at=utcnow()
                )
            )
            session.commit()

    return timings(sign_and_store, repeat)


def bulk_rows(size: int) -> Iterator[tuple[Any, ...]]:
    """Entry rows and their leaf data, made by template (as ``entry_bytes`` would)."""
    for index in range(size):
        moment = BASE + timedelta(microseconds=index * 1_001)
        host, port = index % 500, 2200 + index % 7
        payload = f'{{"after":{{"ssh_port":{port}}},"before":{{"ssh_port":22}}}}'
        time_text = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        leaf = TEMPLATE.format(index=index, org=ORG, port=port, host=host, time=time_text)
        row = (
            index,
            moment.strftime("%Y-%m-%d %H:%M:%S.%f"),
            ACTOR.kind,
            ACTOR.id,
            ACTOR.name,
            ORG.hex,
            "host.update",
            f"host:clinic/web{host}",
            payload,
            None,
        )
        yield row, leaf.encode()


def build_big_log(engine: Engine, settings: Settings, size: int) -> float:
    """Insert `size` entries, their stored hashes and one checkpoint in bulk; seconds taken."""
    start = time.perf_counter()
    rows, leaves = [], []
    for row, data in bulk_rows(size):
        rows.append(row)
        leaves.append(merkle.hash_leaf(data))
    stored = merkle.integrate(0, merkle.dict_reader({}), leaves)
    raw = engine.raw_connection()
    cursor = raw.cursor()
    cursor.execute("BEGIN IMMEDIATE")
    cursor.execute("DELETE FROM audit_entry")
    cursor.execute("DELETE FROM audit_hash")
    cursor.execute("DELETE FROM audit_checkpoint")
    cursor.executemany(
        'INSERT INTO audit_entry ("index", time, actor_kind, actor_id, actor_name, '
        "organisation_id, action, subject, payload, request_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    cursor.executemany(
        "INSERT INTO audit_hash (id, hash) VALUES (?, ?)",
        ((store.node_key(node), value) for node, value in stored.stored),
    )
    cursor.execute("UPDATE audit_tree SET size = ?, root = ? WHERE id = 1", (size, stored.root))
    cursor.execute("UPDATE audit_head SET size = ? WHERE id = 1", (size,))
    signer = audit.node_signer(settings)
    note = sign_checkpoint(Checkpoint(signer.name, size, stored.root), signer)
    cursor.execute(
        "INSERT INTO audit_checkpoint (size, root, note, signed_at) VALUES (?, ?, ?, ?)",
        (size, stored.root, note, utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")),
    )
    raw.commit()
    raw.close()
    with session_scope(engine) as session:  # the template must be what the store computes
        for index in (0, size // 2, size - 1):
            record = store.pending_rows(session, index, 1)[0]
            assert merkle.hash_leaf(store.leaf_data(record)) == leaves[index], index
    return time.perf_counter() - start


def bench_proofs(engine: Engine, size: int, repeat: int = 1_000) -> dict[str, list[float]]:
    """Milliseconds per proof read from the store, each in its own session."""
    rng = random.Random(7)
    root = None
    with session_scope(engine) as session:
        root = store.tree_state(session).root

    def inclusion() -> None:
        index = rng.randrange(size)
        with session_scope(engine) as session:
            proof = store.inclusion_proof(session, index, size)
        assert proof

    def consistency() -> None:
        old = rng.randrange(1, size)
        with session_scope(engine) as session:
            store.consistency_proof(session, old, size)

    def checked_inclusion() -> None:
        index = rng.randrange(size)
        with session_scope(engine) as session:
            proof = store.inclusion_proof(session, index, size)
            leaf = store.stored_leaf_hash(session, index)
        assert leaf is not None and root is not None
        merkle.verify_inclusion(leaf, index, size, proof, root)

    timings(inclusion, 50)  # warm the page cache
    return {
        "inclusion": timings(inclusion, repeat),
        "consistency": timings(consistency, repeat),
        "inclusion, read leaf and verify": timings(checked_inclusion, repeat),
    }


def p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--proof-size", type=int, default=1_000_000)
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="infracms-bench-") as tmp:
        settings, engine = node(Path(tmp) / "append")
        rate = bench_append(engine, args.entries)
        rows.append(
            (
                f"append via record, 1,000/txn, {args.entries:,}",
                f"{rate:,.0f}/s",
                ">= 10,000/s",
                "ok" if rate >= 10_000 else "MISSED",
            )
        )
        rate, signed = bench_integrate(engine, settings)
        rows.append((f"integrate (hash, store, {signed} checkpoints)", f"{rate:,.0f}/s", "", ""))
        signing = bench_signing(engine, settings)
        median = statistics.median(signing)
        rows.append(
            (
                "sign + store a checkpoint (median)",
                f"{median:.2f} ms",
                "<= 5 ms",
                "ok" if median <= 5 else "MISSED",
            )
        )
        rows.append(("sign + store a checkpoint (p99)", f"{p(signing, 0.99):.2f} ms", "", ""))
        engine.dispose()
        settings, engine = node(Path(tmp) / "big")
        seconds = build_big_log(engine, settings, args.proof_size)
        rows.append((f"bulk-build a {args.proof_size:,}-entry store", f"{seconds:.1f} s", "", ""))
        for name, values in bench_proofs(engine, args.proof_size).items():
            median = statistics.median(values)
            rows.append(
                (
                    f"{name} at {args.proof_size:,} (median)",
                    f"{median:.3f} ms",
                    "<= 2 ms",
                    "ok" if median <= 2 else "MISSED",
                )
            )
            rows.append(
                (f"{name} at {args.proof_size:,} (p99)", f"{p(values, 0.99):.3f} ms", "", "")
            )
        engine.dispose()
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'measured':>12}  {'target':>11}  ")
    for what, measured, target, verdict in rows:
        print(f"{what:<{width}}  {measured:>12}  {target:>11}  {verdict}")


if __name__ == "__main__":
    main()
