"""Two real nodes witnessing each other: separate processes on loopback, peered by their CLI.

a.test and b.test each run `infracms serve` with their own data directory, database,
key and port. They peer through an invitation (`peer invite` / `peer accept`); then
a.test's checkpoint gathers b.test's cosignature (`audit witness`), an auditor verifies
a.test's export against a policy naming b.test's witness key, and a forged checkpoint
signed with a.test's key, inconsistent with what b.test cosigned, is refused, with the
refusal recorded on b.test.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from federation.errors import WitnessRefused
from federation.witness import Cosignature, CosignatureVerifier
from federation.witness_api import AddCheckpointRequest, split_note
from infracms.audit.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from infracms.audit.merkle import Hash, RootHash
from infracms.audit.note import Signer
from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.keys import load_identity
from infracms.models import AuditEntry
from infracms.models.witness import WitnessedLog
from infracms.services.federation.node import FederationContext
from infracms.services.federation.peers import keys_of, peer_by_name
from tests.support.server import live_server

pytestmark = pytest.mark.integration
CLI_TIMEOUT = 60


@dataclass
class LiveNode:
    """A node served by its own process: its name, data directory and URL."""

    name: str
    data_dir: Path
    base_url: str = "http://127.0.0.1:1"

    @property
    def env(self) -> dict[str, str]:
        return {
            "INFRACMS_DATA_DIR": str(self.data_dir),
            "INFRACMS_NODE_NAME": self.name,
            "INFRACMS_ADMIN_PASSWORD": "correct horse battery staple",
            "INFRACMS_ARGON2_TIME_COST": "1",
            "INFRACMS_ARGON2_MEMORY_KIB": "1024",
        }

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, node_name=self.name, base_url=self.base_url)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFRACMS_")}
        env.update(self.env, INFRACMS_BASE_URL=self.base_url)
        done = subprocess.run(
            [sys.executable, "-m", "infracms", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"infracms {' '.join(args)} exited {done.returncode}, expected 0:\n"
                f"{done.stdout}\n{done.stderr}"
            )
        return done

    def get(self, path: str) -> httpx.Response:
        with httpx.Client(base_url=self.base_url, timeout=10, trust_env=False) as client:
            return client.get(path)


@contextlib.contextmanager
def serving(node: LiveNode) -> Iterator[LiveNode]:
    node.cli("init")
    with live_server(node.env) as url:
        node.base_url = url
        yield node


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveNode, LiveNode]]:
    """a.test and b.test, served and peered through an invitation."""
    root = tmp_path_factory.mktemp("witnessing")
    with (
        serving(LiveNode("a.test", root / "a")) as a,
        serving(LiveNode("b.test", root / "b")) as b,
    ):
        token = a.cli("peer", "invite").stdout.strip()
        b.cli("peer", "accept", token)
        yield a, b


def b_witness(b: LiveNode) -> CosignatureVerifier:
    return CosignatureVerifier.from_vkey(b.get("/api/v1/witness/key").text.strip())


def held_by_b(b: LiveNode) -> WitnessedLog | None:
    engine = make_engine(b.settings)
    try:
        with session_scope(engine) as session:
            return session.get(WitnessedLog, "a.test")
    finally:
        engine.dispose()


def submit_as_a(a: LiveNode, request: AddCheckpointRequest) -> None:
    """Send an add-checkpoint request signed with a.test's own key, over HTTP to b.test."""
    ctx = FederationContext.load(a.settings)
    engine = make_engine(a.settings)
    try:
        with session_scope(engine) as session:
            pinned = keys_of(session, peer=peer_by_name(session, name="b.test"))
            url = peer_by_name(session, name="b.test").base_url
    finally:
        engine.dispose()
    witness = CosignatureVerifier("b.test/witness", pinned[0].public_key)
    with ctx.client("b.test", url, pinned) as client:
        client.submit_checkpoint(request, witness=witness)


def test_a_checkpoint_carries_the_peers_cosignature(nodes: tuple[LiveNode, LiveNode]) -> None:
    a, b = nodes
    gathered = a.cli("audit", "witness")
    assert "b.test: cosigned" in gathered.stdout, gathered.stdout + gathered.stderr
    note = a.get("/api/v1/audit/checkpoint").text
    text, lines = split_note(note)
    witness = b_witness(b)
    (line,) = [line for line in lines if line.startswith("\u2014 b.test/witness ")]
    witness.verify(text, Cosignature.parse_line(line))
    held = held_by_b(b)
    assert held is not None and held.size == parse_checkpoint(text).size
    assert "b.test: current" in a.cli("audit", "witness").stdout


def test_the_export_meets_a_policy_naming_the_peer(
    nodes: tuple[LiveNode, LiveNode], tmp_path: Path
) -> None:
    a, b = nodes
    a.cli("org", "create", "clinic")  # the log grows: a new checkpoint, cosigned from the last
    # cosigned now, or already by the node's own periodic job (it may run first)
    witnessed = a.cli("audit", "witness").stdout
    assert "b.test: cosigned" in witnessed or "b.test: current" in witnessed, witnessed
    export = tmp_path / "a.jsonl"
    a.cli("audit", "export", str(export))
    key = a.cli("audit", "key").stdout.strip()
    wkey = b.cli("audit", "key", "--witness").stdout.strip()
    verified = a.cli("audit", "verify", str(export), "--key", key, "--witness", wkey)
    assert "witness policy met: the latest checkpoint has 1 of 1" in verified.stdout


def test_a_forged_inconsistent_checkpoint_is_refused_and_recorded(
    nodes: tuple[LiveNode, LiveNode],
) -> None:
    a, b = nodes
    a.cli("audit", "witness")
    before = held_by_b(b)
    assert before is not None
    log_key = Signer("a.test", load_identity(a.settings))  # the forger holds a.test's key
    forged_root = RootHash(Hash(secrets.token_bytes(32)))
    forged = sign_checkpoint(Checkpoint("a.test", before.size + 5, forged_root), log_key)
    proof = tuple(Hash(secrets.token_bytes(32)) for _ in range(3))
    with pytest.raises(WitnessRefused) as refused:
        submit_as_a(a, AddCheckpointRequest(before.size, proof, forged))
    assert refused.value.status_code == 422

    fork = sign_checkpoint(Checkpoint("a.test", before.size, forged_root), log_key)
    with pytest.raises(WitnessRefused) as conflict:
        submit_as_a(a, AddCheckpointRequest(before.size, (), fork))
    assert (conflict.value.status_code, conflict.value.latest_size) == (409, before.size)

    after = held_by_b(b)
    assert after is not None and (after.size, after.root) == (before.size, before.root)
    listed = json.loads(b.cli("audit", "refusals", "--json").stdout)
    assert [item["kind"] for item in listed] == ["fork", "inconsistent"]
    assert listed[1]["submitted_checkpoint"] == forged
    assert listed[1]["held_checkpoint"] == before.checkpoint
    engine = make_engine(b.settings)
    try:
        with session_scope(engine) as session:
            query = select(AuditEntry).where(AuditEntry.action == "witness.refuse")
            entries = session.exec(query).all()
    finally:
        engine.dispose()
    assert len(entries) == 2 and {e.actor_name for e in entries} == {"a.test"}
    assert "b.test: current" in a.cli("audit", "witness").stdout, "a.test's own log is unharmed"
