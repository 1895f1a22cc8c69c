"""`infracms audit verify --witness`, `audit witness`, `audit refusals`, `audit key --witness`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from federation.keys import NodeKey
from federation.witness import Cosigner
from infracms.db import session_scope
from infracms.services import audit
from infracms.services.witness import gather_cosignatures
from tests.helpers import ADMIN
from tests.support.cli import run_infracms
from tests.witness.logs import Tree
from tests.witness.nodes import Node


def cli(node: Node, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run `infracms` as the node's administrator would, configured by the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRACMS_")}
    env.update(
        INFRACMS_DATA_DIR=str(node.settings.data_dir.absolute()),
        INFRACMS_NODE_NAME=node.name,
        INFRACMS_BASE_URL=node.settings.base_url,
        **extra,
    )
    return run_infracms(args, env=env)


def export_to(node: Node, path: Path) -> Path:
    with session_scope(node.engine) as session:
        path.write_bytes(
            b"".join(audit.export_lines(session=session, actor=ADMIN, settings=node.settings))
        )
    return path


def test_key_witness_prints_the_cosignature_key(node_b: Node) -> None:
    result = cli(node_b, "audit", "key", "--witness")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == Cosigner("b.example/witness", node_b.key).verifier().vkey


def test_verify_with_a_policy_reports_and_enforces_it(
    peered: tuple[Node, Node], tmp_path: Path
) -> None:
    node_a, node_b = peered
    node_a.append(3)
    gather_cosignatures(engine=node_a.engine, ctx=node_a.ctx)
    export = export_to(node_a, tmp_path / "a.jsonl")
    key = audit.verifier_key(node_a.settings)
    b_witness = cli(node_b, "audit", "key", "--witness").stdout.strip()
    other = Cosigner("c.example/witness", NodeKey.generate()).verifier().vkey

    met = cli(node_a, "audit", "verify", str(export), "--key", key, "--witness", b_witness)
    assert met.returncode == 0, met.stderr
    assert "cosignatures by the witnesses trusted (b.example/witness):" in met.stdout
    assert "(b.example/witness)" in met.stdout
    assert "witness policy met: the latest checkpoint has 1 of 1" in met.stdout

    args = [
        "audit",
        "verify",
        str(export),
        "--key",
        key,
        "--witness",
        b_witness,
        "--witness",
        other,
    ]
    unmet = cli(node_a, *args)
    assert unmet.returncode == 7
    assert "verified" in unmet.stdout and "checkpoint" in unmet.stdout
    assert "expected at least 2 (missing: c.example/witness)" in unmet.stderr
    assert cli(node_a, *args, "--min-witnesses", "1").returncode == 0

    impossible = cli(
        node_a,
        "audit",
        "verify",
        str(export),
        "--key",
        key,
        "--witness",
        b_witness,
        "--min-witnesses",
        "2",
    )
    assert impossible.returncode == 7 and "can never be met" in impossible.stderr
    no_keys = cli(node_a, "audit", "verify", str(export), "--key", key, "--min-witnesses", "1")
    assert no_keys.returncode == 2 and "--witness" in no_keys.stderr


def test_witness_with_no_peers_says_so(node_a: Node) -> None:
    result = cli(node_a, "audit", "witness")
    assert result.returncode == 0, result.stderr
    assert "no active peer to ask" in result.stdout


def test_witness_fails_below_the_configured_minimum(node_a: Node) -> None:
    result = cli(node_a, "audit", "witness", INFRACMS_MIN_WITNESSES="1")
    assert result.returncode == 1
    assert "has 0 cosignature(s); INFRACMS_MIN_WITNESSES asks for 1" in result.stderr


def test_witness_reports_a_peer_it_cannot_reach(peered: tuple[Node, Node]) -> None:
    """The CLI talks to b.example over the real network, where there is no such node."""
    node_a, _ = peered
    result = cli(node_a, "audit", "witness")
    assert result.returncode == 1
    assert "b.example: failed" in result.stderr


def test_refusals_lists_the_evidence(peered: tuple[Node, Node]) -> None:
    node_a, node_b = peered
    with node_a.ctx.client(
        "b.example", "https://b.example", [node_b.key.trusted("b.example")]
    ) as client:
        witness = Cosigner("b.example/witness", node_b.key).verifier()
        client.submit_checkpoint(Tree(5).request(node_a.key, 0), witness=witness)
        try:
            client.submit_checkpoint(Tree(5, tag="fork").request(node_a.key, 5), witness=witness)
        except Exception as exc:  # the witness refuses: that is the point
            assert "409" in str(exc)
    result = cli(node_b, "audit", "refusals")
    assert result.returncode == 0, result.stderr
    assert "a.example fork: held size 5, got size 5 (old 5)" in result.stdout
    as_json = cli(node_b, "audit", "refusals", "--json", "--origin", "a.example")
    assert '"kind": "fork"' in as_json.stdout
