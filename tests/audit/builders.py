"""Build small audit logs and their exports for the tests, with the writer's own code."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from infracms.audit.checkpoint import Checkpoint, sign_checkpoint
from infracms.audit.entry import Actor, EntryFields, entry_bytes
from infracms.audit.exportfile import write_export
from infracms.audit.merkle import Hash, LeafHash, NodeId, dict_reader, hash_leaf, integrate
from infracms.audit.note import Signer

ORIGIN = "coop.example/audit"
BASE_TIME = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ORGANISATION = UUID("8a1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d")


def entry_fields(index: int, **changes: object) -> EntryFields:
    """A plausible entry for position ``index``."""
    values: dict[str, object] = {
        "index": index,
        "time": BASE_TIME + timedelta(seconds=index % 86_400, microseconds=index % 1_000_000),
        "actor": Actor(
            kind="user", id=f"user-{index % 7}", name=["alice", "bob", "chloé"][index % 3]
        ),
        "organisation": ORGANISATION if index % 2 else None,
        "action": ["definition.save", "run.apply", "host.create"][index % 3],
        "subject": f"definition:{index % 11}",
        "payload": {"revision": index % 50, "changed": ["listen", "server_name"], "ok": True},
        "request_id": f"req-{index:08d}" if index % 5 else None,
    }
    values.update(changes)
    return EntryFields(**values)  # type: ignore[arg-type]


@dataclass
class Log:
    """An append-only log held in memory: entries, stored hashes, signed checkpoints."""

    signer: Signer
    entries: list[bytes] = field(default_factory=list)
    store: dict[NodeId, Hash] = field(default_factory=dict)
    checkpoints: list[str] = field(default_factory=list)

    @property
    def leaf_hashes(self) -> list[LeafHash]:
        return [LeafHash(self.store[NodeId(0, i)]) for i in range(len(self.entries))]

    def append(self, count: int) -> None:
        new = [
            entry_bytes(entry_fields(i))
            for i in range(len(self.entries), len(self.entries) + count)
        ]
        result = integrate(len(self.entries), dict_reader(self.store), [hash_leaf(d) for d in new])
        self.store.update(result.stored)
        self.entries.extend(new)
        self.checkpoints.append(
            sign_checkpoint(Checkpoint(ORIGIN, result.size, result.root), self.signer)
        )

    def export(self) -> bytes:
        out = io.BytesIO()
        write_export(
            out,
            verifier_key=self.signer.verifier().key_string,
            checkpoints=self.checkpoints,
            leaf_hashes=self.leaf_hashes,
            entries=self.entries,
        )
        return out.getvalue()


def build_log(batches: Sequence[int], signer: Signer | None = None) -> Log:
    """A log that grew in ``batches``, with a checkpoint signed after each one."""
    log = Log(signer=signer or Signer.generate(ORIGIN))
    for count in batches:
        log.append(count)
    return log
