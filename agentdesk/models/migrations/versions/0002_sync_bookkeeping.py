"""sync bookkeeping

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 03:57:47.377498
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import agentdesk.models.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_clients",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("last_mutation_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", agentdesk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", agentdesk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_sync_clients_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_sync_clients_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_clients")),
    )
    op.create_table(
        "mutation_records",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("mutation_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("field", sa.String(length=200), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("processed_at", agentdesk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["sync_clients.id"],
            name=op.f("fk_mutation_records_client_id_sync_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "mutation_id", name=op.f("pk_mutation_records")),
    )
    with op.batch_alter_table("mutation_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mutation_records_client_status", ["client_id", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("mutation_records", schema=None) as batch_op:
        batch_op.drop_index("ix_mutation_records_client_status")

    op.drop_table("mutation_records")
    op.drop_table("sync_clients")
