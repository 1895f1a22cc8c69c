"""Fixtures of the audit store tests: a node with entries, its signer, and helpers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from infracms.audit.note import Signer
from infracms.config import Settings
from infracms.db import session_scope
from infracms.services import audit
from tests.helpers import ADMIN

Append = Callable[[int], None]


def append_entries(
    engine: Engine, count: int, *, per_transaction: int = 50, tag: str = "e"
) -> None:
    """Append `count` entries through the choke point, `per_transaction` to a commit."""
    done = 0
    while done < count:
        with session_scope(engine, write=True) as session:
            for _ in range(min(per_transaction, count - done)):
                audit.record(
                    session,
                    actor=ADMIN,
                    action="test.append",
                    subject=f"thing:{tag}{done}",
                    payload={"n": done, "tag": tag},
                )
                done += 1
            session.commit()


@pytest.fixture
def signer(settings: Settings, engine: Engine) -> Signer:
    """The node's log signer (its identity key, named by the node name)."""
    return audit.node_signer(settings)


@pytest.fixture
def append(engine: Engine) -> Append:
    """Append that many entries to the node's log."""
    return lambda count: append_entries(engine, count)
