"""Runs (plan or apply of definitions on hosts), their events, and the host locks."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Enum, Text
from sqlmodel import Field, SQLModel

from infracms.models.base import UTCDateTime, created_field, id_field, json_field


class RunKind(enum.StrEnum):
    """What a run does."""

    plan = "plan"  # check mode with diffs: changes nothing
    apply = "apply"


class RunStatus(enum.StrEnum):
    """Where a run is."""

    pending_approval = "pending_approval"  # an apply held until its plan is approved
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    timed_out = "timed_out"
    refused = "refused"  # refused by an approver, or its approved plan changed
    expired = "expired"  # not approved in time

    @property
    def finished(self) -> bool:
        """Whether the run has ended."""
        return self not in (RunStatus.pending_approval, RunStatus.queued, RunStatus.running)


STATUS_GROUPS: dict[str, tuple[RunStatus, ...]] = {
    "active": (RunStatus.pending_approval, RunStatus.queued, RunStatus.running),
    "failed": (RunStatus.failed, RunStatus.timed_out),  # a run that timed out failed too
}
StatusFilter = Literal[
    "active",
    "pending_approval",
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "timed_out",
    "refused",
    "expired",
]


class RunFilter(SQLModel):
    """Which runs to list: every field narrows the list (all given must hold)."""

    status: StatusFilter | None = Field(
        default=None,
        description=(
            "a status, or `active` (awaiting approval, queued or running); "
            "`failed` takes in timed out"
        ),
    )
    kind: RunKind | None = None
    host: str | None = Field(default=None, max_length=63, description="runs on this host")
    definition: str | None = Field(
        default=None, max_length=63, description="runs of this definition"
    )
    requested_by: str | None = Field(default=None, max_length=200, description="who asked")

    def statuses(self) -> tuple[RunStatus, ...] | None:
        """The statuses the filter admits, or None for any."""
        if self.status is None:
            return None
        return STATUS_GROUPS.get(self.status) or (RunStatus(self.status),)


class RunCreate(SQLModel):
    kind: RunKind
    definitions: list[str] | None = Field(
        default=None, max_length=1000, description="only these definitions (default: all)"
    )
    hosts: list[str] | None = Field(default=None, max_length=10000, description="only these hosts")
    groups: list[str] | None = Field(default=None, max_length=1000, description="only these groups")
    timeout_seconds: int = Field(default=3600, ge=10, le=86400)


class Run(SQLModel, table=True):
    id: uuid.UUID = id_field()
    organisation_id: uuid.UUID = Field(
        foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    kind: RunKind = Field(sa_type=Enum(RunKind, native_enum=False, length=16))
    status: RunStatus = Field(
        default=RunStatus.queued, sa_type=Enum(RunStatus, native_enum=False, length=16), index=True
    )
    requested_by: str = Field(max_length=200)
    created_at: datetime = created_field()
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    timeout_seconds: int = 3600
    hosts: list[str] = json_field(list)
    definitions: list[dict[str, Any]] = json_field(list)
    recap: dict[str, dict[str, int]] = json_field()
    rc: int | None = None
    error: str | None = Field(default=None, sa_type=Text)
    cancel_requested: bool = False
    worker: str | None = Field(default=None, max_length=200)
    parent_id: uuid.UUID | None = Field(default=None, foreign_key="run.id")
    event_count: int = 0
    stdout_sha256: str | None = Field(default=None, max_length=64)


class RunPublic(SQLModel):
    id: uuid.UUID
    organisation_id: uuid.UUID
    kind: RunKind
    status: RunStatus
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    timeout_seconds: int
    hosts: list[str]
    definitions: list[dict[str, Any]]
    recap: dict[str, dict[str, int]]
    rc: int | None
    error: str | None
    cancel_requested: bool
    parent_id: uuid.UUID | None
    event_count: int


class RunEvent(SQLModel, table=True):
    __tablename__ = "run_event"

    run_id: uuid.UUID = Field(foreign_key="run.id", primary_key=True, ondelete="CASCADE")
    seq: int = Field(primary_key=True)
    event: str = Field(max_length=64)
    host: str | None = Field(default=None, max_length=63)
    task: str | None = Field(default=None, max_length=500)
    status: str | None = Field(default=None, max_length=16)
    changed: bool = False
    stdout: str = Field(default="", sa_type=Text)
    data: dict[str, Any] = json_field()
    created_at: datetime = created_field()


class RunEventPublic(SQLModel):
    seq: int
    event: str
    host: str | None
    task: str | None
    status: str | None
    changed: bool
    stdout: str
    data: dict[str, Any]
    created_at: datetime


class HostLock(SQLModel, table=True):
    """A host being applied: held by one run, lost when its holder stops renewing it."""

    __tablename__ = "host_lock"

    host_id: uuid.UUID = Field(foreign_key="host.id", primary_key=True, ondelete="CASCADE")
    run_id: uuid.UUID = Field(foreign_key="run.id", index=True, ondelete="CASCADE")
    expires_at: datetime = Field(sa_type=UTCDateTime)


class HostOutcome(enum.StrEnum):
    """How the last run went on one host (from the run's recap)."""

    ok = "ok"
    changed = "changed"
    failed = "failed"
    unreachable = "unreachable"
    not_reached = "not reached"  # the run ended before it reached the host


class HostRunState(SQLModel, table=True):
    """Where a host stands: its last run, and what its last good apply applied.

    Written when a run finishes (services/host_state.py), so the dashboard reads one row
    per host instead of walking the runs."""

    __tablename__ = "host_run_state"

    host_id: uuid.UUID = Field(foreign_key="host.id", primary_key=True, ondelete="CASCADE")
    organisation_id: uuid.UUID = Field(
        foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    last_run_id: uuid.UUID | None = Field(default=None, foreign_key="run.id", ondelete="SET NULL")
    last_kind: RunKind = Field(sa_type=Enum(RunKind, native_enum=False, length=16))
    last_outcome: HostOutcome = Field(
        sa_type=Enum(HostOutcome, native_enum=False, length=16), index=True
    )
    last_run_at: datetime = Field(sa_type=UTCDateTime)
    applied_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    applied: dict[str, int] = json_field()
