"""notifications by tenant and time

The Notifications view reads the outbox newest first, a page at a time (a keyset cursor on the
notification's time, the recipient and the delivery id). With the rows read as a range of
(tenant_id, created_at), a page costs the rows it returns rather than a sort of the whole
outbox: on 200,000 deliveries the first page went from ~300 to ~130 ms on PostgreSQL and from
~420 to ~100 ms on SQLite (docs/performance.md).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 12:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

#: Read by :func:`agentdesk.models.migrate.reload_needed`: a new index changes no row, so a
#: desktop's replica keeps its rows.
REPLICA_RELOAD = False


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_tenant_created", ["tenant_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_tenant_created")
