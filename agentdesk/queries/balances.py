"""Prepaid balances and today's totals for one customer: the timer's figures, Qt-free.

The ledger replay is bounded by the period asked, not by the data: every read takes only the
entries overlapping its window (today's local day; for a balance, the validity of the blocks
that still matter) and clips them to it (:func:`clipped_work`), so a hostile or ancient entry
costs no more than an ordinary one. The desktop runs these on a worker thread
(``ui.timer.widget``); ``bench/balance_bench.py`` measures them on five years of ledger.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import TimeEntry
from ..policy import billing
from ..policy.billing import DEFAULT_INCREMENT_MINUTES, DayBill, WorkItem, WorkKind, bill_days
from . import ledger
from .ledger import clipped_work, live_clauses

__all__ = [
    "Prepaid",
    "PrepaidFigures",
    "RunningInfo",
    "TodayTotals",
    "clipped_work",
    "day_bounds",
    "live_entries",
    "prepaid_balance",
    "prepaid_figures",
    "read_prepaid",
    "today_totals",
    "valid_zone",
    "with_running",
    "zone_of",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunningInfo:
    """The signed-in user's running timer, as read from the replica."""

    timer_id: uuid.UUID
    organisation_id: uuid.UUID
    organisation_name: str
    ticket_id: uuid.UUID | None
    ticket_subject: str | None
    started_at: datetime
    billable: bool


@dataclass(frozen=True)
class TodayTotals:
    """Today's bill for one customer, with the running timer counted provisionally."""

    organisation_id: uuid.UUID
    day: date
    raw: timedelta
    billed_minutes: int
    unscheduled_minutes: int
    increment_minutes: int

    @property
    def to_next_increment(self) -> timedelta:
        """Work left before the day's pooled time rounds up to one more increment."""
        return timedelta(minutes=self.unscheduled_minutes) - self.raw


def zone_of(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def valid_zone(tz: str) -> str:
    """The team's zone name, or UTC when the replica holds one this machine does not know."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown team time zone %r; counting days in UTC", tz)
        return "UTC"
    return tz


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    zone = zone_of(tz)
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone).astimezone(
        UTC
    )
    return start, end


def live_entries(
    session: Session, org_id: uuid.UUID, since: datetime, until: datetime
) -> list[TimeEntry]:
    """The organisation's live ledger entries touching [since, until) as ORM objects (the
    timer's list of recent entries to correct or void: a month, not the ledger), by the
    ledger's one rule of which entries count (:func:`.ledger.live_clauses`)."""
    return list(
        session.scalars(
            live_clauses(select(TimeEntry), TimeEntry, since, until).where(
                TimeEntry.organisation_id == org_id
            )
        )
    )


def with_running(
    items: Sequence[WorkItem],
    organisation_id: uuid.UUID,
    running: RunningInfo | None,
    person: str,
    now: datetime,
) -> list[WorkItem]:
    """The customer's work items plus the running timer so far, if it runs for them (counted
    provisionally: unscheduled time from its start to ``now``)."""
    work = list(items)
    if (
        running is not None
        and running.organisation_id == organisation_id
        and (now > running.started_at)
    ):
        work.append(
            WorkItem(
                customer_id=str(organisation_id),
                person=person,
                kind=WorkKind.UNSCHEDULED,
                start=running.started_at,
                end=now,
                billable=running.billable,
                id="running",
            )
        )
    return work


def today_totals(
    items: Sequence[WorkItem],
    organisation_id: uuid.UUID,
    day: date,
    tz: str,
    running: RunningInfo | None,
    person: str,
    now: datetime,
) -> TodayTotals:
    """Seed 001's bill for ``day``: the closed entries plus the running timer so far."""
    work = with_running(items, organisation_id, running, person, now)
    bill: DayBill | None = next((b for b in bill_days(work, tz=tz) if b.day == day), None)
    if bill is None:
        return TodayTotals(organisation_id, day, timedelta(0), 0, 0, DEFAULT_INCREMENT_MINUTES)
    return TodayTotals(
        organisation_id,
        day,
        bill.raw_unscheduled,
        bill.total_minutes,
        bill.unscheduled_minutes,
        bill.increment_minutes,
    )


@dataclass(frozen=True)
class Prepaid:
    """A customer's prepaid 1-on-1 hour blocks (seed 001: used within 90 days of purchase or
    forfeited, never refunded) and the ledger entries that draw on them, oldest block first.

    Only the blocks that still matter are kept: the ones not yet expired, and older ones whose
    validity overlaps theirs (a day's bill draws from the oldest valid block first), with the
    entries since the first of those. ``last_expired`` is set when every block has expired.
    """

    organisation_id: uuid.UUID
    blocks: tuple[billing.HourBlock, ...]
    items: tuple[WorkItem, ...]
    last_expired: datetime | None = None


def read_prepaid(session: Session, org_id: uuid.UUID, now: datetime) -> Prepaid | None:
    """The organisation's prepaid ledger (None: it never bought 1-on-1 hours), read through
    :mod:`.ledger` (its lean read of the entries, clipped to the window)."""
    blocks, _prices = ledger.read_blocks(session, org_id)
    if not blocks:
        return None
    since = ledger.replay_start(blocks, now, lookback=None)
    kept = tuple(b for b in blocks if b.expires_at > since and b.purchased_at <= now)
    if not any(b.expires_at > now for b in kept):
        return Prepaid(org_id, (), (), last_expired=max(b.expires_at for b in blocks))
    items = tuple(clipped_work(session, org_id, since, now + timedelta(days=1)))
    return Prepaid(org_id, kept, items)


def prepaid_balance(
    prepaid: Prepaid, running: RunningInfo | None, person: str, tz: str, now: datetime
) -> billing.Balance | None:
    """What is left now, the running timer counted provisionally (None: all expired)."""
    if not prepaid.blocks:
        return None
    work = with_running(
        [i for i in prepaid.items if i.start <= now], prepaid.organisation_id, running, person, now
    )
    return billing.balance(
        prepaid.blocks, bill_days(work, tz=tz), now, customer_id=str(prepaid.organisation_id)
    )


@dataclass(frozen=True)
class PrepaidFigures:
    """What the timer shows about prepaid hours: the ledger read and the balance now."""

    prepaid: Prepaid | None
    balance: billing.Balance | None


def prepaid_figures(
    session: Session,
    org_id: uuid.UUID,
    running: RunningInfo | None,
    person: str,
    tz: str,
    now: datetime,
) -> PrepaidFigures:
    """Read the customer's prepaid ledger and replay it to ``now`` (the running timer counted
    provisionally): one call for a worker thread."""
    prepaid = read_prepaid(session, org_id, now)
    left = prepaid_balance(prepaid, running, person, tz, now) if prepaid is not None else None
    return PrepaidFigures(prepaid, left)
