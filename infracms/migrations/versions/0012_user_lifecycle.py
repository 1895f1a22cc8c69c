"""user lifecycle: one-time passwords after a reset, and node-scoped API tokens

Revision ID: 0012_user_lifecycle
Revises: 0011_host_run_state
Create Date: 2026-12-07 17:40:00.000000

``user.password_must_change`` is set by an admin's reset (or ``infracms user
reset-password``): the one-time password must be replaced at the next sign-in.
``apitoken.scope`` is ``organisation`` (every token that exists: one organisation and a
role, as before) or ``node`` (node-level actions of a node admin, no organisation and no
role), so ``organisation_id`` and ``role`` become nullable.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_user_lifecycle"
down_revision: str | None = "0011_host_run_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = sa.Enum(
    "owner", "operator", "editor", "viewer", "auditor", name="role", native_enum=False, length=16
)
SCOPE = sa.Enum("organisation", "node", name="tokenscope", native_enum=False, length=16)


def upgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "password_must_change", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("apitoken", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scope", SCOPE, nullable=False, server_default="organisation")
        )
        batch_op.alter_column("organisation_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.alter_column("role", existing_type=ROLE, nullable=True)


def downgrade() -> None:
    # node tokens have no organisation to keep: they go
    op.execute(sa.text("DELETE FROM apitoken WHERE scope = 'node'"))
    with op.batch_alter_table("apitoken", schema=None) as batch_op:
        batch_op.alter_column("role", existing_type=ROLE, nullable=False)
        batch_op.alter_column("organisation_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_column("scope")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("password_must_change")
