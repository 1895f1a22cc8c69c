"""Replay protection: a store that remembers each (key id, nonce) until it expires.

The node backs ``NonceStore`` with something every worker shares: Redis
(``SET nonce:<key id>:<nonce> 1 NX EXAT <expiry>``) or a database table with a
unique key on (key id, nonce) and an insert that fails on conflict. The check and
the remembering must be one atomic step, or two workers could both accept a replay.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from federation.encoding import utc_now


class NonceStore(Protocol):
    """Remembers nonces; shared by every process that verifies signed requests."""

    def check_and_remember(self, *, key_id: str, nonce: str, expires_at: datetime) -> bool:
        """Atomically record (key id, nonce) until ``expires_at``; False if already recorded."""
        ...


class MemoryNonceStore:
    """An in-process ``NonceStore`` for tests and single-process tools; thread-safe."""

    def __init__(self, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self._seen: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()

    def check_and_remember(self, *, key_id: str, nonce: str, expires_at: datetime) -> bool:
        """Record (key id, nonce) until ``expires_at``; False if it is already recorded."""
        with self._lock:
            self._purge(self._clock())
            if (key_id, nonce) in self._seen:
                return False
            self._seen[(key_id, nonce)] = expires_at
            return True

    @property
    def size(self) -> int:
        """How many nonces are remembered (expired ones may linger until the next check)."""
        return len(self._seen)

    def _purge(self, now: datetime) -> None:
        """Forget nonces whose signatures can no longer be accepted anyway."""
        expired = [entry for entry, until in self._seen.items() if until < now]
        for entry in expired:
            del self._seen[entry]
