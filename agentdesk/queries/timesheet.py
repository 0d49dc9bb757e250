"""A consultant's own timesheet for a day or a week.

Seed 001 rounds once per customer per day, not per entry: the billed figure of a row is the
policy's :class:`~agentdesk.policy.billing.DayBill` for that customer and day, computed over the
person's own entries (a colleague's time on the same customer is on their sheet; the customer's
statement pools everyone). The sheet's total is the sum of the billed rows it shows, so it adds
up where per-entry rounding would not. Flags point at entries that need a second look.

Why the sheet does not pool (decided for issue 11): the customer's bill is the statement, which
follows seed 001 exactly (all billable time of a customer's day, pooled, rounded once). A
timesheet answers "what did my time bill", and must add up from rows the consultant can see and
correct; pooling colleagues' entries into it would make its totals depend on time that is not
on it. The two differ only when several people worked for one customer on one day (5 + 5
minutes by two consultants: 30 + 30 on their sheets, 30 on the statement), and the column
header says so (:data:`BILLED_HEADER`, :data:`BILLED_TOOLTIP`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Organisation
from ..policy import billing
from ..policy.billing import WorkKind
from ..policy.errors import PolicyError
from .corrections import Correction, read_corrections
from .ledger import QueryError, check_period, day_bounds, live_entries, team_timezone, work_item

__all__ = [
    "BILLED_HEADER",
    "BILLED_TOOLTIP",
    "MAX_TIMESHEET",
    "Flag",
    "Timesheet",
    "TimesheetEntry",
    "TimesheetRow",
    "read_timesheet",
    "week_of",
]

#: A timesheet covers at most this many days (a month and a bit); statements cover longer.
MAX_TIMESHEET = timedelta(days=62)
LONG_ENTRY = timedelta(hours=8)
BILLED_HEADER = (
    "Billed for my time (rounded up to 30 min once per customer per day; "
    "the statement pools the team's time)"
)
BILLED_TOOLTIP = (
    "Seed 001: work outside scheduled blocks is rounded up to 30 minutes once per customer per "
    "day, never per entry. This sheet rounds your own time. The customer's statement, which is "
    "the bill, adds up everyone's time for that customer and day before rounding once, so when "
    "colleagues worked for the same customer on the same day it can bill less than the sum of "
    "the timesheets (5 + 5 minutes by two people: 30 + 30 here, 30 on the statement)."
)


class Flag:
    OVERLAP = "overlaps another entry"
    LONG = "longer than 8 hours"
    NO_NOTE = "1-on-1 time without a note"
    GENERAL = "general support, not billable"


def week_of(day: date) -> tuple[date, date]:
    """Monday..Sunday of the week holding ``day``."""
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


@dataclass(frozen=True)
class TimesheetEntry:
    entry_id: str
    day: date
    start: datetime
    end: datetime
    organisation_id: uuid.UUID
    organisation: str
    ticket_id: uuid.UUID | None
    ticket: str
    kind: WorkKind
    source: str
    minutes: int
    billable: bool
    extra_engineer: bool
    note: str
    flags: tuple[str, ...]


@dataclass(frozen=True)
class TimesheetRow:
    """One customer on one day: raw billable work before rounding, and the day's bill."""

    day: date
    organisation_id: uuid.UUID
    organisation: str
    raw_seconds: int
    work_billed: int
    scheduled: int
    late_cancellation: int
    billed: int
    entries: int


@dataclass(frozen=True)
class Timesheet:
    person_id: uuid.UUID
    start: date
    end: date
    tz: str
    entries: tuple[TimesheetEntry, ...]
    rows: tuple[TimesheetRow, ...]
    #: My entries in the period that were corrected or voided: by whom, when and why.
    corrections: tuple[Correction, ...] = ()

    @property
    def billed(self) -> int:
        return sum(r.billed for r in self.rows)

    @property
    def raw_seconds(self) -> int:
        return sum(r.raw_seconds for r in self.rows)

    @property
    def flagged(self) -> int:
        return sum(1 for e in self.entries if e.flags)


