"""ticket events by author and time

The queue's "Recent" view lists the tickets a person touched lately: the events they wrote
since a moment, read as a range of (author_id, at) rather than a scan of every ticket's
history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 21:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_events_author_at", ["author_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_events_author_at")
