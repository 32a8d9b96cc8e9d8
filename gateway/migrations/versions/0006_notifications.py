"""notifications and notification_receipts: each message sent to a resident (channel, event,
the event's snapshot, Notify's id) and GOV.UK Notify's delivery receipts (gateway/notifications.py)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("outbox_item", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("language", sa.String(length=4), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("notify_id", sa.String(length=64), nullable=True),
        sa.Column("notify_status", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("receipt_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("outbox_item", "channel", name="uq_notification_item"),
    )
    op.create_index("ix_notifications_reference", "notifications", ["reference"])
    op.create_index("ix_notifications_status", "notifications", ["status"])
    op.create_index("ix_notifications_notify_id", "notifications", ["notify_id"])
    op.create_table(
        "notification_receipts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("notify_id", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=True),
        sa.Column("notification_type", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("council", "notify_id", name="uq_notification_receipt"),
    )


def downgrade() -> None:
    op.drop_table("notification_receipts")
    op.drop_index("ix_notifications_notify_id", table_name="notifications")
    op.drop_index("ix_notifications_status", table_name="notifications")
    op.drop_index("ix_notifications_reference", table_name="notifications")
    op.drop_table("notifications")
