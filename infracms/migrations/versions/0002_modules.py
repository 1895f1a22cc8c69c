"""modules

Revision ID: 0002_modules
Revises: 0001_foundation
Create Date: 2026-11-22 01:45:10.785199
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infracms.models.base

revision: str = "0002_modules"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "available_module",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column(
            "made_available_at", infracms.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "enabled_module",
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("enabled_at", infracms.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("organisation_id", "name"),
    )
    op.create_table(
        "definition",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("module", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("host_id", sa.Uuid(), nullable=True),
        sa.Column("group_id", sa.Uuid(), nullable=True),
        sa.Column("published", sa.Integer(), nullable=True),
        sa.Column("latest", sa.Integer(), nullable=False),
        sa.Column("retired_at", infracms.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", infracms.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["hostgroup.id"],
        ),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["host.id"],
        ),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organisation_id", "name"),
    )
    with op.batch_alter_table("definition", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_definition_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_definition_host_id"), ["host_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_definition_module"), ["module"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_definition_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "revision",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("definition_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("message", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("author", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", infracms.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["definition_id"], ["definition.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("definition_id", "number"),
    )
    with op.batch_alter_table("revision", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_revision_definition_id"), ["definition_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("revision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revision_definition_id"))

    op.drop_table("revision")
    with op.batch_alter_table("definition", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_definition_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_definition_module"))
        batch_op.drop_index(batch_op.f("ix_definition_host_id"))
        batch_op.drop_index(batch_op.f("ix_definition_group_id"))

    op.drop_table("definition")
    op.drop_table("enabled_module")
    op.drop_table("available_module")
