"""Invariants of daily billing and of the hour-block ledger (seed 001), checked by hypothesis."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from agentdesk.policy.billing import (
    DayBill,
    HourBlock,
    WorkItem,
    WorkKind,
    balance,
    bill_days,
    split_at,
    statement,
)

# Zones with a 23/25-hour day in the window, one that skips local midnight (Havana) and one
# with a 30-minute DST shift (Lord Howe, in April).
ZONES = ["America/New_York", "UTC", "America/Havana", "Australia/Lord_Howe", "Asia/Kolkata"]
WINDOW_STARTS = [
    datetime(2024, 3, 8, tzinfo=UTC),
    datetime(2024, 11, 1, tzinfo=UTC),
    datetime(2024, 4, 5, tzinfo=UTC),
]
MINUTE = timedelta(minutes=1)
SETTINGS = settings(max_examples=80, deadline=None)


@st.composite
def work_items(
    draw: st.DrawFn,
    *,
    kinds: tuple[WorkKind, ...] = tuple(WorkKind),
    persons: tuple[str, ...] = ("ann", "bob", "eve"),
) -> WorkItem:
    base = draw(st.sampled_from(WINDOW_STARTS))
    start = base + timedelta(
        seconds=draw(st.integers(0, 5 * 86400)),
        microseconds=draw(st.sampled_from([0, 0, 1, 500_000])),
    )
    length = timedelta(seconds=draw(st.integers(0, 30 * 3600)))
    return WorkItem(
        customer_id=draw(st.sampled_from(["acme", "beta"])),
        person=draw(st.sampled_from(persons)),
        kind=draw(st.sampled_from(kinds)),
        start=start,
        end=start + length,
        billable=draw(st.booleans()),
        extra_engineer=draw(st.booleans()),
        id=draw(st.sampled_from(["", "x", "y"])),
    )


def totals(bills: list[DayBill]) -> list[tuple[str, date, timedelta, int, int, int]]:
    return [
        (
            b.customer_id,
            b.day,
            b.raw_unscheduled,
            b.unscheduled_minutes,
            b.scheduled_minutes,
            b.late_cancellation_minutes,
        )
        for b in bills
    ]


@SETTINGS
@given(
    items=st.lists(work_items(), max_size=8),
    tz=st.sampled_from(ZONES),
    increment=st.sampled_from([1, 15, 30, 60, 45]),
)
def test_pool_is_rounded_up_to_less_than_one_increment(
    items: list[WorkItem], tz: str, increment: int
) -> None:
    for bill in bill_days(items, tz=tz, increment_minutes=increment):
        billed = bill.unscheduled_minutes
        assert billed % increment == 0
        if bill.raw_unscheduled == timedelta(0):
            assert billed == 0
        else:
            assert (
                bill.raw_unscheduled
                <= billed * MINUTE
                < bill.raw_unscheduled + (increment * MINUTE)
            )
        assert bill.total_minutes == (
            billed + bill.scheduled_minutes + bill.late_cancellation_minutes
        )


@SETTINGS
@given(
    items=st.lists(work_items(), min_size=1, max_size=8),
    tz=st.sampled_from(ZONES),
    which=st.integers(0, 7),
    where=st.integers(0, 1_000_000),
)
def test_splitting_unscheduled_work_changes_no_daily_total(
    items: list[WorkItem], tz: str, which: int, where: int
) -> None:
    item = items[which % len(items)]
    if item.kind is not WorkKind.UNSCHEDULED:
        item = WorkItem(
            customer_id=item.customer_id,
            person=item.person,
            kind=WorkKind.UNSCHEDULED,
            start=item.start,
            end=item.end,
            billable=item.billable,
        )
        items = [*items, item]
    instant = item.start + item.duration * where // 1_000_000
    before, after = split_at(item, instant)
    rest = [i for i in items if i is not item]
    assert totals(bill_days([*rest, before, after], tz=tz)) == totals(bill_days(items, tz=tz))


@SETTINGS
@given(items=st.lists(work_items(), max_size=8), tz=st.sampled_from(ZONES), data=st.data())
def test_order_of_items_changes_nothing(
    items: list[WorkItem], tz: str, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(items))
    first, second = bill_days(items, tz=tz), bill_days(shuffled, tz=tz)
    assert totals(first) == totals(second)
    assert [Counter(b.items) for b in first] == [Counter(b.items) for b in second]
    assert sum(b.total_minutes for b in first) == sum(b.total_minutes for b in second)


@SETTINGS
@given(item=work_items(kinds=(WorkKind.UNSCHEDULED,)), tz=st.sampled_from(ZONES))
def test_midnight_split_keeps_every_second_on_its_own_local_day(item: WorkItem, tz: str) -> None:
    zone = ZoneInfo(tz)
    bills = bill_days([item], tz=tz)
    if not item.billable:
        assert bills == []
        return
    assert sum((b.raw_unscheduled for b in bills), timedelta(0)) == item.duration
    days = [b.day for b in bills]
    assert days == sorted(set(days))
    for bill in bills:
        (part,) = bill.items
        assert bill.day_start <= part.start <= part.end <= bill.day_end
        assert part.start.astimezone(zone).date() == bill.day
        assert bill.day_start.astimezone(zone).date() == bill.day
        assert (bill.day_end - timedelta(microseconds=1)).astimezone(zone).date() == bill.day
    for earlier, later in pairwise(bills):
        assert earlier.day_end == later.day_start


@SETTINGS
@given(
    items=st.lists(work_items(kinds=(WorkKind.UNSCHEDULED,), persons=("ann",)), max_size=6),
    tz=st.sampled_from(ZONES),
)
def test_one_person_is_billed_for_the_union_of_their_time(items: list[WorkItem], tz: str) -> None:
    for customer in ("acme", "beta"):
        spans = sorted((i.start, i.end) for i in items if i.billable and i.customer_id == customer)
        union = timedelta(0)
        reach: datetime | None = None
        for s, e in spans:
            if reach is None or s > reach:
                union += e - s
                reach = e
            elif e > reach:
                union += e - reach
                reach = e
        bills = [b for b in bill_days(items, tz=tz) if b.customer_id == customer]
        assert sum((b.raw_unscheduled for b in bills), timedelta(0)) == union


# --- the ledger ----------------------------------------------------------------------------------

LEDGER_TZ = "America/New_York"
LEDGER_START = date(2024, 1, 1)


@st.composite
def hour_blocks(draw: st.DrawFn) -> list[HourBlock]:
    n = draw(st.integers(0, 5))
    blocks = []
    for k in range(n):
        when = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(
            minutes=draw(st.integers(0, 300 * 24 * 60))
        )
        blocks.append(
            HourBlock(
                id=f"b{k}",
                customer_id="acme",
                purchased_at=when,
                minutes=draw(st.integers(1, 20)) * 30,
                valid_for=draw(
                    st.sampled_from([timedelta(days=90), timedelta(days=30), timedelta(days=1)])
                ),
            )
        )
    return blocks


@st.composite
def day_bills(draw: st.DrawFn) -> list[DayBill]:
    offsets = draw(st.lists(st.integers(0, 320), unique=True, max_size=20))
    items = []
    zone = ZoneInfo(LEDGER_TZ)
    for offset in offsets:
        day = LEDGER_START + timedelta(days=offset)
        start = datetime(day.year, day.month, day.day, 9, tzinfo=zone)
        items.append(
            WorkItem(
                customer_id="acme",
                person="ann",
                kind=WorkKind.UNSCHEDULED,
                start=start,
                end=start + timedelta(minutes=draw(st.integers(0, 400))),
                billable=True,
            )
        )
    return bill_days(items, tz=LEDGER_TZ)


@SETTINGS
@given(
    blocks=hour_blocks(),
    bills=day_bills(),
    first=st.integers(0, 330),
    length=st.integers(0, 120),
    cut=st.none() | st.integers(0, 400 * 24),
)
def test_statement_always_balances(
    blocks: list[HourBlock], bills: list[DayBill], first: int, length: int, cut: int | None
) -> None:
    start = LEDGER_START + timedelta(days=first)
    end = start + timedelta(days=length)
    zone = ZoneInfo(LEDGER_TZ)
    opens = datetime(start.year, start.month, start.day, tzinfo=zone)
    as_of = None if cut is None else opens + timedelta(hours=cut)
    st_ = statement(blocks, bills, start=start, end=end, tz=LEDGER_TZ, as_of=as_of)
    assert (
        st_.opening_balance + st_.purchased_minutes - st_.drawn_minutes - st_.forfeited_minutes
    ) == st_.closing_balance
    assert st_.drawn_minutes + st_.overage_minutes == st_.billed_minutes
    for line in st_.usage:
        assert line.drawn_minutes + line.overage_minutes == line.billed_minutes
        assert all(d.minutes > 0 for d in line.draws)
    assert st_.closing_balance >= 0
    assert all(e.forfeited_minutes >= 0 for e in st_.expiries)
    assert sum(b.remaining_minutes for b in st_.upcoming_expiries) == st_.closing_balance
    closing = balance(blocks, bills, st_.closes_at - timedelta(microseconds=1))
    assert closing.total_minutes == st_.closing_balance
    assert balance(blocks, bills, st_.opens_at - timedelta(microseconds=1)).total_minutes == (
        st_.opening_balance
    )


@SETTINGS
@given(blocks=hour_blocks(), bills=day_bills(), hours_in=st.integers(0, 400 * 24))
def test_every_billed_minute_is_drawn_or_overage_and_blocks_never_overdraw(
    blocks: list[HourBlock], bills: list[DayBill], hours_in: int
) -> None:
    as_of = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=hours_in)
    bal = balance(blocks, bills, as_of)
    for b in bal.blocks:
        assert 0 <= b.remaining_minutes == b.purchased_minutes - b.used_minutes
        assert b.expires_at > as_of >= b.purchased_at
    assert bal.total_minutes == sum(b.remaining_minutes for b in bal.blocks)
    everything = statement(
        blocks, bills, start=date(2023, 12, 31), end=date(2025, 12, 31), tz=LEDGER_TZ, as_of=as_of
    )
    assert everything.overage_minutes == bal.overage_minutes
    assert everything.billed_minutes == sum(b.total_minutes for b in bills if b.day_start <= as_of)
    # Nothing is refunded: all that was bought is either left, drawn, or forfeited.
    assert everything.purchased_minutes == (
        everything.closing_balance + everything.drawn_minutes + everything.forfeited_minutes
    )
