"""Fixtures of the witness tests: nodes a.example and b.example on one in-memory network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.apps import AppPool
from tests.witness.nodes import Network, Node, pin, started_node


@pytest.fixture
def network() -> Network:
    """The in-memory network the test's nodes talk over."""
    return Network()


@pytest.fixture
def node_a(app_pool: AppPool, network: Network) -> Iterator[Node]:
    """Node a.example, whose log is witnessed."""
    with started_node(app_pool, "a.example", network) as node:
        yield node


@pytest.fixture
def node_b(app_pool: AppPool, network: Network) -> Iterator[Node]:
    """Node b.example, a witness."""
    with started_node(app_pool, "b.example", network) as node:
        yield node


@pytest.fixture
def peered(node_a: Node, node_b: Node) -> tuple[Node, Node]:
    """a.example and b.example, each holding the other as an active peer."""
    pin(node_a, node_b)
    pin(node_b, node_a)
    return node_a, node_b


@pytest.fixture
def node_c(app_pool: AppPool, network: Network) -> Iterator[Node]:
    """Node c.example, another witness."""
    with started_node(app_pool, "c.example", network) as node:
        yield node
