"""notification templates

A team's own wording per notification kind, edited by its leads (the built-in templates stay
the defaults). Server-side only.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 00:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import agentdesk.models.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_KINDS = (
    "acknowledgement",
    "assignment",
    "reply",
    "extra_charges",
    "waiting_on_customer",
    "resolution",
    "redirect_requester",
    "redirect_contacts",
    "late_cancellation",
    "allowance_coordinators",
    "prepaid_expiry",
)


def upgrade() -> None:
    op.create_table(
        "notification_templates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                *_KINDS,
                name="notification_template_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("updated_at", agentdesk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_notification_templates_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_notification_templates_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_templates")),
        sa.UniqueConstraint("tenant_id", "kind", name="uq_notification_templates_kind"),
    )


def downgrade() -> None:
    op.drop_table("notification_templates")
