"""peer limits: when each signed request arrived, to count a peer's requests a minute

Revision ID: 0009_peer_limits
Revises: 0007_catalog_sync_status
Create Date: 2026-12-07 14:00:00.000000

Nonces recorded before this revision have no arrival time; they count for no peer.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infracms.models.base

revision: str = "0009_peer_limits"
down_revision: str | None = "0008_secret_scopes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = infracms.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("peer_nonce", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seen_at", UTC_TIME, nullable=True))
        batch_op.create_index(batch_op.f("ix_peer_nonce_seen_at"), ["seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("peer_nonce", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_peer_nonce_seen_at"))
        batch_op.drop_column("seen_at")
