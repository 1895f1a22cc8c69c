"""credential public key: the OpenSSH public line of an SSH key credential, to copy

Revision ID: 0013_credential_public_key
Revises: 0012_user_lifecycle
Create Date: 2026-12-07 17:40:00.000000

Filled when a key is saved or replaced; credentials saved before stay empty until
they are replaced (the secret is sealed, so a migration cannot read it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infracms.models.base

revision: str = "0013_credential_public_key"
down_revision: str | None = "0012_user_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("credential") as batch:
        batch.add_column(sa.Column("public_key", sa.String(length=16384), nullable=True))
        batch.add_column(
            sa.Column("replaced_at", infracms.models.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("credential") as batch:
        batch.drop_column("replaced_at")
        batch.drop_column("public_key")
