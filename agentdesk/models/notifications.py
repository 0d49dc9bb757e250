"""The notification outbox and integration API keys: server-side only, never synced.

A notification is written in the same transaction as the change that causes it (a ticket
created, assigned, resolved ...), already rendered, so a mail-server outage loses nothing and a
later template edit never rewrites what a customer was promised. Each recipient gets a delivery
row of its own with a Message-ID fixed at creation: the sender works per delivery, so a failure
for one recipient never resends to the others, and a retry re-uses the same Message-ID.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, new_id, str_enum, utcnow


class NotificationKind(StrEnum):
    ACKNOWLEDGEMENT = "acknowledgement"
    ASSIGNMENT = "assignment"
    REPLY = "reply"
    EXTRA_CHARGES = "extra_charges"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    RESOLUTION = "resolution"
    REDIRECT_REQUESTER = "redirect_requester"
    REDIRECT_CONTACTS = "redirect_contacts"
    LATE_CANCELLATION = "late_cancellation"
    ALLOWANCE_COORDINATORS = "allowance_coordinators"
    PREPAID_EXPIRY = "prepaid_expiry"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Notification(Base):
    """One message the team owes someone, rendered when the change happened."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_ticket_kind", "ticket_id", "kind"),
        # The outbox newest first, a page at a time (the Notifications view).
        Index("ix_notifications_tenant_created", "tenant_id", "created_at"),
        UniqueConstraint("tenant_id", "once_key", name="uq_notifications_once_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[NotificationKind] = mapped_column(str_enum(NotificationKind, "notification_kind"))
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), default=None
    )
    subject: Mapped[str] = mapped_column(String(400))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Who or what caused it (a user id, "portal", an integration's name): for the history.
    cause: Mapped[str] = mapped_column(String(200), default="")
    #: Set for a message owed once whatever happens (an expiry warning: its block and
    #: threshold): the unique constraint makes a second one fail, in any process, at any time.
    once_key: Mapped[str | None] = mapped_column(String(200), default=None)


class NotificationDelivery(Base):
    """One recipient of one notification: the unit the sender claims, sends and retries."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("notification_id", "email", name="uq_notification_deliveries_recipient"),
        UniqueConstraint("message_id", name="uq_notification_deliveries_message_id"),
        # The sender's claim: due deliveries in order of when they are due.
        Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    notification_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    #: The contact it went to, when it went to a contact (history, "what was sent to whom").
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), default=None
    )
    #: Fixed when the delivery is created: a retry re-sends the same Message-ID, so a receiving
    #: system can tell a repeat from a new message.
    message_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.QUEUED
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class ApiKey(Base):
    """An integration's key for the intake API: shown once, stored only as a SHA-256 hash."""

    __tablename__ = "api_keys"
    __table_args__ = (
        UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
        UniqueConstraint("tenant_id", "name", name="uq_api_keys_tenant_name"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    #: The first characters of the key, to tell keys apart in a list (not enough to use one).
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Why keys carry extra data at all: room for per-key limits without another migration.
    settings: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class NotificationTemplate(Base):
    """A team's own wording for one kind of notification, edited by its leads; a kind without
    a row uses the built-in template (``server.notifications.templates.SOURCES``). Only the
    subject and the bodies: the footer and the HTML frame are always the built-in ones."""

    __tablename__ = "notification_templates"
    __table_args__ = (UniqueConstraint("tenant_id", "kind", name="uq_notification_templates_kind"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[NotificationKind] = mapped_column(
        str_enum(NotificationKind, "notification_template_kind")
    )
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
