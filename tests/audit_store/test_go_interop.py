"""Go's golang.org/x/mod/sumdb/{note,tlog} on what this node serves: its stored and
served checkpoints, the proofs its API gives, and its tlog-tiles."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from infracms.audit import store
from infracms.audit.tiles import WIDTH, TileRef, tile_path
from infracms.config import Settings
from infracms.db import session_scope
from infracms.services import audit
from tests.audit import gocheck
from tests.audit_store import gotiles
from tests.audit_store.conftest import append_entries
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import sign_in

pytestmark = pytest.mark.interop
API = "/api/v1/audit"
Go = Callable[[dict[str, Any]], Any]


@pytest.fixture(scope="module")
def auditcheck(tmp_path_factory: pytest.TempPathFactory) -> Go:
    binary: Path = gocheck.build(tmp_path_factory.mktemp("auditcheck"))
    return lambda request: gocheck.run(binary, request)


@pytest.fixture(scope="module")
def tilecheck(tmp_path_factory: pytest.TempPathFactory) -> Go:
    binary = gotiles.build(tmp_path_factory.mktemp("tilecheck"))
    return lambda request: gotiles.run(binary, request)


@pytest.fixture
def admin(client: TestClient, engine: Engine, settings: Settings) -> TestClient:
    """A signed-in admin, and a log of about 600 entries in checkpoints of 100."""
    sign_in(client, engine, settings, "admin", ADMIN_PASSWORD)
    append_entries(engine, 600, per_transaction=200)
    store.integrate(engine, audit.node_signer(settings), batch=100)
    return client


def test_go_opens_every_stored_and_served_checkpoint(
    admin: TestClient, engine: Engine, auditcheck: Go
) -> None:
    key = admin.get(f"{API}/key").text.strip()
    with session_scope(engine) as session:
        stored = store.list_checkpoints(session, limit=100, offset=0)
    served = admin.get(f"{API}/checkpoint").text
    assert served == stored[0].note
    assert len(stored) >= 2
    for checkpoint in stored:
        opened = auditcheck({"op": "open", "verifier_key": key, "note": checkpoint.note})
        assert opened["error"] == "", opened
        assert (opened["size"], opened["root"]) == (
            checkpoint.size,
            base64.b64encode(checkpoint.root).decode(),
        )


def test_go_checks_the_proofs_the_api_serves(admin: TestClient, auditcheck: Go) -> None:
    checkpoints = admin.get(f"{API}/checkpoints", params={"limit": 100}).json()["items"]
    sizes = sorted(c["size"] for c in checkpoints)
    roots = {c["size"]: c["root"] for c in checkpoints}
    inclusion, consistency = [], []
    for size in sizes:
        for index in sorted({0, 1, size // 3, size // 2, size - 2, size - 1} & set(range(size))):
            proof = admin.get(f"{API}/proof/inclusion", params={"index": index, "size": size})
            body = proof.json()
            inclusion.append(
                {
                    "size": size,
                    "root": roots[size],
                    "index": index,
                    "leaf": body["leaf_hash"],
                    "proof": body["proof"],
                }
            )
        for old in sizes[: sizes.index(size) + 1]:
            body = admin.get(f"{API}/proof/consistency", params={"old": old, "new": size}).json()
            assert body["old_root"] == roots[old] and body["new_root"] == roots[size]
            consistency.append(
                {
                    "old_size": old,
                    "old_root": roots[old],
                    "size": size,
                    "root": roots[size],
                    "proof": body["proof"],
                }
            )
    checked = auditcheck({"op": "check", "inclusion": inclusion, "consistency": consistency})
    assert checked["inclusion"] == [""] * len(inclusion), checked
    assert checked["consistency"] == [""] * len(consistency), checked
    wrong = [{**inclusion[3], "leaf": inclusion[4]["leaf"]}]
    refused = auditcheck({"op": "check", "inclusion": wrong, "consistency": []})
    assert refused["inclusion"][0] != "", "Go accepted a proof for the wrong leaf"


def served_tiles(client: TestClient, size: int) -> dict[str, str]:
    """Every hash tile of the tree of `size`, as served: full ones and each level's last."""
    tiles: dict[str, str] = {}
    level = 0
    while size >> (8 * level):
        count = size >> (8 * level)
        refs = [TileRef(level, n) for n in range(count // WIDTH)]
        if count % WIDTH:
            refs.append(TileRef(level, count // WIDTH, count % WIDTH))
        for ref in refs:
            response = client.get(f"{API}/{tile_path(ref)}")
            assert response.status_code == 200, tile_path(ref)
            tiles[tile_path(ref)] = base64.b64encode(response.content).decode()
        level += 1
    return tiles


def bundle_entries(client: TestClient, size: int) -> list[bytes]:
    """Every entry's leaf data, read from the served entry bundles."""
    entries: list[bytes] = []
    for number in range(-(-size // WIDTH)):
        width = min(WIDTH, size - number * WIDTH)
        data = client.get(f"{API}/{tile_path(TileRef(None, number, width))}").content
        while data:
            length = int.from_bytes(data[:2], "big")
            entries.append(data[2 : 2 + length])
            data = data[2 + length :]
    assert len(entries) == size
    return entries


def test_go_reads_our_tiles_and_proves_entries_from_our_bundles(
    admin: TestClient, tilecheck: Go
) -> None:
    key = admin.get(f"{API}/key").text.strip()
    checkpoints = admin.get(f"{API}/checkpoints", params={"limit": 100}).json()["items"]
    latest, old = checkpoints[0], checkpoints[len(checkpoints) // 2]
    size = latest["size"]
    entries = bundle_entries(admin, size)
    picks = sorted({0, 1, 255, 256, 300, 511, 512, size - 1})
    answer = tilecheck(
        {
            "verifier_key": key,
            "checkpoint": latest["note"],
            "tiles": served_tiles(admin, size),
            "records": [{"index": i, "data": base64.b64encode(entries[i]).decode()} for i in picks],
            "old_size": old["size"],
            "old_root": old["root"],
        }
    )
    assert answer["error"] == "" and answer["size"] == size, answer
    assert answer["records"] == [""] * len(picks), answer
    assert answer["tree"] == "", answer
    assert any(".p/" in path for path in answer["asked"]) and "tile/1/000.p/2" in answer["asked"]
    forged = bytearray(entries[300])
    forged[-5] ^= 1
    refused = tilecheck(
        {
            "verifier_key": key,
            "checkpoint": latest["note"],
            "tiles": served_tiles(admin, size),
            "records": [{"index": 300, "data": base64.b64encode(bytes(forged)).decode()}],
            "old_size": old["size"],
            "old_root": old["root"],
        }
    )
    assert refused["records"][0] != "", "Go proved a forged entry"
