"""Fixtures of the audit tests: signers, small logs, and the Go checker built once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infracms.audit.note import Signer
from tests.audit import gocheck
from tests.audit.builders import ORIGIN


@pytest.fixture
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture(scope="session")
def go_checker(tmp_path_factory: pytest.TempPathFactory) -> Callable[[dict[str, Any]], Any]:
    """Run a request through the Go checker, built once per test session."""
    binary: Path = gocheck.build(tmp_path_factory.mktemp("go"))
    return lambda request: gocheck.run(binary, request)
