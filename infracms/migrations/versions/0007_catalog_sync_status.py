"""catalog sync status: the last successful sync, and the outcome of the last attempt

Revision ID: 0007_catalog_sync_status
Revises: 0006_witness
Create Date: 2026-11-29 10:00:00.000000

Rows synced before this revision are filled in from what they hold: a row without an
error last succeeded when it was last checked, a failing one at least when its copy
was fetched; the last attempt updated the copy when it was fetched then, left it
unchanged otherwise, or failed. Why an earlier attempt failed stays in ``error`` alone.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infracms.models.base

revision: str = "0007_catalog_sync_status"
down_revision: str | None = "0006_witness"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = infracms.models.base.UTCDateTime(timezone=True)
OUTCOMES = ("updated", "unchanged", "failed")
FAILURES = (
    "unreachable",
    "timeout",
    "refused",
    "redirected",
    "url_refused",
    "tampered",
    "bad_signature",
    "unknown_key",
    "wrong_node",
    "rollback",
    "clock",
    "replayed",
    "malformed",
    "error",
)


def upgrade() -> None:
    with op.batch_alter_table("peer_catalog", schema=None) as batch_op:
        batch_op.add_column(sa.Column("synced_at", UTC_TIME, nullable=True))
        batch_op.add_column(
            sa.Column(
                "outcome",
                sa.Enum(*OUTCOMES, name="syncoutcome", native_enum=False, length=16),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "failure",
                sa.Enum(*FAILURES, name="syncfailure", native_enum=False, length=16),
                nullable=True,
            )
        )
    catalogs = sa.table(
        "peer_catalog",
        sa.column("checked_at", UTC_TIME),
        sa.column("fetched_at", UTC_TIME),
        sa.column("error", sa.Text()),
        sa.column("synced_at", UTC_TIME),
        sa.column("outcome", sa.String(16)),
    )
    failing = catalogs.c.error.is_not(None)
    op.execute(
        catalogs.update()
        .where(catalogs.c.checked_at.is_not(None))
        .values(
            synced_at=sa.case((failing, catalogs.c.fetched_at), else_=catalogs.c.checked_at),
            outcome=sa.case(
                (failing, "failed"),
                (catalogs.c.fetched_at == catalogs.c.checked_at, "updated"),
                else_="unchanged",
            ),
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("peer_catalog", schema=None) as batch_op:
        batch_op.drop_column("failure")
        batch_op.drop_column("outcome")
        batch_op.drop_column("synced_at")
