"""tickets by organisation and arrival

Counting an organisation's conversations in the current calendar year is a range scan over
(organisation_id, arrived_at); that index also serves every by-organisation lookup, so it
replaces the single-column one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 07:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tickets_organisation_arrived", ["organisation_id", "arrived_at"], unique=False
        )
        batch_op.drop_index(batch_op.f("ix_tickets_organisation_id"))


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tickets_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.drop_index("ix_tickets_organisation_arrived")
