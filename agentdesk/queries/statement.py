"""The customer's time statement (seed 001: "reports can be requested at any time").

Built only from :func:`agentdesk.policy.billing.statement`,
:func:`~agentdesk.policy.billing.time_report` (the period) and
:func:`~agentdesk.policy.billing.bill_days` (the days replayed before it for the opening balance)
over the ledger read by :mod:`.ledger`; nothing here rounds, draws or expires anything. What this
adds is what a reader needs next to the figures: names, ticket subjects, notes, extra-engineer
minutes per day, and the sentences that say the rules in plain words. The CSV and PDF exports and
the desktop render this one object, so their totals cannot disagree.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ..policy import billing
from ..policy.billing import WorkKind
from ..policy.errors import PolicyError
from . import collector
from .corrections import Correction, read_corrections
from .ledger import (
    QueryError,
    check_period,
    day_bounds,
    load_ledger,
    org_facts,
    person_names,
)

__all__ = [
    "ROUNDING_RULE",
    "StatementDay",
    "StatementEntry",
    "StatementView",
    "hours_text",
    "read_statement",
]

ROUNDING_RULE = (
    "Work outside pre-scheduled blocks is added up per day and rounded up once a day to the "
    "next 30 minutes (5 + 30 minutes on one day bill 60). Pre-scheduled blocks bill as booked. "
    "An appointment cancelled less than 24 hours before its start bills 30 minutes. An extra "
    "engineer you asked for is billed in addition. General support is not billed. Prepaid hours "
    "are used oldest block first and expire 90 days after purchase; unused hours are forfeited."
)

_KIND_TEXT = {
    WorkKind.UNSCHEDULED: "work",
    WorkKind.SCHEDULED_BLOCK: "scheduled block",
    WorkKind.LATE_CANCELLATION: "late cancellation",
}


def hours_text(minutes: int) -> str:
    """Minutes as hours with up to two decimals: 90 -> "1.5 h", 20 -> "0.33 h"."""
    value = (Decimal(minutes) / 60).quantize(Decimal("0.01")).normalize()
    return f"{value:f} h"


class StatementEntry(NamedTuple):
    """One line of work (or a fee) on a day, as the time report lists it.

    A named tuple, where the other records are frozen dataclasses: a year's statement makes
    ~20,000 of them, and a frozen dataclass sets each field through ``object.__setattr__``
    (several times the cost of a tuple, docs/performance.md).
    """

    day: date
    start: datetime
    end: datetime
    person: str
    kind: str
    minutes: int
    """Time worked, whole minutes rounded up (0 for a late cancellation)."""
    charged_minutes: int | None
    """What the line bills on its own; None for work pooled into the day's rounding."""
    billable: bool
    extra_engineer: bool
    ticket: str
    note: str


@dataclass(frozen=True)
class StatementDay:
    """One billed day: raw and rounded work, blocks, fees, extra engineers, and how it was
    paid (drawn from prepaid hours or overage)."""

    day: date
    raw_minutes: int
    """Unscheduled work, exact seconds rounded up to whole minutes (display only)."""
    work_billed: int
    scheduled: int
    late_cancellation: int
    extra_engineer_minutes: int
    billed: int
    drawn: int
    overage: int


@dataclass(frozen=True)
class StatementView:
    organisation_id: uuid.UUID
    organisation: str
    plan: str
    tz: str
    start: date
    end: date
    generated_at: datetime
    statement: billing.Statement
    days: tuple[StatementDay, ...]
    entries: tuple[StatementEntry, ...]
    prices: dict[str, Decimal | None]
    rounding_rule: str = ROUNDING_RULE
    #: Entries of the period corrected or voided (the ledger keeps them): who, when and why.
    corrections: tuple[Correction, ...] = ()

    @property
    def opening(self) -> int:
        return self.statement.opening_balance

    @property
    def purchased(self) -> int:
        return self.statement.purchased_minutes

    @property
    def drawn(self) -> int:
        return self.statement.drawn_minutes

    @property
    def forfeited(self) -> int:
        return self.statement.forfeited_minutes

    @property
    def closing(self) -> int:
        return self.statement.closing_balance

    @property
    def billed(self) -> int:
        return self.statement.billed_minutes

    @property
    def overage(self) -> int:
        return self.statement.overage_minutes

    @property
    def identity_text(self) -> str:
        """The ledger identity with this statement's figures, in hours."""
        return (
            f"{hours_text(self.opening)} opening + {hours_text(self.purchased)} purchased "
            f"- {hours_text(self.drawn)} used - {hours_text(self.forfeited)} forfeited "
            f"= {hours_text(self.closing)} closing"
        )

    @property
    def expiry_lines(self) -> tuple[str, ...]:
        """What expires when, after the period: "4.5 h expire on 2027-02-03"."""
        zone_days: dict[date, int] = {}
        for b in self.statement.upcoming_expiries:
            day = _local(b.expires_at, self.tz).date()
            zone_days[day] = zone_days.get(day, 0) + b.remaining_minutes
        return tuple(
            f"{hours_text(m)} expire on {d.isoformat()}" for d, m in sorted(zone_days.items())
        )


