"""Password hashing with Argon2id."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from infracms.config import Settings


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=2)


def hasher(settings: Settings) -> PasswordHasher:
    """The Argon2id hasher with the node's cost settings."""
    return _hasher(settings.argon2_time_cost, settings.argon2_memory_kib)


def hash_password(settings: Settings, password: str) -> str:
    """An Argon2id hash of `password`."""
    return hasher(settings).hash(password)


def verify_password(settings: Settings, password_hash: str, password: str) -> bool:
    """Whether `password` matches the hash; never raises for a wrong one."""
    try:
        return hasher(settings).verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


DUMMY_HASH_PASSWORD = "infracms-timing-equaliser"


def burn_time(settings: Settings) -> None:
    """Spend what a verification costs, so unknown users cannot be told by timing."""
    verify_password(
        settings, _dummy_hash(settings.argon2_time_cost, settings.argon2_memory_kib), "x"
    )


@lru_cache(maxsize=4)
def _dummy_hash(time_cost: int, memory_kib: int) -> str:
    return _hasher(time_cost, memory_kib).hash(DUMMY_HASH_PASSWORD)