def _overlapping(spans: list[tuple[datetime, datetime, str]]) -> set[str]:
    hits: set[str] = set()
    latest_end: datetime | None = None
    latest_id = ""
    for start, end, ident in sorted(spans):
        if latest_end is not None and start < latest_end:
            hits.update((ident, latest_id))
        if latest_end is None or end > latest_end:
            latest_end, latest_id = end, ident
    return hits


def read_timesheet(
    session: Session, tenant_id: uuid.UUID, person_id: uuid.UUID, start: date, end: date
) -> Timesheet:
    """``person_id``'s entries on the team's local days ``start``..``end`` and their bills."""
    check_period(start, end)
    if end - start >= MAX_TIMESHEET:
        raise QueryError(
            "to",
            f"a timesheet covers at most {MAX_TIMESHEET.days} days; "
            "use the statement for longer periods",
        )
    tz = team_timezone(session, tenant_id)
    opens, closes = day_bounds(start, end, tz)
    facts = live_entries(session, since=opens, until=closes, person_id=person_id)
    by_id = {str(f.id): f for f in facts}
    items = [work_item(f) for f in facts]
    try:
        report = billing.time_report(items, tz=tz, start=start, end=end)
    except PolicyError as exc:
        raise QueryError(exc.field, exc.message) from None
    orgs = (
        {
            i: n
            for i, n in session.execute(
                select(Organisation.id, Organisation.name).where(
                    Organisation.id.in_({f.organisation_id for f in facts})
                )
            )
        }
        if facts
        else {}
    )
    overlaps = _overlapping(
        [
            (f.started_at, f.ended_at, str(f.id))
            for f in facts
            if f.kind.value != WorkKind.LATE_CANCELLATION.value and f.ended_at > f.started_at
        ]
    )
    entries = []
    counts: dict[tuple[date, str], int] = defaultdict(int)
    for row in report.rows:
        f = by_id[row.item_id]
        flags = []
        if row.item_id in overlaps:
            flags.append(Flag.OVERLAP)
        if f.ended_at - f.started_at > LONG_ENTRY:
            flags.append(Flag.LONG)
        if f.general_support or not f.billable:
            flags.append(Flag.GENERAL)
        elif f.billable and row.kind is not WorkKind.LATE_CANCELLATION and not f.note.strip():
            flags.append(Flag.NO_NOTE)
        counts[row.day, row.customer_id] += 1
        seconds = int(row.duration.total_seconds())
        entries.append(
            TimesheetEntry(
                entry_id=row.item_id,
                day=row.day,
                start=row.start,
                end=row.end,
                organisation_id=f.organisation_id,
                organisation=orgs.get(f.organisation_id, "?"),
                ticket_id=f.ticket_id,
                ticket=f.ticket_subject,
                kind=row.kind,
                source=f.source,
                minutes=-(-seconds // 60),
                billable=row.billable,
                extra_engineer=row.extra_engineer,
                note=f.note,
                flags=tuple(flags),
            )
        )
    bills = {(b.day, b.customer_id): b for b in report.days}
    rows = []
    for key in sorted(
        set(counts) | set(bills), key=lambda k: (k[0], orgs.get(uuid.UUID(k[1]), ""))
    ):
        day, customer = key
        bill = bills.get(key)
        org_id = uuid.UUID(customer)
        rows.append(
            TimesheetRow(
                day=day,
                organisation_id=org_id,
                organisation=orgs.get(org_id, "?"),
                raw_seconds=bill.raw_unscheduled_seconds if bill else 0,
                work_billed=bill.unscheduled_minutes if bill else 0,
                scheduled=bill.scheduled_minutes if bill else 0,
                late_cancellation=bill.late_cancellation_minutes if bill else 0,
                billed=bill.total_minutes if bill else 0,
                entries=counts.get(key, 0),
            )
        )
    corrections = read_corrections(session, since=opens, until=closes, tz=tz, person_id=person_id)
    return Timesheet(
        person_id=person_id,
        start=start,
        end=end,
        tz=tz,
        entries=tuple(entries),
        rows=tuple(rows),
        corrections=corrections,
    )
