"""Tickets, their append-only history and their waiting-on-customer periods."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    FromClause,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    and_,
    bindparam,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import BindParameter

from ..policy.workflow import OPEN_STATUSES
from .base import Base, SyncedMixin, str_enum, synced_indexes, utcnow


class TicketStatus(StrEnum):
    """The workflow of seed 002: submitted -> reviewed and severity assessed -> customer told who
    has it and what happens next -> completed and customer notified. ``redirected`` is seed 003's
    request from a non-validated contact: recorded, never worked."""

    NEW = "new"
    TRIAGED = "triaged"
    IN_PROGRESS = "in_progress"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REDIRECTED = "redirected"


#: The open statuses in one fixed order. The partial index ``ix_tickets_open`` lists them in
#: this order, and a query that means to read it repeats :func:`open_ticket` (SQLite uses a
#: partial index only for a query whose WHERE contains the index's terms as written, IN-list
#: order included, and with literal values: a bound ``?`` does not match).
OPEN_STATUS_ORDER: tuple[TicketStatus, ...] = tuple(sorted(TicketStatus(s) for s in OPEN_STATUSES))


class Level(StrEnum):
    """Seed 003: Level 1 for general usage, Level 2 for API, SSO, scripting, integrations."""

    L1 = "L1"
    L2 = "L2"


class TicketKind(StrEnum):
    """General support is never billable; 1-on-1 time is, from the escalation on (seed 001)."""

    GENERAL = "general"
    ONE_ON_ONE = "one_on_one"


class EventKind(StrEnum):
    CREATED = "created"
    NOTE = "note"
    REPLY = "reply"
    STATUS = "status"
    TRIAGE = "triage"
    ASSIGNMENT = "assignment"
    FIELD_CHANGE = "field_change"
    REDIRECT = "redirect"
    ESCALATION = "escalation"
    NOTIFICATION = "notification"
    EXTRA_CHARGES = "extra_charges"


class Ticket(SyncedMixin, Base):
    __tablename__ = "tickets"
    __table_args__ = synced_indexes(
        "tickets",
        # The work queue: open tickets by effective urgency, plan rank, arrival, id.
        Index(
            "ix_tickets_queue", "tenant_id", "status", "urgency", "plan_rank", "arrived_at", "id"
        ),
        Index("ix_tickets_assignee_status", "assignee_id", "status"),
        # An organisation's tickets by arrival: counting this year's conversations (seed 000)
        # is an index-only range scan (status and deleted decide what counts). Its leading
        # column serves every by-organisation lookup too (the foreign key's RESTRICT check
        # included), so there is no separate organisation index.
        Index(
            "ix_tickets_organisation_arrived", "organisation_id", "arrived_at", "status", "deleted"
        ),
        # The dashboard's SLA instants, index-only: unanswered open tickets by their due instant
        # (the next to breach: ``(sla_due_at, id)`` in order, so LIMIT stops early), and the
        # first responses of a range with everything their statistics read (migration 0012).
        Index(
            "ix_tickets_sla",
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
        ),
        # Tickets of a status by arrival: the queue's status views, the oldest untriaged or
        # redirected request, and the open tickets crossing an ageing edge as the clock moves
        # (the dashboard's incremental refresh), as index ranges (narrowed by migration 0012:
        # the open queue's figures read ix_tickets_open).
        Index("ix_tickets_dashboard", "status", "deleted", "arrived_at", "id"),
        # The tickets turning at risk between two refreshes of the dashboard (migration 0012).
        Index("ix_tickets_risk", "sla_risk_at", "id"),
        # Resolutions of the last days (the dashboard's days-to-clear rate) as an index-only
        # range scan.
        Index("ix_tickets_resolved", "resolved_at", "deleted"),
        CheckConstraint("stated_urgency BETWEEN 1 AND 4", name="stated_urgency_range"),
        CheckConstraint("tier IS NULL OR tier BETWEEN 1 AND 4", name="tier_range"),
        CheckConstraint("urgency BETWEEN 1 AND 4", name="urgency_range"),
        CheckConstraint(
            "extra_charge_estimate IS NULL OR extra_charge_estimate >= 0",
            name="extra_charge_non_negative",
        ),
    )

    subject: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[str] = mapped_column(String(16))
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT")
    )
    requester_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contacts.id", ondelete="RESTRICT"), index=True
    )
    #: What the customer said when submitting (1 = production down ... 4 = cosmetic).
    stated_urgency: Mapped[int] = mapped_column(SmallInteger)
    #: The coordinator's assessed severity tier; None until triaged.
    tier: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    #: Denormalised sort columns (tier, else stated urgency; the plan's rank at arrival) so the
    #: queue order is one index scan.
    urgency: Mapped[int] = mapped_column(SmallInteger)
    plan_rank: Mapped[int] = mapped_column(SmallInteger, default=0)
    level: Mapped[Level] = mapped_column(str_enum(Level, "ticket_level"), default=Level.L1)
    kind: Mapped[TicketKind] = mapped_column(
        str_enum(TicketKind, "ticket_kind"), default=TicketKind.GENERAL
    )
    status: Mapped[TicketStatus] = mapped_column(
        str_enum(TicketStatus, "ticket_status"), default=TicketStatus.NEW
    )
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    arrived_at: Mapped[datetime]
    first_response_at: Mapped[datetime | None] = mapped_column(default=None)
    #: When the first response is due and when the ticket turns at risk
    #: (:func:`agentdesk.policy.sla.response_instants`), kept current by the mutators whenever
    #: an input changes; None while it waits on the customer (the due time moves then) and for
    #: redirected tickets (never worked). Dashboards count SLA states as ranges over them.
    sla_due_at: Mapped[datetime | None] = mapped_column(default=None)
    sla_risk_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Business seconds the first response took (pauses excluded), stored with it so that
    #: response-time percentiles over a range need no calendar walk per ticket.
    first_response_business_s: Mapped[int | None] = mapped_column(Integer, default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    #: When general support escalated to 1-on-1: time is billable from this instant (seed 001).
    escalated_at: Mapped[datetime | None] = mapped_column(default=None)
    extra_charges: Mapped[bool] = mapped_column(default=False)
    extra_charge_estimate: Mapped[Decimal | None] = mapped_column(Numeric(12, 2), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


def open_ticket(tickets: FromClause | None = None) -> ColumnElement[bool]:
    """A live ticket in the work queue, written as ``ix_tickets_open``'s WHERE (the literal
    statuses of :data:`OPEN_STATUS_ORDER`): a query with this clause can read that index.
    ``tickets``: another FROM for the tickets table (one with an index hint), by column name."""
    statuses: BindParameter[Any] = bindparam(
        "open_statuses", list(OPEN_STATUS_ORDER), expanding=True, literal_execute=True
    )
    if tickets is None:
        return and_(Ticket.deleted == false(), Ticket.status.in_(statuses))
    return and_(tickets.c.deleted == false(), tickets.c.status.in_(statuses))


# The dashboard's open queue (migration 0012): only open tickets, in assignee order, with every
# column its figures read, so "by assignee" is one index-only scan with no sort, and re-reading
# a few tickets' contributions is an index read. Partial: closed tickets (a year of them and
# counting) are not in it, so its size follows the queue, not the history.
Index(
    "ix_tickets_open",
    Ticket.assignee_id,
    Ticket.tier,
    Ticket.level,
    Ticket.organisation_id,
    Ticket.status,
    Ticket.arrived_at,
    Ticket.first_response_at,
    Ticket.sla_due_at,
    Ticket.sla_risk_at,
    Ticket.id,
    Ticket.deleted,
    sqlite_where=open_ticket(),
    postgresql_where=open_ticket(),
)

# The open queue by organisation (migration 0013): its per-plan counts are one count per
# organisation, mapped to plans once, instead of an organisation look-up per open ticket. With
# the WHERE's columns, so SQLite reads it index-only.
Index(
    "ix_tickets_open_org",
    Ticket.organisation_id,
    Ticket.status,
    Ticket.deleted,
    sqlite_where=open_ticket(),
    postgresql_where=open_ticket(),
)


class TicketEvent(SyncedMixin, Base):
    """One entry of a ticket's history. Append-only: events are never edited."""

    __tablename__ = "ticket_events"
    __table_args__ = synced_indexes(
        "ticket_events",
        Index("ix_ticket_events_ticket_at", "ticket_id", "at"),
        # "What I touched lately" (the queue's Recent view): a range read of one author's
        # events instead of a scan of every history.
        Index("ix_ticket_events_author_at", "author_id", "at"),
    )

    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    kind: Mapped[EventKind] = mapped_column(str_enum(EventKind, "event_kind"))
    author_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Position among the events one mutation wrote at the same instant: the history is ordered
    #: by (at, version, seq), the same on every desktop.
    seq: Mapped[int] = mapped_column(SmallInteger, default=0)
    body: Mapped[str] = mapped_column(Text, default="")
    #: Structured detail: old/new values, notified contacts, estimates.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WaitingPeriod(SyncedMixin, Base):
    """A stretch in which the ticket waited on the customer: it pauses the SLA clock."""

    __tablename__ = "waiting_periods"
    __table_args__ = synced_indexes(
        "waiting_periods",
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="end_after_start"),
    )

    ticket_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
