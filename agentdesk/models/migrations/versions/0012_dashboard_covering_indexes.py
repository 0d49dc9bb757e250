"""dashboard reads index-only

The team lead's dashboard read ticket rows where an index could answer (docs/performance.md,
"Quiet re-measure"): the month of first responses did a row read per response after its
``ix_tickets_sla`` range, the allowance count a row read per ticket of the year after its
``ix_tickets_organisation_arrived`` range, and the open queue's "by assignee" figures sorted the
whole queue in a temporary B-tree. Now:

* ``ix_tickets_sla`` also holds what the first-response statistics read, and ``id`` right after
  the due instant (the next tickets to breach come out of the index in order);
* ``ix_tickets_organisation_arrived`` also holds status and deleted (what the count judges),
  and ``ix_tickets_resolved`` deleted (the last 14 days' resolutions);
* ``ix_tickets_open`` is a partial index of the open queue only, in assignee order, so
  ``ix_tickets_dashboard`` (which held those columns for the old scan) is narrowed to status and
  arrival (the status views, the oldest of a status, the tickets crossing an ageing edge);
* ``ix_tickets_risk``: the tickets turning at risk between two refreshes, as a range.

Indexes only: no row changes, so a desktop's replica keeps its rows (``REPLICA_RELOAD``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: Whether a replica migrated across this revision must reload its rows from the server
#: (read by :func:`agentdesk.models.migrate.reload_needed`): not for new indexes.
REPLICA_RELOAD = False

_OPEN = "status IN ('in_progress', 'new', 'triaged', 'waiting_on_customer')"
_OPEN_COLUMNS = [
    "assignee_id",
    "tier",
    "level",
    "organisation_id",
    "status",
    "arrived_at",
    "first_response_at",
    "sla_due_at",
    "sla_risk_at",
    "id",
    "deleted",
]
_DASHBOARD_BEFORE = [
    "status",
    "deleted",
    "tier",
    "level",
    "organisation_id",
    "assignee_id",
    "arrived_at",
    "first_response_at",
    "sla_due_at",
    "sla_risk_at",
]
_SLA_BEFORE = ["first_response_at", "status", "sla_due_at", "sla_risk_at"]
_SLA_AFTER = [
    "first_response_at",
    "status",
    "sla_due_at",
    "id",
    "deleted",
    "sla_risk_at",
    "first_response_business_s",
    "urgency",
    "organisation_id",
    "assignee_id",
]


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_sla")
        batch_op.create_index("ix_tickets_sla", _SLA_AFTER, unique=False)
        batch_op.drop_index("ix_tickets_organisation_arrived")
        batch_op.create_index(
            "ix_tickets_organisation_arrived",
            ["organisation_id", "arrived_at", "status", "deleted"],
            unique=False,
        )
        batch_op.drop_index("ix_tickets_resolved")
        batch_op.create_index("ix_tickets_resolved", ["resolved_at", "deleted"], unique=False)
        batch_op.drop_index("ix_tickets_dashboard")
        batch_op.create_index(
            "ix_tickets_dashboard", ["status", "deleted", "arrived_at", "id"], unique=False
        )
        batch_op.create_index("ix_tickets_risk", ["sla_risk_at", "id"], unique=False)
        batch_op.create_index(
            "ix_tickets_open",
            _OPEN_COLUMNS,
            unique=False,
            sqlite_where=sa.text(f"deleted = 0 AND {_OPEN}"),
            postgresql_where=sa.text(f"deleted = false AND {_OPEN}"),
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_open")
        batch_op.drop_index("ix_tickets_risk")
        batch_op.drop_index("ix_tickets_dashboard")
        batch_op.create_index("ix_tickets_dashboard", _DASHBOARD_BEFORE, unique=False)
        batch_op.drop_index("ix_tickets_resolved")
        batch_op.create_index("ix_tickets_resolved", ["resolved_at"], unique=False)
        batch_op.drop_index("ix_tickets_organisation_arrived")
        batch_op.create_index(
            "ix_tickets_organisation_arrived", ["organisation_id", "arrived_at"], unique=False
        )
        batch_op.drop_index("ix_tickets_sla")
        batch_op.create_index("ix_tickets_sla", _SLA_BEFORE, unique=False)
