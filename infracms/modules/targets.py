"""What hooks are told about where a definition applies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Target:
    """A host or a group a definition applies to, and the hosts it covers."""

    kind: Literal["host", "group"]
    name: str
    organisation: str
    hosts: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class DefinitionUse:
    """A definition that uses a module."""

    name: str
    target: str
