"""rate limit hits

The portal's per-address rate limit, counted in the database so that several server
processes behind one proxy enforce one limit (each process kept its own count before, so a
client got the limit once per process).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 23:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import agentdesk.models.base

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_hits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("at", agentdesk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_limit_hits")),
    )
    op.create_index("ix_rate_limit_hits_scope_key_at", "rate_limit_hits", ["scope", "key", "at"])


def downgrade() -> None:
    op.drop_index("ix_rate_limit_hits_scope_key_at", table_name="rate_limit_hits")
    op.drop_table("rate_limit_hits")
