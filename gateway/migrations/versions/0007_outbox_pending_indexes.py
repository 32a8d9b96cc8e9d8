"""outbox indexes for the pending items: the worker's poll and a booking's reconcile clean-up

Both queries filtered every pending item through ``ix_outbox_state`` (or walked
``ix_outbox_next_attempt_at`` over the whole table), so their cost grew with the pending
reminders a big deployment holds: with a million bookings in the table (bench/bench_growth.py)
the poll took 2.2 s and each booking's ``_drop_reconcile`` 19 ms. With these, the poll is an
index range of the due items in order (``state, next_attempt_at, id``) and the clean-up
finds the in-flight reconcile items of one council (``state, kind, council``). Additive: an
older release keeps working on the new schema.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_state_due", "outbox", ["state", "next_attempt_at", "id"])
    op.create_index("ix_outbox_state_kind", "outbox", ["state", "kind", "council"])


def downgrade() -> None:
    op.drop_index("ix_outbox_state_kind", table_name="outbox")
    op.drop_index("ix_outbox_state_due", table_name="outbox")
