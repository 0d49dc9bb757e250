"""What the billable timer reads from the replica: the running timer, the selected ticket, today's
work for the customer and the entries that may still be corrected, Qt-free.

The running timer *is* the signed-in user's :class:`~agentdesk.models.RunningTimer` row
(``deleted`` False), so nothing here is cached: :func:`read_timer` is one short transaction of a
few indexed reads that a worker thread can run after each pull touching the timer's rows. The
figures built on top (today's bill, the prepaid balance) are :mod:`.balances`'s, written once
there.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Organisation, RunningTimer, Tenant, Ticket, TicketKind, TimeKind
from ..policy.billing import WorkItem
from .balances import RunningInfo, clipped_work, day_bounds, live_entries, valid_zone, zone_of

__all__ = [
    "RECENT_ENTRIES",
    "Clock",
    "EntryInfo",
    "TicketInfo",
    "TimerView",
    "entry_problem",
    "read_running",
    "read_ticket",
    "read_timer",
    "recent_entries",
    "team_zone",
]

Clock = Callable[[], datetime]

#: How far back the correction and void dialogs list entries.
RECENT_ENTRIES = timedelta(days=30)


@dataclass(frozen=True)
class TicketInfo:
    """The selected ticket, as far as the timer cares."""

    ticket_id: uuid.UUID
    subject: str
    organisation_id: uuid.UUID
    organisation_name: str
    kind: TicketKind
    escalated_at: datetime | None


@dataclass(frozen=True)
class EntryInfo:
    """A time entry that can still be corrected or voided (not voided yet)."""

    entry_id: uuid.UUID
    organisation_id: uuid.UUID
    ticket_id: uuid.UUID | None
    person_id: uuid.UUID
    kind: TimeKind
    started_at: datetime
    ended_at: datetime
    billable: bool
    note: str


@dataclass(frozen=True)
class TimerView:
    """Everything the timer shows, read in one transaction (see :func:`read_timer`)."""

    tz: str
    running: RunningInfo | None
    ticket: TicketInfo | None
    #: The running timer's ticket (its kind and escalation decide a billable split).
    running_ticket: TicketInfo | None
    #: Today's totals are for the customer being timed, else the selected ticket's.
    customer: tuple[uuid.UUID, str] | None
    day: date
    #: The customer's live work of the team's local ``day``, clipped to it.
    items: tuple[WorkItem, ...]


def entry_problem(start: datetime, end: datetime, now: datetime) -> str | None:
    """What is wrong with a manual time entry, in words (None: nothing)."""
    if end < start:
        return "The end is before the start."
    if end == start:
        return "The entry is empty: the end equals the start."
    if start > now:
        return "The start is in the future: record time once it has been worked."
    if end > now:
        return "The end is in the future: record time once it has been worked."
    return None


def team_zone(session: Session, tenant_id: uuid.UUID | None) -> str:
    """The team's zone name (UTC when unknown here), which decides what "today" is."""
    tenant = session.get(Tenant, tenant_id) if tenant_id is not None else None
    return valid_zone(tenant.timezone if tenant is not None else "UTC")


def read_running(session: Session, user_id: uuid.UUID | None) -> RunningInfo | None:
    """The user's running timer (one per person), or None."""
    if user_id is None:
        return None
    timer = session.scalar(
        select(RunningTimer).where(
            RunningTimer.person_id == user_id, RunningTimer.deleted.is_(False)
        )
    )
    if timer is None:
        return None
    org = session.get(Organisation, timer.organisation_id)
    ticket = session.get(Ticket, timer.ticket_id) if timer.ticket_id is not None else None
    return RunningInfo(
        timer_id=timer.id,
        organisation_id=timer.organisation_id,
        organisation_name=org.name if org is not None else "unknown customer",
        ticket_id=timer.ticket_id,
        ticket_subject=ticket.subject if ticket is not None else None,
        started_at=timer.started_at,
        billable=timer.billable,
    )


def read_ticket(session: Session, ticket_id: uuid.UUID | None) -> TicketInfo | None:
    """The ticket as the timer needs it (None: none selected, or deleted)."""
    if ticket_id is None:
        return None
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or ticket.deleted:
        return None
    org = session.get(Organisation, ticket.organisation_id)
    return TicketInfo(
        ticket_id=ticket.id,
        subject=ticket.subject,
        organisation_id=ticket.organisation_id,
        organisation_name=org.name if org is not None else "unknown customer",
        kind=ticket.kind,
        escalated_at=ticket.escalated_at,
    )


def read_timer(
    session: Session,
    *,
    user_id: uuid.UUID | None,
    tenant_id: uuid.UUID | None,
    ticket_id: uuid.UUID | None,
    now: datetime,
) -> TimerView:
    """The running timer (and its ticket), the selected ticket and today's entries for the
    customer: one short read, run on a worker thread by the desktop."""
    tz = team_zone(session, tenant_id)
    running = read_running(session, user_id)
    ticket = read_ticket(session, ticket_id)
    customer: tuple[uuid.UUID, str] | None = None
    if running is not None:
        customer = running.organisation_id, running.organisation_name
    elif ticket is not None:
        customer = ticket.organisation_id, ticket.organisation_name
    day = now.astimezone(zone_of(tz)).date()
    items: tuple[WorkItem, ...] = ()
    if customer is not None:
        since, until = day_bounds(day, tz)
        items = tuple(clipped_work(session, customer[0], since, until))
    running_ticket = (
        read_ticket(session, running.ticket_id)
        if running is not None and running.ticket_id is not None
        else None
    )
    return TimerView(tz, running, ticket, running_ticket, customer, day, items)


def recent_entries(
    session: Session,
    org_id: uuid.UUID,
    now: datetime,
    *,
    person_id: uuid.UUID | None = None,
    limit: int = 100,
) -> list[EntryInfo]:
    """The organisation's live entries of the last :data:`RECENT_ENTRIES`, newest first;
    ``person_id`` keeps only that person's (someone who may not correct others' time)."""
    entries = live_entries(session, org_id, now - RECENT_ENTRIES, now + timedelta(days=1))
    chosen = [e for e in entries if person_id is None or e.person_id == person_id]
    chosen.sort(key=lambda e: (e.started_at, e.id), reverse=True)
    return [
        EntryInfo(
            e.id,
            e.organisation_id,
            e.ticket_id,
            e.person_id,
            e.kind,
            e.started_at,
            e.ended_at,
            e.billable,
            e.note,
        )
        for e in chosen[:limit]
    ]
