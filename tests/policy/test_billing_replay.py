"""The time report and the day bills as they were computed before they were made fast.

``time_report`` now works out each item's day parts once and feeds them to both its rows and
its day bills, memoises local midnights, merges a person's bookings once and checks ledger-built
work items in one step (docs/performance.md, "Statement CSV"). The previous code is kept here as
the oracle, unchanged but for its names: on random items (every kind, several customers and
people, work across midnight, bookings over unscheduled time, late cancellations with and
without their cancellation time, instants given in other zones, DST days) the reports, the day
bills and the statements built on them must be equal, row for row and in the same order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentdesk.policy import billing
from agentdesk.policy.billing import (
    DayBill,
    TimeReport,
    TimeReportRow,
    WorkItem,
    WorkKind,
    round_up_to_increment,
)
from agentdesk.policy.errors import PolicyError

ZONES = ["America/New_York", "UTC", "America/Havana", "Australia/Lord_Howe", "Asia/Kolkata"]
#: Windows around DST changes (a 23- and a 25-hour day, Havana's skipped midnight, Lord Howe).
WINDOW_STARTS = [
    datetime(2024, 3, 8, tzinfo=UTC),
    datetime(2024, 11, 1, tzinfo=UTC),
    datetime(2024, 4, 5, tzinfo=UTC),
]
_MICRO = timedelta(microseconds=1)
_MINUTE_US = 60_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- the previous code (the oracle) ---------------------------------------------------------


def _us(instant: datetime) -> int:
    return (instant.astimezone(UTC) - _EPOCH) // _MICRO


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC)


def _local_date(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def _day_parts(item: WorkItem, zone: ZoneInfo) -> list[tuple[date, WorkItem]]:
    start, end = item.start.astimezone(UTC), item.end.astimezone(UTC)
    first = _local_date(start, zone)
    if item.kind is not WorkKind.UNSCHEDULED or end <= _day_start(first + timedelta(days=1), zone):
        return [(first, item)]
    parts: list[tuple[date, WorkItem]] = []
    cursor = start
    while cursor < end:
        day = _local_date(cursor, zone)
        boundary = min(end, _day_start(day + timedelta(days=1), zone))
        parts.append((day, item._replace(start=cursor, end=boundary)))
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


def _measure_minus(intervals: Iterable[tuple[int, int]], cuts: Iterable[tuple[int, int]]) -> int:
    total = 0
    holes = _merge(cuts)
    for s, e in _merge(intervals):
        covered = sum(max(0, min(e, he) - max(s, hs)) for hs, he in holes)
        total += (e - s) - covered
    return total


def _charged_minutes(item: WorkItem, fee: int, notice: timedelta) -> int:
    if item.kind is WorkKind.SCHEDULED_BLOCK:
        return -(-(item.duration // _MICRO) // _MINUTE_US)
    if item.cancelled_at is None:
        return fee
    return billing.cancellation_fee_minutes(
        item.start, item.cancelled_at, notice=notice, fee_minutes=fee
    )


@dataclass
class _DayAcc:
    unscheduled: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    scheduled_minutes: int = 0
    late_minutes: int = 0
    items: list[WorkItem] = field(default_factory=list)


def _item_order(item: WorkItem) -> tuple[datetime, datetime, str, str, str]:
    return (
        item.start.astimezone(UTC),
        item.end.astimezone(UTC),
        item.person,
        item.kind.value,
        item.id,
    )


def old_bill_days(
    items: Iterable[WorkItem], *, tz: str, inc: int = 30, fee: int = 30
) -> list[DayBill]:
    zone = ZoneInfo(tz)
    notice = billing.DEFAULT_CANCEL_NOTICE
    billable = [item for item in items if item.billable]
    booked: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for item in billable:
        if item.kind is WorkKind.SCHEDULED_BLOCK:
            booked[item.customer_id, item.person].append((_us(item.start), _us(item.end)))
    days: dict[tuple[str, date], _DayAcc] = defaultdict(_DayAcc)
    for item in billable:
        for day, part in _day_parts(item, zone):
            acc = days[item.customer_id, day]
            acc.items.append(part)
            if item.kind is WorkKind.UNSCHEDULED:
                acc.unscheduled[item.person].append((_us(part.start), _us(part.end)))
            elif item.kind is WorkKind.SCHEDULED_BLOCK:
                acc.scheduled_minutes += _charged_minutes(item, fee, notice)
            else:
                acc.late_minutes += _charged_minutes(item, fee, notice)
    bills = []
    for (customer_id, day), acc in sorted(days.items()):
        raw = timedelta(
            microseconds=sum(
                _measure_minus(spans, booked.get((customer_id, person), ()))
                for person, spans in acc.unscheduled.items()
            )
        )
        bills.append(
            DayBill(
                customer_id=customer_id,
                day=day,
                tz=tz,
                day_start=_day_start(day, zone),
                day_end=_day_start(day + timedelta(days=1), zone),
                increment_minutes=inc,
                raw_unscheduled=raw,
                unscheduled_minutes=round_up_to_increment(raw, inc),
                scheduled_minutes=acc.scheduled_minutes,
                late_cancellation_minutes=acc.late_minutes,
                items=tuple(sorted(acc.items, key=_item_order)),
            )
        )
    return bills


def old_time_report(
    items: Iterable[WorkItem],
    *,
    tz: str,
    start: date,
    end: date,
    customer_id: str | None = None,
    inc: int = 30,
    fee: int = 30,
) -> TimeReport:
    zone = ZoneInfo(tz)
    notice = billing.DEFAULT_CANCEL_NOTICE
    chosen = [i for i in items if customer_id is None or i.customer_id == customer_id]
    rows = []
    for item in chosen:
        for day, part in _day_parts(item, zone):
            if not start <= day <= end:
                continue
            charged: int | None
            if not item.billable:
                charged = 0
            elif item.kind is WorkKind.UNSCHEDULED:
                charged = None
            else:
                charged = _charged_minutes(item, fee, notice)
            rows.append(
                TimeReportRow(
                    day=day,
                    customer_id=item.customer_id,
                    person=item.person,
                    kind=item.kind,
                    start=part.start.astimezone(zone),
                    end=part.end.astimezone(zone),
                    duration=(
                        timedelta(0) if item.kind is WorkKind.LATE_CANCELLATION else part.duration
                    ),
                    billable=item.billable,
                    extra_engineer=item.extra_engineer,
                    item_id=item.id,
                    charged_minutes=charged,
                )
            )
    rows.sort(
        key=lambda r: (
            r.day,
            r.customer_id,
            r.start.astimezone(UTC),
            r.person,
            r.kind.value,
            r.item_id,
        )
    )
    days = [b for b in old_bill_days(chosen, tz=tz, inc=inc, fee=fee) if start <= b.day <= end]
    return TimeReport(
        customer_id=customer_id, start=start, end=end, tz=tz, rows=tuple(rows), days=tuple(days)
    )


# -- random items ---------------------------------------------------------------------------


@st.composite
def work_items(draw: st.DrawFn) -> WorkItem:
    base = draw(st.sampled_from(WINDOW_STARTS))
    start = base + timedelta(
        seconds=draw(st.integers(0, 4 * 86400)),
        microseconds=draw(st.sampled_from([0, 0, 1, 500_000])),
    )
    kind = draw(st.sampled_from(list(WorkKind)))
    length = timedelta(minutes=draw(st.sampled_from([0, 1, 5, 30, 60, 90, 600, 1500, 2900])))
    cancelled_at = None
    if kind is WorkKind.LATE_CANCELLATION and draw(st.booleans()):
        cancelled_at = start - timedelta(hours=draw(st.sampled_from([1, 23, 24, 25])))
    # Most instants as a ledger read gives them (aware UTC: the one-step check); some in a
    # local zone, a fold included (the full check, and comparisons across zones).
    shown_in = draw(st.sampled_from([None, None, None, "America/New_York", "Asia/Kolkata"]))
    end = start + length
    if shown_in is not None:
        zone = ZoneInfo(shown_in)
        start, end = start.astimezone(zone), end.astimezone(zone)
    return WorkItem(
        customer_id=draw(st.sampled_from(["acme", "beta"])),
        person=draw(st.sampled_from(["ann", "bob", "eve"])),
        kind=kind,
        start=start,
        end=end,
        billable=draw(st.booleans()) or draw(st.booleans()),
        extra_engineer=draw(st.booleans()),
        cancelled_at=cancelled_at,
        id=draw(st.sampled_from(["", "x", "y", "z"])),
    )


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(work_items(), max_size=25),
    tz=st.sampled_from(ZONES),
    first=st.integers(-2, 4),
    days=st.integers(0, 6),
    customer=st.sampled_from([None, "acme"]),
    inc=st.sampled_from([1, 30, 45]),
)
def test_time_report_and_day_bills_equal_the_previous_code(
    items: list[WorkItem], tz: str, first: int, days: int, customer: str | None, inc: int
) -> None:
    start = WINDOW_STARTS[0].date()
    start = min(i.start.astimezone(ZoneInfo(tz)).date() for i in items) if items else start
    start += timedelta(days=first)
    end = start + timedelta(days=days)
    report = billing.time_report(
        items, tz=tz, start=start, end=end, customer_id=customer, increment_minutes=inc
    )
    expected = old_time_report(items, tz=tz, start=start, end=end, customer_id=customer, inc=inc)
    assert report.rows == expected.rows
    assert report.days == expected.days
    assert report == expected
    assert billing.bill_days(items, tz=tz, increment_minutes=inc) == old_bill_days(
        items, tz=tz, inc=inc
    )
    blocks = [
        billing.HourBlock(
            id=f"b{n}",
            customer_id="acme",
            purchased_at=WINDOW_STARTS[0] + timedelta(days=n),
            minutes=60 * (n + 1),
        )
        for n in range(3)
    ]
    bills = [b for b in report.days if b.customer_id == "acme"]
    old_bills = [b for b in expected.days if b.customer_id == "acme"]
    assert billing.statement(
        blocks, bills, start=start, end=end, tz=tz, customer_id="acme"
    ) == billing.statement(blocks, old_bills, start=start, end=end, tz=tz, customer_id="acme")


@pytest.mark.parametrize(
    ("change", "field_name"),
    [
        ({"customer_id": " "}, "customer_id"),
        ({"person": ""}, "person"),
        ({"end": datetime(2026, 5, 1, 8, 59, tzinfo=UTC)}, "end"),
        ({"id": 7}, "id"),
        ({"billable": 1}, "billable"),
        ({"kind": "overtime"}, "kind"),
        ({"start": datetime(2026, 5, 1, 9)}, "start"),  # noqa: DTZ001 (naive on purpose)
    ],
)
def test_ledger_shaped_items_are_still_checked(change: dict[str, object], field_name: str) -> None:
    """The one-step check of aware-UTC items refuses what the full check refuses."""
    good: dict[str, object] = {
        "customer_id": "acme",
        "person": "ann",
        "kind": WorkKind.UNSCHEDULED,
        "start": datetime(2026, 5, 1, 9, tzinfo=UTC),
        "end": datetime(2026, 5, 1, 10, tzinfo=UTC),
        "billable": True,
    }
    WorkItem(**good)  # type: ignore[arg-type]
    with pytest.raises(PolicyError) as refused:
        WorkItem(**{**good, **change})  # type: ignore[arg-type]
    assert refused.value.field == field_name
