"""prepaid expiry notifications

Expiry warnings for prepaid 1-on-1 hours (seed 001): a new notification kind, and a key that
makes a notification owed once (per block and threshold) unique, so restarts and several server
processes never queue it twice.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 23:55:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
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
)
_NEW_KINDS = (*_KINDS, "prepaid_expiry")


def _kinds(kinds: tuple[str, ...]) -> str:
    return "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_notifications_notification_kind"), type_="check")
        batch_op.create_check_constraint("notification_kind", _kinds(_NEW_KINDS))
        batch_op.add_column(sa.Column("once_key", sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint(
            op.f("uq_notifications_once_key"), ["tenant_id", "once_key"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM notifications WHERE kind = 'prepaid_expiry'")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_notifications_once_key"), type_="unique")
        batch_op.drop_column("once_key")
        batch_op.drop_constraint(op.f("ck_notifications_notification_kind"), type_="check")
        batch_op.create_check_constraint("notification_kind", _kinds(_KINDS))
