"""audit: the Merkle tree store, checkpoints, and an index on entry actors

Revision ID: 0003_audit
Revises: 0002_modules
Create Date: 2026-11-22 03:10:00.000000
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infracms.models.base

revision: str = "0003_audit"
down_revision: str | None = "0002_modules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
EMPTY_ROOT = hashlib.sha256(b"").digest()


def upgrade() -> None:
    op.create_table(
        "audit_tree",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(
        sa.table(
            "audit_tree",
            sa.column("id", sa.Integer),
            sa.column("size", sa.BigInteger),
            sa.column("root", sa.LargeBinary),
        ),
        [{"id": 1, "size": 0, "root": EMPTY_ROOT}],
    )
    op.create_table(
        "audit_hash",
        sa.Column("id", BIG_KEY, nullable=False, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_checkpoint",
        sa.Column("size", BIG_KEY, nullable=False, autoincrement=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_at", infracms.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entry_actor_name"), ["actor_name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entry_actor_name"))
    op.drop_table("audit_checkpoint")
    op.drop_table("audit_hash")
    op.drop_table("audit_tree")
