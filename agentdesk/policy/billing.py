"""Billable 1-on-1 time and prepaid hour blocks (seed 001).

Seed 001 sells 1-on-1 tech support by the hour. The rules, and the choices made where it is silent:

Daily bill (:func:`bill_days`), per customer per local day of the support team's time zone:

* Unscheduled billable work is pooled and rounded up *once* a day to the increment (30 minutes):
  "one for 5 minutes and one for 30 minutes, 5 + 30 = 35 ... rounded up to 60 minutes billable
  that day". Every person's time counts, including an extra engineer the customer asked for
  ("billed in addition"): two people working at once is two people's time. One person cannot
  bill twice for the same minute, so a person's overlapping items for a customer count once
  (their union), and a person's unscheduled time inside their own billable pre-scheduled block
  for that customer is not counted again (the block already bills it). Overlaps across different
  customers are not this module's business: each customer is billed for their own items.
* Work that crosses local midnight is split between the days and each day is rounded on its own
  (23:50-00:10 is 10 + 10 minutes, billed 30 + 30). Local days may be 23 or 25 hours long.
* Pre-scheduled blocks are "billed as scheduled": their booked length, rounded up to a whole
  minute per block, never pooled with the unscheduled time, and billed whole on the local date
  the block starts (a booking is one unit; it is not split at midnight).
* A cancellation received less than 24 hours before the appointment's start is billed 30
  minutes, on the local date of the appointment; exactly 24 hours' notice is free.
* General support is not billable; after it escalates to 1-on-1 the time is
  (:func:`escalate_at` splits the item at that moment). Non-billable items never reach a
  :class:`DayBill` but are listed, marked non-billable, in the :func:`time_report`.

Prepaid hours (:func:`balance`, :func:`statement`): "hours are non-refundable. They must be used
within 90 days of purchase or they are forfeited." Balances are computed from the ledger
(purchases and day bills), never stored:

* A block expires at ``purchased_at + valid_for`` (90 days of elapsed time, computed in UTC so
  equal instants always expire equally) and is usable strictly before that instant.
* The rounding is daily, so a day's bill is charged as one amount, to the local day it was
  billed for. It may draw on every block that was valid at some moment of that day: bought
  before the day ended and not expired when the day began. Example (team in New York): hours
  bought 2 January 10:00 EST expire 1 April 11:00 EDT; work billed for 1 April (day 90) draws on
  them, work billed for 2 April (day 91) does not. Hours bought at 15:00 cover work done at 09:00
  the same day.
* A day draws from the oldest eligible block first (purchase time, then block id), spilling
  into the next one. Whatever no block covers is recorded as overage, to be invoiced; a later
  purchase never absorbs it.
* Minutes left in a block when it expires are forfeited at its expiry instant; nothing is
  refunded. Figures touching the current local day are provisional until it ends: the day's
  total can still grow and a purchase later that day can still cover it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, NamedTuple, Self
from zoneinfo import ZoneInfo

from .errors import PolicyError
from .zones import zone as _zone

__all__ = [
    "DEFAULT_CANCEL_NOTICE",
    "DEFAULT_INCREMENT_MINUTES",
    "DEFAULT_LATE_CANCEL_MINUTES",
    "DEFAULT_VALIDITY",
    "Balance",
    "BlockBalance",
    "DayBill",
    "Draw",
    "ExpiryLine",
    "HourBlock",
    "PurchaseLine",
    "Statement",
    "TimeReport",
    "TimeReportRow",
    "UsageLine",
    "WorkItem",
    "WorkKind",
    "balance",
    "bill_days",
    "cancellation_fee_minutes",
    "escalate_at",
    "round_up_to_increment",
    "split_at",
    "statement",
    "time_report",
]

#: Seed 001: "time is billed in 30-minute increments rounded once daily".
DEFAULT_INCREMENT_MINUTES = 30
#: Seed 001: a late cancellation "will be billed for 30 minutes".
DEFAULT_LATE_CANCEL_MINUTES = 30
#: Seed 001: cancelling "at least 24 hours in advance" is free.
DEFAULT_CANCEL_NOTICE = timedelta(hours=24)
#: Seed 001: hours "must be used within 90 days of purchase or they are forfeited".
DEFAULT_VALIDITY = timedelta(days=90)

_MICRO = timedelta(microseconds=1)
_MINUTE_US = 60_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_new_tuple = tuple.__new__


class WorkKind(StrEnum):
    """What a work item bills as: pooled and rounded, as booked, or a cancellation fee."""

    UNSCHEDULED = "unscheduled"
    SCHEDULED_BLOCK = "scheduled_block"
    LATE_CANCELLATION = "late_cancellation"


#: Each kind's value as a plain string (``.value`` is a Python-level property: per row it shows).
_KIND_TEXT = {k: k.value for k in WorkKind}


# --- small validators ----------------------------------------------------------------------------


def _utc(value: object, field_name: str) -> datetime:
    """Naive times are refused: billing days are local days, so an unzoned time is ambiguous."""
    if not isinstance(value, datetime):
        raise PolicyError(field_name, f"must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise PolicyError(field_name, "must be time-zone aware (a naive time is ambiguous)")
    return value.astimezone(UTC)


def _whole(value: object, field_name: str, *, positive: bool = False) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise PolicyError(field_name, f"must be a whole number, got {value!r}")
    if positive and value <= 0:
        raise PolicyError(field_name, f"must be positive, got {value}")
    if value < 0:
        raise PolicyError(field_name, f"must not be negative, got {value}")
    return value


def _text(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(field_name, "must not be empty")
    return value


def _us(instant: datetime) -> int:
    """Microseconds since the epoch: exact, integer interval arithmetic."""
    return (instant - _EPOCH) // _MICRO  # aware instants subtract as UTC, whatever their zone


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def round_up_to_increment(
    raw: timedelta, increment_minutes: int = DEFAULT_INCREMENT_MINUTES
) -> int:
    """Seed 001's daily rounding: exact time up to the next increment, in whole minutes.

    30:00 is 30, 30:00.000001 is 60, nothing is 0. Durations are never rounded before this.
    """
    inc = _whole(increment_minutes, "increment_minutes", positive=True)
    if not isinstance(raw, timedelta) or raw < timedelta(0):
        raise PolicyError("raw", f"must be a non-negative duration, got {raw!r}")
    return _ceil_div(raw // _MICRO, inc * _MINUTE_US) * inc


# --- work items ----------------------------------------------------------------------------------


class _WorkItemFields(NamedTuple):
    customer_id: str
    person: str
    kind: WorkKind
    start: datetime
    end: datetime
    billable: bool
    extra_engineer: bool = False
    cancelled_at: datetime | None = None
    id: str = ""


class WorkItem(_WorkItemFields):
    """One piece of time on a customer's account, as an append-only fact.

    ``billable`` is False for general support (seed 001: not billable even with an active 1-on-1
    contract). ``extra_engineer`` marks a person the customer asked for: their time is "billed in
    addition", i.e. simply more billable time in the same daily pool; the flag is kept for the
    report. For a late cancellation, ``start``/``end`` are the cancelled appointment and
    ``cancelled_at``, when known, lets the bill apply the 24-hour rule itself (without it the
    item is taken to be late, as the caller decided).

    A named tuple checked as it is made, not a frozen dataclass: a year's statement reads
    ~20,000 of them, and a frozen dataclass sets each field through ``object.__setattr__``
    (1.9 us an item against 0.8 us, docs/performance.md). Use keywords to make one (the
    ledger's bulk read passes them by position, half the cost of a keyword call), and
    :meth:`_replace` (checked too) to change one. Its instants are kept in UTC, whatever
    zone they were given in, so the replay compares and subtracts them as they are.
    """

    __slots__ = ()

    def __new__(
        cls,
        customer_id: str,
        person: str,
        kind: WorkKind,
        start: datetime,
        end: datetime,
        billable: bool,
        extra_engineer: bool = False,
        cancelled_at: datetime | None = None,
        id: str = "",
    ) -> WorkItem:
        if (  # what a ledger read builds (aware UTC instants, a kind, flags): checked at once
            type(customer_id) is str
            and type(person) is str
            and customer_id.strip()
            and person.strip()
            and type(start) is datetime
            and type(end) is datetime
            and start.tzinfo is UTC
            and end.tzinfo is UTC
            and type(kind) is WorkKind
            and type(billable) is bool
            and type(extra_engineer) is bool
            and cancelled_at is None
            and type(id) is str
        ):
            if end < start:
                raise PolicyError("end", "must not be before start")
            return _new_tuple(
                cls,
                (customer_id, person, kind, start, end, billable, extra_engineer, None, id),
            )
        _text(customer_id, "customer_id")
        _text(person, "person")
        try:
            kind = WorkKind(kind)
        except ValueError:
            allowed = ", ".join(k.value for k in WorkKind)
            raise PolicyError("kind", f"must be one of {allowed}, got {kind!r}") from None
        start, end = _utc(start, "start"), _utc(end, "end")
        if end < start:
            raise PolicyError("end", "must not be before start")
        for name, value in (("billable", billable), ("extra_engineer", extra_engineer)):
            if not isinstance(value, bool):
                raise PolicyError(name, "must be true or false")
        if cancelled_at is not None:
            if kind is not WorkKind.LATE_CANCELLATION:
                raise PolicyError(
                    "cancelled_at", "only a late cancellation has a cancellation time"
                )
            cancelled_at = _utc(cancelled_at, "cancelled_at")
        if not isinstance(id, str):
            raise PolicyError("id", "must be a string")
        return _new_tuple(
            cls, (customer_id, person, kind, start, end, billable, extra_engineer, cancelled_at, id)
        )

    @classmethod
    def _make(cls, iterable: Iterable[Any]) -> Self:  # type: ignore[override]  # same call
        """From field values in order, checked (the named tuple's own skips the checks)."""
        return cls(*iterable)

    def _replace(self, **changes: Any) -> WorkItem:
        """A copy with ``changes``, checked as a new item is (the named tuple's own skips it)."""
        return WorkItem(**{**self._asdict(), **changes})

    @property
    def duration(self) -> timedelta:
        """Exact elapsed time (both in UTC: wall-clock subtraction would be off across DST)."""
        return self.end - self.start


def split_at(item: WorkItem, instant: datetime) -> tuple[WorkItem, WorkItem]:
    """Cut unscheduled work in two at ``instant`` (either part may be empty).

    Only unscheduled work splits: a scheduled block is billed as booked, and a late
    cancellation is one fee.
    """
    at = _utc(instant, "instant")
    if item.kind is not WorkKind.UNSCHEDULED:
        raise PolicyError("item", "only unscheduled work can be split")
    if not item.start <= at <= item.end:
        raise PolicyError("instant", "must lie within the item")
    return item._replace(end=instant), item._replace(start=instant)


def escalate_at(item: WorkItem, instant: datetime) -> tuple[WorkItem, WorkItem]:
    """Seed 001: general support escalated to 1-on-1 is billable from the escalation on.

    Returns (the general-support part, not billable; the 1-on-1 part, billable).
    """
    before, after = split_at(item, instant)
    return before._replace(billable=False), after._replace(billable=True)


def cancellation_fee_minutes(
    appointment_start: datetime,
    cancelled_at: datetime,
    *,
    notice: timedelta = DEFAULT_CANCEL_NOTICE,
    fee_minutes: int = DEFAULT_LATE_CANCEL_MINUTES,
) -> int:
    """Seed 001: free with at least 24 hours' notice, else 30 minutes.

    Exactly 24 hours before the start is free; 23:59:59 before, or after the start, is charged.
    """
    start = _utc(appointment_start, "appointment_start")
    cancelled = _utc(cancelled_at, "cancelled_at")
    if not isinstance(notice, timedelta) or notice < timedelta(0):
        raise PolicyError("notice", f"must be a non-negative duration, got {notice!r}")
    fee = _whole(fee_minutes, "fee_minutes")
    return 0 if start - cancelled >= notice else fee


# --- daily bills ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class DayBill:
    """What one customer is billed for one local day of the team's time zone.

    ``raw_unscheduled`` is exact (union per person, see the module notes);
    ``unscheduled_minutes`` is it rounded up once to ``increment_minutes``. ``day_start`` and
    ``day_end`` are the UTC instants bounding the local day, so the hour-block ledger can tell
    which blocks were valid that day without the time zone. ``items`` are the billable items
    billed on this day; unscheduled work crossing local midnight appears as this day's part.
    """

    customer_id: str
    day: date
    tz: str
    day_start: datetime
    day_end: datetime
    increment_minutes: int
    raw_unscheduled: timedelta
    unscheduled_minutes: int
    scheduled_minutes: int
    late_cancellation_minutes: int
    items: tuple[WorkItem, ...] = ()

    def __post_init__(self) -> None:
        _text(self.customer_id, "customer_id")
        _zone(self.tz)
        start, end = _utc(self.day_start, "day_start"), _utc(self.day_end, "day_end")
        if end <= start:
            raise PolicyError("day_end", "must be after day_start")
        for name in ("unscheduled_minutes", "scheduled_minutes", "late_cancellation_minutes"):
            _whole(getattr(self, name), name)
        if round_up_to_increment(self.raw_unscheduled, self.increment_minutes) != (
            self.unscheduled_minutes
        ):
            raise PolicyError(
                "unscheduled_minutes", "must be raw_unscheduled rounded up to increment_minutes"
            )

    @property
    def total_minutes(self) -> int:
        return self.unscheduled_minutes + self.scheduled_minutes + self.late_cancellation_minutes

    @property
    def raw_unscheduled_seconds(self) -> int:
        """Whole seconds, rounded up (display only: billing uses the exact duration)."""
        return _ceil_div(self.raw_unscheduled // _MICRO, 1_000_000)


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    """First instant of a local day. Where midnight is skipped by DST, fold=0 lands on 01:00."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


_ONE_DAY = timedelta(days=1)


class _LocalDays:
    """The zone's local midnights as UTC instants, worked out once per day for one call.

    A year of items falls on a few hundred days, and turning a local midnight into an instant
    is a zone look-up: done per item, it was a third of a year's bill (docs/performance.md).
    """

    __slots__ = ("_ends", "_starts", "zone")

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._starts: dict[date, datetime] = {}
        self._ends: dict[date, datetime] = {}

    def start(self, day: date) -> datetime:
        found = self._starts.get(day)
        if found is None:
            found = self._starts[day] = _day_start(day, self.zone)
        return found

    def end(self, day: date) -> datetime:
        """The first instant after the local day ``day``."""
        found = self._ends.get(day)
        if found is None:
            found = self._ends[day] = self.start(day + _ONE_DAY)
        return found


def _day_parts(item: WorkItem, days: _LocalDays) -> list[tuple[date, WorkItem, datetime]]:
    """Where an item is billed: unscheduled work per local day, anything else on its start date.

    Each part comes with its local day and its start on the local clock (what a report shows).
    """
    start, end = item.start, item.end  # UTC (WorkItem keeps them so)
    zone = days.zone
    local = start.astimezone(zone)
    first = local.date()
    if item.kind is not WorkKind.UNSCHEDULED or end <= days.end(first):
        return [(first, item, local)]
    parts: list[tuple[date, WorkItem, datetime]] = []
    cursor = start
    while cursor < end:
        local = cursor.astimezone(zone)
        day = local.date()
        boundary = min(end, days.end(day))
        parts.append((day, item._replace(start=cursor, end=boundary), local))
        cursor = boundary
    return parts


def _merge(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(intervals):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


class _Holes:
    """A person's own bookings for a customer, merged once (sorted, disjoint) for every day's
    measure: a year of appointments is hundreds of them, and each day only meets a few."""

    __slots__ = ("ends", "spans")

    def __init__(self, cuts: Iterable[tuple[int, int]]) -> None:
        self.spans = _merge(cuts)
        self.ends = [e for _, e in self.spans]


_NO_HOLES = _Holes(())


def _measure_minus(intervals: Iterable[tuple[int, int]], holes: _Holes) -> int:
    """Length of the union of ``intervals`` outside the union of ``holes``."""
    total = 0
    spans, ends = holes.spans, holes.ends
    for s, e in _merge(intervals):
        covered = 0
        i = bisect_right(ends, s)  # the first hole ending after s; earlier ones miss [s, e)
        while i < len(spans) and spans[i][0] < e:
            hs, he = spans[i]
            covered += max(0, min(e, he) - max(s, hs))
            i += 1
        total += (e - s) - covered
    return total


def _charged_minutes(item: WorkItem, fee: int, notice: timedelta) -> int:
    """Minutes a scheduled block or a late cancellation bills on its own (not pooled)."""
    if item.kind is WorkKind.SCHEDULED_BLOCK:
        return _ceil_div(item.duration // _MICRO, _MINUTE_US)
    if item.kind is WorkKind.LATE_CANCELLATION:
        if item.cancelled_at is None:
            return fee
        return cancellation_fee_minutes(
            item.start, item.cancelled_at, notice=notice, fee_minutes=fee
        )
    raise AssertionError("unscheduled work is pooled, not charged per item")


@dataclass(slots=True)
class _DayAcc:
    unscheduled: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    scheduled_minutes: int = 0
    late_minutes: int = 0
    items: list[WorkItem] = field(default_factory=list)


class _DayBook:
    """Billable items' day parts gathered into day bills (:func:`bill_days`); the time report
    feeds it the parts it works out for its rows, so they are worked out once."""

    __slots__ = ("accs", "booked", "fee", "notice")

    def __init__(self, fee: int, notice: timedelta) -> None:
        self.fee, self.notice = fee, notice
        self.accs: dict[tuple[str, date], _DayAcc] = defaultdict(_DayAcc)
        # A person's own billable booking already bills that stretch of time.
        self.booked: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)

    def add(self, item: WorkItem, parts: Iterable[tuple[date, WorkItem, datetime]]) -> None:
        """A billable item and where it is billed (:func:`_day_parts`)."""
        kind = item.kind
        if kind is WorkKind.SCHEDULED_BLOCK:
            self.booked[item.customer_id, item.person].append((_us(item.start), _us(item.end)))
        accs = self.accs
        epoch, micro = _EPOCH, _MICRO
        for day, part, _ in parts:
            acc = accs[item.customer_id, day]
            acc.items.append(part)
            if kind is WorkKind.UNSCHEDULED:  # _us, inline: this runs for every piece of work
                acc.unscheduled[item.person].append(
                    ((part.start - epoch) // micro, (part.end - epoch) // micro)
                )
            elif kind is WorkKind.SCHEDULED_BLOCK:
                acc.scheduled_minutes += _charged_minutes(item, self.fee, self.notice)
            else:
                acc.late_minutes += _charged_minutes(item, self.fee, self.notice)

    def bills(self, days: _LocalDays, *, tz: str, inc: int) -> list[DayBill]:
        holes = {key: _Holes(cuts) for key, cuts in self.booked.items()}
        bills = []
        for (customer_id, day), acc in sorted(self.accs.items()):
            raw_us = sum(
                _measure_minus(spans, holes.get((customer_id, person), _NO_HOLES))
                for person, spans in acc.unscheduled.items()
            )
            raw = timedelta(microseconds=raw_us)
            bills.append(
                DayBill(
                    customer_id=customer_id,
                    day=day,
                    tz=tz,
                    day_start=days.start(day),
                    day_end=days.end(day),
                    increment_minutes=inc,
                    raw_unscheduled=raw,
                    unscheduled_minutes=round_up_to_increment(raw, inc),
                    scheduled_minutes=acc.scheduled_minutes,
                    late_cancellation_minutes=acc.late_minutes,
                    items=tuple(sorted(acc.items, key=_item_order)),
                )
            )
        return bills


def _check_params(
    increment_minutes: int, late_cancel_minutes: int, cancel_notice: timedelta
) -> tuple[int, int, timedelta]:
    inc = _whole(increment_minutes, "increment_minutes", positive=True)
    fee = _whole(late_cancel_minutes, "late_cancel_minutes")
    if not isinstance(cancel_notice, timedelta) or cancel_notice < timedelta(0):
        raise PolicyError(
            "cancel_notice", f"must be a non-negative duration, got {cancel_notice!r}"
        )
    return inc, fee, cancel_notice


def bill_days(
    items: Iterable[WorkItem],
    *,
    tz: str,
    increment_minutes: int = DEFAULT_INCREMENT_MINUTES,
    late_cancel_minutes: int = DEFAULT_LATE_CANCEL_MINUTES,
    cancel_notice: timedelta = DEFAULT_CANCEL_NOTICE,
) -> list[DayBill]:
    """Seed 001's daily bills, one per customer and local day with billable items.

    Sorted by (customer_id, day). The order of ``items`` never matters.
    """
    days = _LocalDays(_zone(tz))
    inc, fee, notice = _check_params(increment_minutes, late_cancel_minutes, cancel_notice)
    book = _DayBook(fee, notice)
    for item in items:
        if item.billable:
            book.add(item, _day_parts(item, days))
    return book.bills(days, tz=tz, inc=inc)


def _item_order(item: WorkItem) -> tuple[datetime, datetime, str, str, str]:
    return (
        item.start,
        item.end,
        item.person,
        _KIND_TEXT[item.kind],
        item.id,
    )


# --- the time report -----------------------------------------------------------------------------


class TimeReportRow(NamedTuple):
    """One line of the customer's time report.

    ``start``/``end`` are in the report's time zone. ``duration`` is time worked (zero for a
    late cancellation: ``start``/``end`` show the cancelled appointment). ``charged_minutes`` is
    what the row bills on its own: a scheduled block's booked minutes, a cancellation fee, 0 for
    non-billable time, and ``None`` for unscheduled work, which is billed through the day's pool.

    A named tuple, where the other records are frozen dataclasses: a year's report has ~20,000
    rows, and a frozen dataclass sets each field through ``object.__setattr__`` (four times the
    cost of a tuple; docs/performance.md, "Statement CSV").
    """

    day: date
    customer_id: str
    person: str
    kind: WorkKind
    start: datetime
    end: datetime
    duration: timedelta
    billable: bool
    extra_engineer: bool
    item_id: str
    charged_minutes: int | None


@dataclass(frozen=True, kw_only=True)
class TimeReport:
    """Seed 001: "reports can be requested at any time". Data only; rendering is the UI's."""

    customer_id: str | None
    start: date
    end: date
    tz: str
    rows: tuple[TimeReportRow, ...]
    days: tuple[DayBill, ...]

    @property
    def raw_unscheduled(self) -> timedelta:
        return sum((d.raw_unscheduled for d in self.days), timedelta(0))

    @property
    def billed_minutes(self) -> int:
        return sum(d.total_minutes for d in self.days)


def _check_period(start: date, end: date) -> None:
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, date) or isinstance(value, datetime):
            raise PolicyError(name, f"must be a date, got {value!r}")
    if end < start:
        raise PolicyError("end", "must not be before start")


def time_report(
    items: Iterable[WorkItem],
    *,
    tz: str,
    start: date,
    end: date,
    customer_id: str | None = None,
    increment_minutes: int = DEFAULT_INCREMENT_MINUTES,
    late_cancel_minutes: int = DEFAULT_LATE_CANCEL_MINUTES,
    cancel_notice: timedelta = DEFAULT_CANCEL_NOTICE,
) -> TimeReport:
    """Every item on the local days ``start``..``end`` (inclusive), raw and billed day totals.

    Non-billable items are listed (marked) but count in no total.
    """
    zone = _zone(tz)
    _check_period(start, end)
    inc, fee, notice = _check_params(increment_minutes, late_cancel_minutes, cancel_notice)
    days = _LocalDays(zone)
    book = _DayBook(fee, notice)  # the day bills, from the same parts as the rows
    keys: list[tuple[date, str, datetime, str, str, str]] = []
    rows: list[TimeReportRow] = []
    none = timedelta(0)
    kind_text = _KIND_TEXT
    for item in items:
        # Unpacked once: a named tuple's field by name is a descriptor call (20,000 items).
        customer, person, kind, _, _, billable, extra_engineer, _, item_id = item
        if customer_id is not None and customer != customer_id:
            continue
        parts = _day_parts(item, days)
        charged: int | None
        if not billable:
            charged = 0
        elif kind is WorkKind.UNSCHEDULED:
            charged = None
        else:
            charged = _charged_minutes(item, fee, notice)
        if billable:
            book.add(item, parts)
        late = kind is WorkKind.LATE_CANCELLATION
        shown_kind = kind_text[kind]
        for day, part, local in parts:
            if not start <= day <= end:
                continue
            begins, finish = part.start, part.end
            rows.append(
                TimeReportRow(  # by position: a keyword call costs twice as much (20,000 rows)
                    day,
                    customer,
                    person,
                    kind,
                    local,
                    finish.astimezone(zone),
                    none if late else finish - begins,
                    billable,
                    extra_engineer,
                    item_id,
                    charged,
                )
            )
            keys.append((day, customer, begins, person, shown_kind, item_id))
    # Sorted as (day, customer, instant, person, kind, id), stably; the keys hold no objects
    # the garbage collector tracks, so they are cheap to keep while sorting.
    order = sorted(range(len(rows)), key=keys.__getitem__)
    return TimeReport(
        customer_id=customer_id,
        start=start,
        end=end,
        tz=tz,
        rows=tuple([rows[i] for i in order]),
        days=tuple(b for b in book.bills(days, tz=tz, inc=inc) if start <= b.day <= end),
    )


# --- prepaid hour blocks -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class HourBlock:
    """A purchase of prepaid 1-on-1 minutes. ``valid_for`` travels with the purchase's terms."""

    id: str
    customer_id: str
    purchased_at: datetime
    minutes: int
    valid_for: timedelta = DEFAULT_VALIDITY

    def __post_init__(self) -> None:
        _text(self.id, "id")
        _text(self.customer_id, "customer_id")
        _utc(self.purchased_at, "purchased_at")
        _whole(self.minutes, "minutes", positive=True)
        if not isinstance(self.valid_for, timedelta) or self.valid_for <= timedelta(0):
            raise PolicyError("valid_for", f"must be a positive duration, got {self.valid_for!r}")

    @classmethod
    def of_hours(
        cls,
        *,
        id: str,
        customer_id: str,
        purchased_at: datetime,
        hours: int,
        valid_for: timedelta = DEFAULT_VALIDITY,
    ) -> HourBlock:
        return cls(
            id=id,
            customer_id=customer_id,
            purchased_at=purchased_at,
            minutes=_whole(hours, "hours", positive=True) * 60,
            valid_for=valid_for,
        )

    @property
    def expires_at(self) -> datetime:
        """The first instant the block is no longer usable (elapsed time, in UTC)."""
        return self.purchased_at.astimezone(UTC) + self.valid_for

    def covers(self, bill: DayBill) -> bool:
        """Valid at some moment of the bill's local day: bought before it ended, not expired
        when it began."""
        return self.purchased_at.astimezone(UTC) < bill.day_end.astimezone(
            UTC
        ) and self.expires_at > bill.day_start.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Draw:
    """Minutes of one day's bill taken from one block."""

    block_id: str
    minutes: int


@dataclass(frozen=True, kw_only=True, slots=True)
class UsageLine:
    """One billed day and how it was paid: ``drawn_minutes + overage_minutes == billed``."""

    day: date
    raw_unscheduled: timedelta
    unscheduled_minutes: int
    scheduled_minutes: int
    late_cancellation_minutes: int
    billed_minutes: int
    draws: tuple[Draw, ...]
    overage_minutes: int

    @property
    def drawn_minutes(self) -> int:
        return sum(d.minutes for d in self.draws)


@dataclass(frozen=True, kw_only=True)
class PurchaseLine:
    block_id: str
    purchased_at: datetime
    minutes: int
    expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class ExpiryLine:
    """A block that expired; ``forfeited_minutes`` (possibly 0) were lost, not refunded."""

    block_id: str
    expires_at: datetime
    purchased_minutes: int
    forfeited_minutes: int


@dataclass(frozen=True, kw_only=True)
class BlockBalance:
    block_id: str
    purchased_at: datetime
    expires_at: datetime
    purchased_minutes: int
    used_minutes: int
    remaining_minutes: int


@dataclass(frozen=True, kw_only=True)
class Balance:
    """Prepaid minutes at ``as_of``: unexpired blocks bought by then, oldest first.

    ``next_expiry`` is the earliest expiry among blocks with minutes left, and
    ``next_expiry_minutes`` how many minutes it would forfeit. ``overage_minutes`` is all billed
    time no block covered, up to ``as_of`` (to invoice).
    """

    customer_id: str | None
    as_of: datetime
    blocks: tuple[BlockBalance, ...]
    total_minutes: int
    next_expiry: datetime | None
    next_expiry_minutes: int
    overage_minutes: int


@dataclass(frozen=True, kw_only=True)
class Statement:
    """A customer's hour-block statement for the local days ``start``..``end``.

    The ledger always balances: ``opening_balance + purchased_minutes - drawn_minutes -
    forfeited_minutes == closing_balance``, and ``drawn_minutes + overage_minutes ==
    billed_minutes``. ``closes_at`` is the end of the period, or ``as_of`` if that is earlier
    (the statement then knows nothing after ``as_of``). ``upcoming_expiries`` are the blocks with
    minutes left at ``closes_at``, earliest expiry first: what expires when.
    """

    customer_id: str | None
    start: date
    end: date
    tz: str
    opens_at: datetime
    closes_at: datetime
    opening_balance: int
    purchases: tuple[PurchaseLine, ...]
    usage: tuple[UsageLine, ...]
    expiries: tuple[ExpiryLine, ...]
    closing_balance: int
    upcoming_expiries: tuple[BlockBalance, ...]

    @property
    def purchased_minutes(self) -> int:
        return sum(p.minutes for p in self.purchases)

    @property
    def billed_minutes(self) -> int:
        return sum(u.billed_minutes for u in self.usage)

    @property
    def drawn_minutes(self) -> int:
        return sum(u.drawn_minutes for u in self.usage)

    @property
    def overage_minutes(self) -> int:
        return sum(u.overage_minutes for u in self.usage)

    @property
    def forfeited_minutes(self) -> int:
        return sum(e.forfeited_minutes for e in self.expiries)


@dataclass
class _Ledger:
    """One replay of purchases and day bills up to (not including) a cut-off instant."""

    blocks: list[HourBlock]
    used: dict[str, int]
    usage: list[tuple[DayBill, UsageLine]]
    forfeited: dict[str, int]

    def remaining(self, block: HourBlock) -> int:
        if block.id in self.forfeited:
            return 0
        return block.minutes - self.used[block.id]

    def open_blocks(self) -> list[HourBlock]:
        return [b for b in self.blocks if b.id not in self.forfeited]

    def total(self) -> int:
        return sum(self.remaining(b) for b in self.open_blocks())

    def block_balances(self) -> list[BlockBalance]:
        return [
            BlockBalance(
                block_id=b.id,
                purchased_at=b.purchased_at,
                expires_at=b.expires_at,
                purchased_minutes=b.minutes,
                used_minutes=self.used[b.id],
                remaining_minutes=self.remaining(b),
            )
            for b in self.open_blocks()
        ]


def _replay(blocks: Sequence[HourBlock], bills: Sequence[DayBill], cut: datetime) -> _Ledger:
    known = sorted(
        (b for b in blocks if b.purchased_at.astimezone(UTC) < cut),
        key=lambda b: (b.purchased_at.astimezone(UTC), b.id),
    )
    used = {b.id: 0 for b in known}
    usage = []
    for bill in sorted(bills, key=lambda d: d.day_start.astimezone(UTC)):
        if bill.day_start.astimezone(UTC) >= cut:
            continue
        need = bill.total_minutes
        draws = []
        for block in known:
            if need == 0:
                break
            left = block.minutes - used[block.id]
            if left > 0 and block.covers(bill):
                take = min(left, need)
                used[block.id] += take
                need -= take
                draws.append(Draw(block.id, take))
        usage.append(
            (
                bill,
                UsageLine(
                    day=bill.day,
                    raw_unscheduled=bill.raw_unscheduled,
                    unscheduled_minutes=bill.unscheduled_minutes,
                    scheduled_minutes=bill.scheduled_minutes,
                    late_cancellation_minutes=bill.late_cancellation_minutes,
                    billed_minutes=bill.total_minutes,
                    draws=tuple(draws),
                    overage_minutes=need,
                ),
            )
        )
    # Every day that could draw on a block starts before it expires, so by now its draws are in.
    forfeited = {b.id: b.minutes - used[b.id] for b in known if b.expires_at < cut}
    return _Ledger(blocks=known, used=used, usage=usage, forfeited=forfeited)


def _one_customer(
    blocks: Iterable[HourBlock], bills: Iterable[DayBill], customer_id: str | None
) -> tuple[str | None, list[HourBlock], list[DayBill]]:
    """The ledger is per customer: pick one, or insist the input holds only one."""
    all_blocks, all_bills = list(blocks), list(bills)
    if customer_id is None:
        found = {b.customer_id for b in all_blocks} | {d.customer_id for d in all_bills}
        if len(found) > 1:
            raise PolicyError(
                "customer_id", "blocks and day bills belong to several customers: name one"
            )
        customer_id = next(iter(found), None)
    chosen_blocks = [b for b in all_blocks if b.customer_id == customer_id]
    chosen_bills = [d for d in all_bills if d.customer_id == customer_id]
    ids = [b.id for b in chosen_blocks]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise PolicyError("blocks", f"duplicate block id(s): {', '.join(dupes)}")
    days = [d.day for d in chosen_bills]
    dupe_days = sorted({d for d in days if days.count(d) > 1})
    if dupe_days:
        raise PolicyError("day_bills", f"more than one bill for {dupe_days[0].isoformat()}")
    return customer_id, chosen_blocks, chosen_bills


def _next_expiry(balances: Sequence[BlockBalance]) -> tuple[datetime | None, int]:
    live = [b for b in balances if b.remaining_minutes > 0]
    if not live:
        return None, 0
    first = min(b.expires_at for b in live)
    return first, sum(b.remaining_minutes for b in live if b.expires_at == first)


def balance(
    blocks: Iterable[HourBlock],
    day_bills: Iterable[DayBill],
    as_of: datetime,
    *,
    customer_id: str | None = None,
) -> Balance:
    """Prepaid minutes left at ``as_of`` (inclusive), replayed from the ledger.

    Counts purchases at or before ``as_of``, the bills of local days begun by then (today's is
    provisional), and forfeits blocks whose expiry is at or before ``as_of``.
    """
    when = _utc(as_of, "as_of")
    customer_id, chosen_blocks, chosen_bills = _one_customer(blocks, day_bills, customer_id)
    ledger = _replay(chosen_blocks, chosen_bills, when + _MICRO)
    balances = ledger.block_balances()
    next_expiry, next_minutes = _next_expiry(balances)
    return Balance(
        customer_id=customer_id,
        as_of=as_of,
        blocks=tuple(balances),
        total_minutes=ledger.total(),
        next_expiry=next_expiry,
        next_expiry_minutes=next_minutes,
        overage_minutes=sum(line.overage_minutes for _, line in ledger.usage),
    )


def statement(
    blocks: Iterable[HourBlock],
    day_bills: Iterable[DayBill],
    *,
    start: date,
    end: date,
    tz: str,
    as_of: datetime | None = None,
    customer_id: str | None = None,
) -> Statement:
    """Purchases, billed usage, expiries and overage over the local days ``start``..``end``.

    Opening balance is the ledger just before ``start`` begins; closing balance at the end of
    ``end`` (or at ``as_of``, inclusive, if earlier). Day bills must be in the same time zone.
    """
    zone = _zone(tz)
    _check_period(start, end)
    customer_id, chosen_blocks, chosen_bills = _one_customer(blocks, day_bills, customer_id)
    for bill in chosen_bills:
        if bill.tz != tz:
            raise PolicyError("tz", f"day bills were made in {bill.tz}, not {tz}")
    opens = _day_start(start, zone)
    closes = _day_start(end + timedelta(days=1), zone)
    if as_of is not None:
        known_until = _utc(as_of, "as_of")
        if known_until < opens:
            raise PolicyError("as_of", "is before the period starts")
        closes = min(closes, known_until + _MICRO)
    opening = _replay(chosen_blocks, chosen_bills, opens)
    closing = _replay(chosen_blocks, chosen_bills, closes)
    purchases = [
        PurchaseLine(
            block_id=b.id, purchased_at=b.purchased_at, minutes=b.minutes, expires_at=b.expires_at
        )
        for b in closing.blocks
        if b.purchased_at.astimezone(UTC) >= opens
    ]
    usage = [line for bill, line in closing.usage if bill.day_start.astimezone(UTC) >= opens]
    expiries = sorted(
        (
            ExpiryLine(
                block_id=b.id,
                expires_at=b.expires_at,
                purchased_minutes=b.minutes,
                forfeited_minutes=closing.forfeited[b.id],
            )
            for b in closing.blocks
            if b.id in closing.forfeited and b.expires_at >= opens
        ),
        key=lambda e: (e.expires_at, e.block_id),
    )
    upcoming = sorted(
        (b for b in closing.block_balances() if b.remaining_minutes > 0),
        key=lambda b: (b.expires_at, b.block_id),
    )
    return Statement(
        customer_id=customer_id,
        start=start,
        end=end,
        tz=tz,
        opens_at=opens,
        closes_at=closes,
        opening_balance=opening.total(),
        purchases=tuple(purchases),
        usage=tuple(usage),
        expiries=tuple(expiries),
        closing_balance=closing.total(),
        upcoming_expiries=tuple(upcoming),
    )
