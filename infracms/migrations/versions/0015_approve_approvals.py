"""approvals: policies per organisation, the held plan of an apply, each decision

Revision ID: 0015_approve
Revises: 0014_metricstotp
Create Date: 2026-12-07 20:13:22.924780

Run statuses gain pending_approval, refused and expired (the status column is a
16-character string without a check constraint: nothing to alter).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infracms.models.base

revision: str = "0015_approve"
down_revision: str | None = "0014_metricstotp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "approval_policy",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("hosts", sa.JSON(), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("modules", sa.JSON(), nullable=False),
        sa.Column("approvals_required", sa.Integer(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("expires_hours", sa.Integer(), nullable=False),
        sa.Column("created_at", infracms.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infracms.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organisation_id", "name"),
    )
    with op.batch_alter_table("approval_policy", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_approval_policy_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "approval",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("approver_id", sa.Uuid(), nullable=False),
        sa.Column("approver", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "owner",
                "operator",
                "editor",
                "viewer",
                "auditor",
                name="role",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("decision", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", infracms.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["approver_id"], ["user.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "approver_id"),
    )
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_approval_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_approval_run_id"), ["run_id"], unique=False)

    op.create_table(
        "approval_request",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("requester_id", sa.Uuid(), nullable=True),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("requirements", sa.JSON(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "released",
                "refused",
                "void",
                "expired",
                "cancelled",
                name="requeststate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("expires_at", infracms.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", infracms.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("released_at", infracms.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("break_glass_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id"),
    )
    with op.batch_alter_table("approval_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_approval_request_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_approval_request_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_approval_request_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("approval_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_request_state"))
        batch_op.drop_index(batch_op.f("ix_approval_request_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_approval_request_expires_at"))

    op.drop_table("approval_request")
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_run_id"))
        batch_op.drop_index(batch_op.f("ix_approval_organisation_id"))

    op.drop_table("approval")
    with op.batch_alter_table("approval_policy", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_policy_organisation_id"))

    op.drop_table("approval_policy")
