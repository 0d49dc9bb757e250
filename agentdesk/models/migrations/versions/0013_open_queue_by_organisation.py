"""the open queue by organisation

The dashboard's per-plan counts of the open queue joined each open ticket to its organisation:
a third of the open queue's scan (docs/performance.md, stop 21). ``ix_tickets_open_org`` is a
partial index of the open queue in organisation order (with its WHERE's columns, so SQLite
reads it index-only), so the counts are one pass
grouped by organisation, each organisation's count then added to its plan's.

An index only: no row changes, so a desktop's replica keeps its rows (``REPLICA_RELOAD``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 22:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

#: Whether a replica migrated across this revision must reload its rows from the server
#: (read by :func:`agentdesk.models.migrate.reload_needed`): not for a new index.
REPLICA_RELOAD = False

_OPEN = "status IN ('in_progress', 'new', 'triaged', 'waiting_on_customer')"


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tickets_open_org",
            ["organisation_id", "status", "deleted"],
            unique=False,
            sqlite_where=sa.text(f"deleted = 0 AND {_OPEN}"),
            postgresql_where=sa.text(f"deleted = false AND {_OPEN}"),
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_open_org")
