"""Approvals: the policies that hold an apply, the held plan, and each person's decision.

An apply that a policy covers waits with its plan (an ``ApprovalRequest``: the digest of
the exact revisions, hosts and rendered settings it would run). Each decision
(``Approval``) names the digest it was given for; a run is released only by enough
approvals of the digest it still has when it starts (services/approvals.py).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import field_validator
from sqlalchemy import Enum, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from infracms.models.base import UTCDateTime, created_field, id_field, json_field
from infracms.models.user import ROLE_TYPE, Role
from infracms.models.validators import NameStr, check_name, name_field, text_field

# who may be asked to approve: people who may change what runs (viewers and auditors
# only read; an approval is a decision to change hosts)
APPROVER_ROLES = frozenset({Role.owner, Role.operator, Role.editor})
MAX_APPROVALS = 20
MAX_EXPIRY_HOURS = 24 * 30


def _check_roles(value: list[Role]) -> list[Role]:
    refused = sorted(str(role) for role in set(value) - APPROVER_ROLES)
    if refused:
        raise ValueError(
            f"{', '.join(refused)} may not approve applies: choose among "
            f"{', '.join(sorted(APPROVER_ROLES))}"
        )
    return sorted(set(value))


def _check_names(value: list[str]) -> list[str]:
    return sorted({check_name(name) for name in value})


class ApprovalPolicyBase(SQLModel):
    hosts: list[NameStr] = Field(
        default_factory=list, max_length=1000, description="these hosts need approval"
    )
    groups: list[NameStr] = Field(
        default_factory=list,
        max_length=1000,
        description="the hosts of these groups (and of the groups within them) need approval",
    )
    modules: list[NameStr] = Field(
        default_factory=list,
        max_length=200,
        description="applies of these modules need approval (none listed: any module)",
    )
    approvals_required: int = Field(
        default=1, ge=1, le=MAX_APPROVALS, description="how many distinct people must approve"
    )
    roles: list[Role] = Field(
        default_factory=lambda: [Role.owner, Role.operator],
        min_length=1,
        max_length=3,
        description="the roles whose members may approve (never the person who asked)",
    )
    expires_hours: int = Field(
        default=24, ge=1, le=MAX_EXPIRY_HOURS, description="a held apply expires after this"
    )

    _roles = field_validator("roles")(_check_roles)
    _hosts = field_validator("hosts", "groups", "modules")(_check_names)


class ApprovalPolicyCreate(ApprovalPolicyBase):
    """A policy as an owner sets it (setting a name again replaces that policy)."""

    name: str = name_field()
    _name = field_validator("name")(check_name)


class ApprovalPolicy(SQLModel, table=True):
    """Which applies of an organisation need approval, how many and from whom."""

    __tablename__ = "approval_policy"
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: uuid.UUID = id_field()
    organisation_id: uuid.UUID = Field(
        foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    name: str = Field(max_length=63)
    hosts: list[str] = json_field(list)
    groups: list[str] = json_field(list)
    modules: list[str] = json_field(list)
    approvals_required: int = 1
    roles: list[str] = json_field(list)
    expires_hours: int = 24
    created_at: datetime = created_field()
    updated_at: datetime = created_field()


class ApprovalPolicyPublic(SQLModel):
    id: uuid.UUID
    name: str
    hosts: list[str]
    groups: list[str]
    modules: list[str]
    approvals_required: int
    roles: list[Role]
    expires_hours: int
    updated_at: datetime


class RequestState(enum.StrEnum):
    """Where a held apply's approval stands."""

    pending = "pending"
    released = "released"  # approved (or broken glass): queued
    refused = "refused"  # an approver refused it
    void = "void"  # its plan changed after it was approved
    expired = "expired"
    cancelled = "cancelled"


class ApprovalRequest(SQLModel, table=True):
    """A held apply's plan: what exactly would run, its digest, and what it needs."""

    __tablename__ = "approval_request"

    run_id: uuid.UUID = Field(foreign_key="run.id", primary_key=True, ondelete="CASCADE")
    organisation_id: uuid.UUID = Field(
        foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    requester_id: uuid.UUID | None = Field(default=None)
    digest: str = Field(max_length=64)
    plan: dict[str, Any] = json_field()
    # one entry per policy that covers the apply: {"policy", "approvals_required", "roles"}
    requirements: list[dict[str, Any]] = json_field(list)
    state: RequestState = Field(
        default=RequestState.pending,
        sa_type=Enum(RequestState, native_enum=False, length=16),
        index=True,
    )
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    created_at: datetime = created_field()
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    break_glass_by: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, sa_type=Text)


class ApprovalRequestPublic(SQLModel):
    run_id: uuid.UUID
    digest: str
    plan: dict[str, Any] = Field(
        description="what the apply would run: revisions, hosts, settings (secret "
        "references as references); the digest is SHA-256 of its canonical JSON"
    )
    requirements: list[dict[str, Any]]
    state: RequestState
    expires_at: datetime
    released_at: datetime | None
    break_glass_by: str | None
    reason: str | None


Decision = Literal["approve", "refuse"]


class Approval(SQLModel, table=True):
    """One person's decision on a held apply, for the plan digest they were shown."""

    __tablename__ = "approval"
    __table_args__ = (UniqueConstraint("run_id", "approver_id"),)

    id: uuid.UUID = id_field()
    run_id: uuid.UUID = Field(foreign_key="run.id", index=True, ondelete="CASCADE")
    organisation_id: uuid.UUID = Field(
        foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    approver_id: uuid.UUID = Field(foreign_key="user.id", ondelete="CASCADE")
    approver: str = Field(max_length=200)
    role: Role = Field(sa_type=ROLE_TYPE)
    decision: str = Field(max_length=8)
    comment: str = Field(default="", sa_type=Text)
    digest: str = Field(max_length=64)
    at: datetime = created_field()


class ApprovalDecide(SQLModel):
    """An approver's decision on a held apply."""

    decision: Decision
    comment: str = text_field("", max_length=2000)
    digest: str | None = Field(
        default=None,
        min_length=64,
        max_length=64,
        regex=r"^[0-9a-f]{64}$",
        description="the plan digest you reviewed (refused if the plan has changed since)",
    )

    @field_validator("comment")
    @classmethod
    def _comment(cls, value: str) -> str:
        return value.strip()


class ApprovalPublic(SQLModel):
    id: uuid.UUID
    run_id: uuid.UUID
    approver: str
    role: Role
    decision: str
    comment: str
    digest: str
    at: datetime


class BreakGlass(SQLModel):
    """An owner releasing a held apply without its approvals, and why."""

    reason: str = text_field(max_length=2000, min_length=1)

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if len(value.strip()) < 10:
            raise ValueError("say why the approvals are skipped (at least 10 characters)")
        return value.strip()
