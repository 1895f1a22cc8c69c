"""Fixtures of the service tests shared across files (built once per session)."""

from tests.services.backup_node import original

__all__ = ["original"]
