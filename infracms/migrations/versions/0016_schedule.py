"""schedule: recurring drift checks, and where each host stands against its definitions

Revision ID: 0016_schedule
Revises: 0015_approve
Create Date: 2026-12-07 20:30:00.000000

`schedule`: a cron expression in a time zone, a scope (a group, some definitions), a
mode (plan, or plan then reconcile), when it last fired and is next due. `host_drift`:
one row per host that a plan has checked: in sync, drifted (which definitions and
tasks, a digest of the diff), failed or unreachable, and its acknowledgement.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infracms.models.base

revision: str = "0016_schedule"
down_revision: str | None = "0015_approve"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = infracms.models.base.UTCDateTime(timezone=True)
MODES = ("plan", "reconcile")
STATES = ("in_sync", "drifted", "failed", "unreachable", "never_applied", "out_of_date")


def upgrade() -> None:
    op.create_table(
        "schedule",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("cron", sa.String(length=100), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column(
            "mode",
            sa.Enum(*MODES, name="schedulemode", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("group", sa.String(length=63), nullable=True),
        sa.Column("definitions", sa.JSON(), nullable=True),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("last_fired_at", UTC_TIME, nullable=True),
        sa.Column("next_due_at", UTC_TIME, nullable=True),
        sa.Column("last_run_id", sa.Uuid(), nullable=True),
        sa.Column("reconcile_run_id", sa.Uuid(), nullable=True),
        sa.Column("last_skipped", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["last_run_id"], ["run.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["reconcile_run_id"], ["run.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organisation_id", "name"),
    )
    op.create_index("ix_schedule_organisation_id", "schedule", ["organisation_id"])
    op.create_index("ix_schedule_scope", "schedule", ["scope"])
    op.create_index("ix_schedule_next_due_at", "schedule", ["next_due_at"])
    op.create_table(
        "host_drift",
        sa.Column("host_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(*STATES, name="driftstate", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("checked_at", UTC_TIME, nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("definitions", sa.JSON(), nullable=False),
        sa.Column("tasks", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.Column("since", UTC_TIME, nullable=True),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.Column("acknowledged_at", UTC_TIME, nullable=True),
        sa.Column("acknowledged_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["host_id"], ["host.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("host_id"),
    )
    op.create_index("ix_host_drift_organisation_id", "host_drift", ["organisation_id"])


def downgrade() -> None:
    op.drop_index("ix_host_drift_organisation_id", table_name="host_drift")
    op.drop_table("host_drift")
    op.drop_index("ix_schedule_next_due_at", table_name="schedule")
    op.drop_index("ix_schedule_scope", table_name="schedule")
    op.drop_index("ix_schedule_organisation_id", table_name="schedule")
    op.drop_table("schedule")
