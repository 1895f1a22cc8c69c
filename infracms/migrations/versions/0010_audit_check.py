"""audit check: the outcome of the node's last self check of its stored log

Revision ID: 0010_audit_check
Revises: 0007_catalog_sync_status
Create Date: 2026-12-07 14:00:00.000000

One row (id 1), written by `infracms audit check` and the periodic self check; while
it records a failure the node signs no checkpoint and its health is degraded.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infracms.models.base

revision: str = "0010_audit_check"
down_revision: str | None = "0009_peer_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = infracms.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checked_at", UTC_TIME, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("first_bad", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("audit_check")
