"""witness: the peer logs this node cosigns, the checkpoints it refused, peers' cosignatures

Revision ID: 0006_witness
Revises: 0005_federation
Create Date: 2026-11-22 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infracms.models.base

revision: str = "0006_witness"
down_revision: str | None = "0005_federation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIME = infracms.models.base.UTCDateTime(timezone=True)


def _name(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "witnessed_log",
        sa.Column("origin", _name(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=False),
        sa.Column("cosigned_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("origin"),
    )
    op.create_table(
        "witness_conflict",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("origin", _name(255), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "fork",
                "rollback",
                "inconsistent",
                name="conflictkind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("held_size", sa.BigInteger(), nullable=False),
        sa.Column("held_root", sa.LargeBinary(), nullable=False),
        sa.Column("held_checkpoint", sa.Text(), nullable=False),
        sa.Column("old_size", sa.BigInteger(), nullable=False),
        sa.Column("submitted_size", sa.BigInteger(), nullable=False),
        sa.Column("submitted_root", sa.LargeBinary(), nullable=False),
        sa.Column("submitted_checkpoint", sa.Text(), nullable=False),
        sa.Column("proof", sa.Text(), nullable=False),
        sa.Column("submitted_by", _name(64), nullable=False),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("witness_conflict", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_witness_conflict_origin"), ["origin"], unique=False)
    op.create_table(
        "audit_cosignature",
        sa.Column("checkpoint_size", BIG_KEY, nullable=False, autoincrement=False),
        sa.Column("witness", _name(255), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("peer", _name(255), nullable=False),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["checkpoint_size"], ["audit_checkpoint.size"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("checkpoint_size", "witness", "key_id"),
    )
    with op.batch_alter_table("audit_cosignature", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_cosignature_peer"), ["peer"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_cosignature", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_cosignature_peer"))
    op.drop_table("audit_cosignature")
    with op.batch_alter_table("witness_conflict", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_witness_conflict_origin"))
    op.drop_table("witness_conflict")
    op.drop_table("witnessed_log")
