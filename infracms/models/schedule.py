"""Schedules (recurring drift checks of a scope) and where each host stands against them."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from pydantic import field_validator
from sqlalchemy import Enum, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from infracms.models.base import UTCDateTime, created_field, id_field, json_field
from infracms.models.validators import (
    NameStr,
    check_cron,
    check_name,
    check_time_zone,
    name_field,
    text_field,
)


class ScheduleMode(enum.StrEnum):
    """What a schedule does when it is due."""

    plan = "plan"  # a drift check: a plan, nothing changes
    reconcile = "reconcile"  # a plan, then an apply of what drifted


class ScheduleBase(SQLModel):
    name: str = name_field()
    cron: str = Field(max_length=100, description="five fields: minute hour day month weekday")
    time_zone: str = Field(default="UTC", max_length=64, description="an IANA time zone")
    mode: ScheduleMode = ScheduleMode.plan
    group: str | None = Field(default=None, max_length=63, description="only this group's hosts")
    definitions: list[NameStr] | None = Field(
        default=None, max_length=100, description="only these definitions (default: all)"
    )
    enabled: bool = True


class ScheduleCreate(ScheduleBase):
    _name = field_validator("name")(check_name)
    _cron = field_validator("cron")(check_cron)
    _time_zone = field_validator("time_zone")(check_time_zone)


class Schedule(SQLModel, table=True):
    """A recurring drift check of an organisation, a group of it, or some definitions."""

    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: uuid.UUID = id_field()
    organisation_id: uuid.UUID = Field(
        foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    name: str = Field(max_length=63)
    cron: str = Field(max_length=100)
    time_zone: str = Field(max_length=64)
    mode: ScheduleMode = Field(sa_type=Enum(ScheduleMode, native_enum=False, length=16))
    group: str | None = Field(default=None, max_length=63)
    definitions: list[str] | None = json_field(lambda: None)
    scope: str = Field(max_length=64, index=True)  # digest of (group, definitions)
    enabled: bool = True
    created_at: datetime = created_field()
    created_by: str = Field(max_length=200)
    last_fired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    last_run_id: uuid.UUID | None = Field(default=None, foreign_key="run.id", ondelete="SET NULL")
    reconcile_run_id: uuid.UUID | None = Field(
        default=None, foreign_key="run.id", ondelete="SET NULL"
    )
    last_skipped: str | None = Field(default=None, max_length=500)


class SchedulePublic(SQLModel):
    id: uuid.UUID
    name: str
    cron: str
    time_zone: str
    mode: ScheduleMode
    group: str | None
    definitions: list[str] | None
    enabled: bool
    created_at: datetime
    created_by: str
    last_fired_at: datetime | None
    next_due_at: datetime | None
    last_run_id: uuid.UUID | None
    reconcile_run_id: uuid.UUID | None
    last_skipped: str | None


class DriftState(enum.StrEnum):
    """Where a host stands against its definitions."""

    in_sync = "in sync"
    drifted = "drifted"
    failed = "failed"
    unreachable = "unreachable"
    never_applied = "never applied"
    out_of_date = "out of date"


class HostDrift(SQLModel, table=True):
    """What the last plan found on a host: in sync, drifted (what would change), failed or
    unreachable; and whether someone acknowledged the drift it found."""

    __tablename__ = "host_drift"

    host_id: uuid.UUID = Field(foreign_key="host.id", primary_key=True, ondelete="CASCADE")
    organisation_id: uuid.UUID = Field(
        foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    state: DriftState = Field(sa_type=Enum(DriftState, native_enum=False, length=16))
    checked_at: datetime = Field(sa_type=UTCDateTime)
    run_id: uuid.UUID | None = Field(default=None, foreign_key="run.id", ondelete="SET NULL")
    definitions: list[str] = json_field(list)
    tasks: list[str] = json_field(list)
    digest: str | None = Field(default=None, max_length=64)
    since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: str | None = Field(default=None, max_length=200)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_reason: str | None = Field(default=None, sa_type=Text)


class DriftAcknowledge(SQLModel):
    reason: str = text_field(min_length=1, max_length=500, description="why the drift may stay")


class HostDriftPublic(SQLModel):
    host: str
    state: DriftState
    checked_at: datetime | None
    run_id: uuid.UUID | None
    definitions: list[str]
    tasks: list[str]
    digest: str | None
    since: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    acknowledged_reason: str | None
