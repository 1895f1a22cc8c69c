"""What a module's methods are told (where a definition applies, the host a role runs
on), and the plain data they answer with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

Plain: TypeAlias = "str | int | float | bool | Sequence[Plain] | Mapping[str, Plain] | None"
"""Plain data, as JSON has it: what settings, parameters and connection details are."""

PlainMapping: TypeAlias = Mapping[str, Plain]
"""Settings or parameters as plain data (secrets as references unless said otherwise)."""


@dataclass(frozen=True)
class Target:
    """A host or a group a definition applies to, and the hosts it covers."""

    kind: Literal["host", "group"]
    name: str
    organisation: str
    hosts: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class HostFacts:
    """One host a run's input is rendered for, as a module's `extra_variables` sees it."""

    name: str
    variables: Mapping[str, Plain] = field(default_factory=dict)
    """The host's free-form inventory variables: editors write them, so check them."""
    ssh_user: str = "root"
    """The account infracms connects as."""
    ssh_port: int = 22
    """The port infracms connects to."""
    data_paths: tuple[str, ...] = ()
    """The `data_paths` of every module applying to the host, sorted."""


@dataclass(frozen=True)
class DefinitionUse:
    """A definition that uses a module."""

    name: str
    target: str