def _local(instant: datetime, tz: str) -> datetime:
    return instant.astimezone(ZoneInfo(tz))


_MINUTE = timedelta(minutes=1)


def _ceil_minutes(seconds: float) -> int:
    whole = int(seconds)
    minutes, rest = divmod(whole, 60)
    return minutes + (1 if rest or seconds > whole else 0)


def read_statement(
    session: Session, org_id: uuid.UUID, start: date, end: date, *, now: datetime | None = None
) -> StatementView:
    """The statement of ``org_id`` for the team's local days ``start``..``end``.

    Figures touching today are provisional (the day can still grow); days after ``now`` are
    not known yet and the closing balance is taken at ``now``.
    """
    check_period(start, end)
    now = now or datetime.now(UTC)
    org = org_facts(session, org_id)
    opens, closes = day_bounds(start, end, org.tz)
    if opens > now:
        raise QueryError("from", f"the period starts ({start}) in the future")
    with collector.paused():  # ~100,000 objects that never form a cycle (see collector)
        ledger = load_ledger(session, org_id, opens, min(closes, now))
        items = [i for i in ledger.items if i.start <= now]
        # Days from the start of the replay to the period only give the opening balance: their
        # bills, no report rows (a month's statement may replay up to two years before it). The
        # period's report takes every item reaching into it, and its day bills follow.
        first = min(start, ledger.since.astimezone(ZoneInfo(org.tz)).date())
        try:
            earlier = billing.bill_days([i for i in items if i.start < opens], tz=org.tz)
            report = billing.time_report(
                [i for i in items if i.start >= opens or i.end > opens],
                tz=org.tz,
                start=start,
                end=end,
                customer_id=str(org_id),
            )
            stmt = billing.statement(
                ledger.blocks,
                [*(b for b in earlier if first <= b.day < start), *report.days],
                start=start,
                end=end,
                tz=org.tz,
                as_of=now if now < closes else None,
                customer_id=str(org_id),
            )
        except PolicyError as exc:
            raise QueryError(exc.field, exc.message) from None
        people = person_names(session, {uuid.UUID(p) for p in {i.person for i in items}})
        names = {str(i): n for i, n in people.items()}  # by the report rows' text ids
        details = ledger.details
        extra: dict[date, int] = {}
        entries = []
        kind_text = _KIND_TEXT
        # Each row unpacked once: a named tuple's field by name is a descriptor call, and a
        # year is ~20,000 rows (docs/performance.md).
        for (
            day,
            _,
            person,
            kind,
            begins,
            ends,
            took,
            billable,
            extra_eng,
            item,
            charged,
        ) in report.rows:
            shown = details.get(item)
            minutes = -(-took // _MINUTE)  # whole minutes, rounded up
            if extra_eng and billable:
                extra[day] = extra.get(day, 0) + minutes
            entries.append(
                StatementEntry(  # by position: a keyword call costs twice as much (20,000 rows)
                    day,
                    begins,
                    ends,
                    names.get(person, "someone") if shown else person,
                    kind_text[kind],
                    minutes,
                    charged,
                    billable,
                    extra_eng,
                    shown[0] if shown else "",
                    shown[1] if shown else "",
                )
            )
        raw = {d.day: d.raw_unscheduled_seconds for d in report.days}
        days = tuple(
            StatementDay(
                day=u.day,
                raw_minutes=_ceil_minutes(raw.get(u.day, 0)),
                work_billed=u.unscheduled_minutes,
                scheduled=u.scheduled_minutes,
                late_cancellation=u.late_cancellation_minutes,
                extra_engineer_minutes=extra.get(u.day, 0),
                billed=u.billed_minutes,
                drawn=u.drawn_minutes,
                overage=u.overage_minutes,
            )
            for u in stmt.usage
        )
        return StatementView(
            organisation_id=org_id,
            organisation=org.name,
            plan=org.plan,
            tz=org.tz,
            start=start,
            end=end,
            generated_at=now,
            statement=stmt,
            days=days,
            entries=tuple(entries),
            prices={k: v for k, v in ledger.prices.items()},
            corrections=read_corrections(
                session, since=opens, until=min(closes, now), tz=org.tz, org_id=org_id
            ),
        )
