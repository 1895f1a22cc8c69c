"""notify: notification channels, rules, people's subscriptions and the outbox

Revision ID: 0017_notify
Revises: 0016_schedule
Create Date: 2026-12-07 20:12:44.024950

One outbox row per (notification, destination), written in the transaction of the
event it reports and delivered at least once under its idempotency key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infracms.models.base

revision: str = "0017_notify"
down_revision: str | None = "0016_schedule"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_channel",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("webhook", "email", name="channelkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column(
            "body_format",
            sa.Enum("json", "slack", name="bodyformat", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("sign_with_node_key", sa.Boolean(), nullable=False),
        sa.Column("hmac_secret_sealed", sa.Text(), nullable=True),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", infracms.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organisation_id", "name"),
    )
    with op.batch_alter_table("notification_channel", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_channel_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "notification_subscription",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "run_failed",
                "run_succeeded",
                "drift_found",
                "drift_cleared",
                "approval_requested",
                "approval_granted",
                "approval_refused",
                "approval_expired",
                "break_glass_used",
                "provision_requested",
                "peer_catalog_stale",
                "audit_check_failed",
                "witness_minimum_unmet",
                name="notificationkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("created_at", infracms.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "organisation_id", "kind"),
    )
    with op.batch_alter_table("notification_subscription", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_subscription_organisation_id"),
            ["organisation_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_notification_subscription_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "run_failed",
                "run_succeeded",
                "drift_found",
                "drift_cleared",
                "approval_requested",
                "approval_granted",
                "approval_refused",
                "approval_expired",
                "break_glass_used",
                "provision_requested",
                "peer_catalog_stale",
                "audit_check_failed",
                "witness_minimum_unmet",
                name="notificationkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("destination", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending", "delivered", "failed", name="deliverystate", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at", infracms.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("claimed_until", infracms.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("attempt_log", sa.JSON(), nullable=False),
        sa.Column("created_at", infracms.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", infracms.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["channel_id"], ["notification_channel.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_outbox_channel_id"), ["channel_id"], unique=False
        )
        batch_op.create_index(
            "ix_notification_outbox_due", ["state", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notification_outbox_notification_id"), ["notification_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notification_outbox_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notification_outbox_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "notification_rule",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=True),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "run_failed",
                "run_succeeded",
                "drift_found",
                "drift_cleared",
                "approval_requested",
                "approval_granted",
                "approval_refused",
                "approval_expired",
                "break_glass_used",
                "provision_requested",
                "peer_catalog_stale",
                "audit_check_failed",
                "witness_minimum_unmet",
                name="notificationkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("created_at", infracms.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["notification_channel.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_id", "kind"),
    )
    with op.batch_alter_table("notification_rule", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_rule_channel_id"), ["channel_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notification_rule_organisation_id"), ["organisation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notification_rule", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_rule_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_notification_rule_channel_id"))

    op.drop_table("notification_rule")
    with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_outbox_user_id"))
        batch_op.drop_index(batch_op.f("ix_notification_outbox_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_notification_outbox_notification_id"))
        batch_op.drop_index("ix_notification_outbox_due")
        batch_op.drop_index(batch_op.f("ix_notification_outbox_channel_id"))

    op.drop_table("notification_outbox")
    with op.batch_alter_table("notification_subscription", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_subscription_user_id"))
        batch_op.drop_index(batch_op.f("ix_notification_subscription_organisation_id"))

    op.drop_table("notification_subscription")
    with op.batch_alter_table("notification_channel", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_channel_organisation_id"))

    op.drop_table("notification_channel")
