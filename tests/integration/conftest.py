"""Fixtures of the end-to-end run tests against real hosts.

Applying modules costs tens of seconds on two cores, so hosts are shared: the applied
`world` (world.py) lives for the whole package, and `module_hosts` starts hosts that
the tests of one file share in order (a module-scoped fixture does each run; the tests
check what it left).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.integration.world import (  # noqa: F401
    first_apply,
    first_plan,
    plan_run,
    second_apply,
    world,
)
from tests.support.hosts import HostPool, Init, TestHost, stop_hosts


@pytest.fixture(scope="module")
def module_hosts(host_pool: HostPool) -> Iterator[Callable[..., list[TestHost]]]:
    """Start hosts with ``module_hosts(count, init=...)``; they stop after the test file."""
    started: list[TestHost] = []

    def start(count: int = 1, *, init: Init = "systemd") -> list[TestHost]:
        hosts = host_pool.start_hosts(count, init=init)
        started.extend(hosts)
        return hosts

    yield start
    stop_hosts(started)
