"""The replay cache: a (key id, nonce) is accepted once, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from infracms.models.base import utcnow
from infracms.services.federation.nonces import DatabaseNonceStore

pytestmark = pytest.mark.postgres


def test_a_nonce_is_accepted_once(any_engine: Engine) -> None:
    store = DatabaseNonceStore(any_engine)
    expires = utcnow() + timedelta(minutes=5)
    assert store.check_and_remember(key_id="k1", nonce="n1", expires_at=expires) is True
    assert store.check_and_remember(key_id="k1", nonce="n1", expires_at=expires) is False
    assert store.check_and_remember(key_id="k2", nonce="n1", expires_at=expires) is True
