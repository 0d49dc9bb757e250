"""appointments carry the extra engineer; time entries say who recorded them

Seed 001 bills an extra engineer "in addition". The engineer used to be booked as a second
appointment recognised by its note; a column lets delivery bill both people from one booking
and lets the timesheet and the statement show the extra engineer without parsing text.

A time entry's ``person_id`` is whose time it is; a correction or a void is often made by a lead
on someone else's entry, and "who corrected it and why" belongs on the timesheet and in the
statement's history: ``recorded_by_id`` keeps who wrote the entry (NULL for older rows).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extra_engineer_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_appointments_extra_engineer_id_users"),
            "users",
            ["extra_engineer_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("time_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recorded_by_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_time_entries_recorded_by_id_users"),
            "users",
            ["recorded_by_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("time_entries", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_time_entries_recorded_by_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("recorded_by_id")
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_appointments_extra_engineer_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("extra_engineer_id")
