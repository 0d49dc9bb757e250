"""ticket SLA instants

Each ticket stores when its first response is due and when it turns at risk, so the dashboard's
on track / at risk / breached counts are range queries over ``ix_tickets_sla`` instead of a
business-time walk per ticket, and the business time its first response took (percentiles over
a range without a calendar walk per ticket); ``ix_tickets_resolved`` makes the recent
resolution rate a range; ``ix_tickets_dashboard`` covers the open-queue aggregates. Existing
rows start with NULL until a mutation or an admin change recomputes them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentdesk.models.base import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sla_due_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sla_risk_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("first_response_business_s", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_tickets_sla",
            ["first_response_at", "status", "sla_due_at", "sla_risk_at"],
            unique=False,
        )
        batch_op.create_index("ix_tickets_resolved", ["resolved_at"], unique=False)
        batch_op.create_index(
            "ix_tickets_dashboard",
            [
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
            ],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_dashboard")
        batch_op.drop_index("ix_tickets_resolved")
        batch_op.drop_index("ix_tickets_sla")
        batch_op.drop_column("first_response_business_s")
        batch_op.drop_column("sla_risk_at")
        batch_op.drop_column("sla_due_at")
