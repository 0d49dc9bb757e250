"""Prepaid hour blocks, appointments, the time ledger and running timers (seed 001).

The hour balance is never stored: it is computed from purchases and the ledger by
:mod:`agentdesk.policy.billing`, so no client can write a balance.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy import false as sql_false
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, SyncedMixin, str_enum, synced_indexes, utcnow


class TimeKind(StrEnum):
    UNSCHEDULED = "unscheduled"
    SCHEDULED_BLOCK = "scheduled_block"
    LATE_CANCELLATION = "late_cancellation"


class AppointmentStatus(StrEnum):
    SCHEDULED = "scheduled"
    HELD = "held"
    CANCELLED = "cancelled"


class HourBlock(SyncedMixin, Base):
    """A purchase of 1-on-1 hours: usable for 90 days, never refunded."""

    __tablename__ = "hour_blocks"
    __table_args__ = synced_indexes(
        "hour_blocks",
        Index("ix_hour_blocks_org_purchased", "organisation_id", "purchased_at"),
        CheckConstraint("minutes > 0", name="minutes_positive"),
        CheckConstraint("price IS NULL OR price >= 0", name="price_non_negative"),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE")
    )
    purchased_at: Mapped[datetime]
    minutes: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2), default=None)
    recorded_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    note: Mapped[str] = mapped_column(Text, default="")


class Appointment(SyncedMixin, Base):
    """A pre-scheduled 1-on-1 block; cancelled less than 24 h ahead bills 30 minutes."""

    __tablename__ = "appointments"
    __table_args__ = synced_indexes(
        "appointments",
        Index("ix_appointments_org_starts", "organisation_id", "starts_at"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE")
    )
    consultant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    #: An engineer the customer asked for on top of the consultant (seed 001: billed in
    #: addition): delivering the appointment bills the block for both of them.
    extra_engineer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), default=None
    )
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[AppointmentStatus] = mapped_column(
        str_enum(AppointmentStatus, "appointment_status"), default=AppointmentStatus.SCHEDULED
    )
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    note: Mapped[str] = mapped_column(Text, default="")


class TimeEntry(SyncedMixin, Base):
    """One fact of the time ledger. Append-only: a correction is a new entry that voids the
    earlier one (``voids_id``), so the history of what was billed is never rewritten."""

    __tablename__ = "time_entries"
    __table_args__ = synced_indexes(
        "time_entries",
        Index("ix_time_entries_org_started", "organisation_id", "started_at"),
        Index("ix_time_entries_person_started", "person_id", "started_at"),
        CheckConstraint("ended_at >= started_at", name="end_after_start"),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE")
    )
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), default=None
    )
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL"), default=None
    )
    kind: Mapped[TimeKind] = mapped_column(str_enum(TimeKind, "time_kind"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    billable: Mapped[bool] = mapped_column(Boolean, default=True)
    #: An engineer the customer asked for on top of the consultant: billed in addition.
    extra_engineer: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_false())
    voids_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("time_entries.id", ondelete="RESTRICT"), default=None, index=True
    )
    note: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16), default="timer")
    #: Who wrote the entry (``person_id`` is whose time it is): a lead correcting someone's
    #: time is shown as the one who corrected it. None on entries older than the column.
    recorded_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RunningTimer(SyncedMixin, Base):
    """A person's running timer, persisted the moment it starts so a crash loses nothing.

    Stopping it appends a :class:`TimeEntry` and tombstones this row in the same transaction.
    At most one live timer per person (a partial unique index, enforced on both engines).
    """

    __tablename__ = "running_timers"
    __table_args__ = synced_indexes(
        "running_timers",
        Index(
            "uq_running_timers_person_live",
            "person_id",
            unique=True,
            sqlite_where=text("NOT deleted"),
            postgresql_where=text("NOT deleted"),
        ),
    )

    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE")
    )
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), default=None
    )
    started_at: Mapped[datetime]
    billable: Mapped[bool] = mapped_column(Boolean, default=True)
