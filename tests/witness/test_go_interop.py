"""A cosigned checkpoint still opens with Go's golang.org/x/mod/sumdb/note (interop)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from federation.witness_api import split_note
from infracms.services import audit
from infracms.services.witness import gather_cosignatures
from tests.audit import gocheck
from tests.witness.nodes import Node

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def go(tmp_path_factory: pytest.TempPathFactory) -> Callable[[dict[str, Any]], Any]:
    binary: Path = gocheck.build(tmp_path_factory.mktemp("auditcheck"))
    return lambda request: gocheck.run(binary, request)


def test_go_opens_a_checkpoint_carrying_cosignatures(
    peered: tuple[Node, Node], go: Callable[[dict[str, Any]], Any]
) -> None:
    """Go's note.Open ignores the cosignature lines (unknown keys) and checks the log's."""
    node_a, _ = peered
    assert [o.status for o in gather_cosignatures(engine=node_a.engine, ctx=node_a.ctx)] == [
        "cosigned"
    ]
    note = node_a.client.get("/api/v1/audit/checkpoint").text
    assert len(split_note(note)[1]) == 2, "the log's signature and b.example's cosignature"
    key = audit.verifier_key(node_a.settings)
    opened = go({"op": "open", "verifier_key": key, "note": note})
    assert opened["error"] == "", opened
    assert opened["signers"] == ["+".join(key.split("+", 2)[:2])]
    assert opened["origin"] == "a.example" and opened["text"] == split_note(note)[0]
