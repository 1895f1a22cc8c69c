"""Fixtures of the witness tests: nodes a.example and b.example on one in-memory network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.witness.nodes import Network, Node, pin, started_node


@pytest.fixture
def network() -> Network:
    """The in-memory network the test's nodes talk over."""
    return Network()


@pytest.fixture
def node_a(tmp_path: Path, network: Network) -> Iterator[Node]:
    """Node a.example, whose log is witnessed."""
    with started_node(tmp_path, "a.example", network) as node:
        yield node


@pytest.fixture
def node_b(tmp_path: Path, network: Network) -> Iterator[Node]:
    """Node b.example, a witness."""
    with started_node(tmp_path, "b.example", network) as node:
        yield node


@pytest.fixture
def peered(node_a: Node, node_b: Node) -> tuple[Node, Node]:
    """a.example and b.example, each holding the other as an active peer."""
    pin(node_a, node_b)
    pin(node_b, node_a)
    return node_a, node_b


@pytest.fixture
def node_c(tmp_path: Path, network: Network) -> Iterator[Node]:
    """Node c.example, another witness."""
    with started_node(tmp_path, "c.example", network) as node:
        yield node
