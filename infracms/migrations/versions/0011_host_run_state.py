"""host run state: where each host stands, for the operations dashboard

Revision ID: 0011_host_run_state
Revises: 0010_audit_check
Create Date: 2026-12-07 18:00:00.000000

One row per host that a run has reached: its last run and outcome, and what its last
successful apply applied (definition name -> revision). Written when a run finishes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infracms.models.base

revision: str = "0011_host_run_state"
down_revision: str | None = "0010_audit_check"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = infracms.models.base.UTCDateTime(timezone=True)
KINDS = ("plan", "apply")
OUTCOMES = ("ok", "changed", "failed", "unreachable", "not_reached")


def upgrade() -> None:
    op.create_table(
        "host_run_state",
        sa.Column("host_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("last_run_id", sa.Uuid(), nullable=True),
        sa.Column(
            "last_kind",
            sa.Enum(*KINDS, name="runkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "last_outcome",
            sa.Enum(*OUTCOMES, name="hostoutcome", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("last_run_at", UTC_TIME, nullable=False),
        sa.Column("applied_at", UTC_TIME, nullable=True),
        sa.Column("applied", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["host.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["last_run_id"], ["run.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("host_id"),
    )
    op.create_index("ix_host_run_state_organisation_id", "host_run_state", ["organisation_id"])
    op.create_index("ix_host_run_state_last_outcome", "host_run_state", ["last_outcome"])


def downgrade() -> None:
    op.drop_index("ix_host_run_state_last_outcome", table_name="host_run_state")
    op.drop_index("ix_host_run_state_organisation_id", table_name="host_run_state")
    op.drop_table("host_run_state")
