"""secret scopes: where a credential may be sent, and the secret sources of organisations

Revision ID: 0008_secret_scopes
Revises: 0007_catalog_sync_status
Create Date: 2026-12-07 14:00:00.000000

Credentials get a ``scope`` (hosts and groups by id); credentials that exist keep none,
which means any host of their organisation, as before: an upgrade breaks no run, and an
owner or operator narrows each credential when they choose. ``secret_grant`` holds the
``$env`` variables and ``$file`` paths a node admin lets each organisation refer to; it
starts empty, so ``$env``/``$file`` references saved before this revision are refused
at run time until a node admin grants them (nothing was ever scoped, so nothing that
exists can be trusted to be meant for its organisation).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infracms.models.base

revision: str = "0008_secret_scopes"
down_revision: str | None = "0007_catalog_sync_status"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("credential", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scope", sa.JSON(none_as_null=True), nullable=True))
    op.create_table(
        "secret_grant",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("env", "file", name="secretsourcekind", native_enum=False, length=8),
            nullable=False,
        ),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
        sa.Column("created_at", infracms.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organisation_id", "kind", "name"),
    )
    with op.batch_alter_table("secret_grant", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_secret_grant_organisation_id"), ["organisation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("secret_grant", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_secret_grant_organisation_id"))
    op.drop_table("secret_grant")
    with op.batch_alter_table("credential", schema=None) as batch_op:
        batch_op.drop_column("scope")
