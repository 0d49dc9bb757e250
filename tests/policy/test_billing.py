"""Billable 1-on-1 time and prepaid hour blocks (seed 001)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agentdesk.policy.billing import (
    DayBill,
    Draw,
    HourBlock,
    WorkItem,
    WorkKind,
    balance,
    bill_days,
    cancellation_fee_minutes,
    escalate_at,
    round_up_to_increment,
    split_at,
    statement,
    time_report,
)
from agentdesk.policy.errors import PolicyError

TZ = "America/New_York"
NY = ZoneInfo(TZ)
UNSCHEDULED = WorkKind.UNSCHEDULED
BLOCK = WorkKind.SCHEDULED_BLOCK
LATE = WorkKind.LATE_CANCELLATION


def ny(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=NY)


def work(
    start: datetime,
    length: timedelta | int,
    *,
    customer: str = "acme",
    person: str = "ann",
    kind: WorkKind = UNSCHEDULED,
    **kw: Any,
) -> WorkItem:
    """An item of ``length`` (minutes if an int) starting at ``start``."""
    span = timedelta(minutes=length) if isinstance(length, int) else length
    kw.setdefault("billable", True)
    return WorkItem(
        customer_id=customer, person=person, kind=kind, start=start, end=start + span, **kw
    )


def one_bill(items: list[WorkItem], **kw: Any) -> DayBill:
    bills = bill_days(items, tz=kw.pop("tz", TZ), **kw)
    assert len(bills) == 1, bills
    return bills[0]


def summary(bills: list[DayBill]) -> list[tuple[str, date, timedelta, int, int, int, int]]:
    return [
        (
            b.customer_id,
            b.day,
            b.raw_unscheduled,
            b.unscheduled_minutes,
            b.scheduled_minutes,
            b.late_cancellation_minutes,
            b.total_minutes,
        )
        for b in bills
    ]


# --- daily rounding of unscheduled work ----------------------------------------------------------


def test_seed_example_five_plus_thirty_is_sixty() -> None:
    """Seed 001: "one for 5 minutes and one for 30 minutes, 5 + 30 = 35 ... 60 minutes"."""
    bill = one_bill([work(ny(2024, 5, 6, 9), 5), work(ny(2024, 5, 6, 14), 30)])
    assert bill.raw_unscheduled == timedelta(minutes=35)
    assert bill.raw_unscheduled_seconds == 35 * 60
    assert bill.unscheduled_minutes == 60
    assert bill.total_minutes == 60
    assert (bill.customer_id, bill.day, bill.tz) == ("acme", date(2024, 5, 6), TZ)


@pytest.mark.parametrize(
    ("length", "billed"),
    [
        (timedelta(minutes=30), 30),
        (timedelta(minutes=30, seconds=1), 60),
        (timedelta(minutes=30, microseconds=1), 60),
        (timedelta(minutes=29, seconds=59), 30),
        (timedelta(seconds=1), 30),
        (timedelta(minutes=60), 60),
        (timedelta(minutes=61), 90),
        (timedelta(0), 0),
    ],
)
def test_pool_rounds_up_to_the_next_half_hour(length: timedelta, billed: int) -> None:
    bill = one_bill([work(ny(2024, 5, 6, 9), length)])
    assert bill.raw_unscheduled == length
    assert bill.unscheduled_minutes == billed


def test_zero_length_item_makes_a_zero_bill_and_no_items_make_none() -> None:
    bill = one_bill([work(ny(2024, 5, 6, 9), 0)])
    assert bill.total_minutes == 0
    assert len(bill.items) == 1
    assert bill_days([], tz=TZ) == []


def test_raw_seconds_display_rounds_up_but_billing_is_exact() -> None:
    bill = one_bill([work(ny(2024, 5, 6, 9), timedelta(minutes=30, microseconds=500))])
    assert bill.raw_unscheduled_seconds == 30 * 60 + 1
    assert bill.unscheduled_minutes == 60


def test_several_people_and_an_extra_engineer_share_one_rounding() -> None:
    """Seed 001: an extra engineer the customer asked for is "billed in addition"."""
    items = [
        work(ny(2024, 5, 6, 10), 10, person="ann"),
        work(ny(2024, 5, 6, 10), 10, person="bob"),
        work(ny(2024, 5, 6, 10), 15, person="eve", extra_engineer=True),
    ]
    bill = one_bill(items)
    assert bill.raw_unscheduled == timedelta(minutes=35)
    assert bill.unscheduled_minutes == 60  # 30 + 30 + 30 if rounded per person: one rounding only
    assert [i.extra_engineer for i in bill.items if i.person == "eve"] == [True]


def test_overlapping_work_by_the_same_person_counts_once() -> None:
    items = [
        work(ny(2024, 5, 6, 10), 20),
        work(ny(2024, 5, 6, 10, 10), 20),
        work(ny(2024, 5, 6, 10, 5), 5),
    ]
    bill = one_bill(items)
    assert bill.raw_unscheduled == timedelta(minutes=30)
    assert bill.unscheduled_minutes == 30
    assert len(bill.items) == 3  # all listed, the union billed


def test_identical_duplicate_items_of_one_person_count_once() -> None:
    item = work(ny(2024, 5, 6, 10), 25)
    assert one_bill([item, item]).raw_unscheduled == timedelta(minutes=25)


def test_overlapping_work_by_different_people_counts_for_both() -> None:
    bill = one_bill(
        [work(ny(2024, 5, 6, 10), 20, person="ann"), work(ny(2024, 5, 6, 10, 10), 20, person="bob")]
    )
    assert bill.raw_unscheduled == timedelta(minutes=40)
    assert bill.unscheduled_minutes == 60


def test_same_person_for_two_customers_bills_each_customer() -> None:
    bills = bill_days(
        [
            work(ny(2024, 5, 6, 10), 20, customer="acme"),
            work(ny(2024, 5, 6, 10), 20, customer="beta"),
        ],
        tz=TZ,
    )
    assert [(b.customer_id, b.raw_unscheduled) for b in bills] == [
        ("acme", timedelta(minutes=20)),
        ("beta", timedelta(minutes=20)),
    ]


def test_customers_are_rounded_separately() -> None:
    bills = bill_days(
        [
            work(ny(2024, 5, 6, 10), 5, customer="beta"),
            work(ny(2024, 5, 6, 11), 5, customer="acme"),
        ],
        tz=TZ,
    )
    assert [(b.customer_id, b.unscheduled_minutes) for b in bills] == [("acme", 30), ("beta", 30)]


def test_days_are_rounded_separately() -> None:
    bills = bill_days([work(ny(2024, 5, 7, 10), 5), work(ny(2024, 5, 6, 10), 5)], tz=TZ)
    assert [(b.day, b.raw_unscheduled, b.unscheduled_minutes) for b in bills] == [
        (date(2024, 5, 6), timedelta(minutes=5), 30),
        (date(2024, 5, 7), timedelta(minutes=5), 30),
    ]


def test_work_across_local_midnight_is_split_and_rounded_per_day() -> None:
    item = work(ny(2024, 5, 6, 23, 50), 20, id="w1")
    bills = bill_days([item], tz=TZ)
    assert [(b.day, b.raw_unscheduled, b.unscheduled_minutes) for b in bills] == [
        (date(2024, 5, 6), timedelta(minutes=10), 30),
        (date(2024, 5, 7), timedelta(minutes=10), 30),
    ]
    first, second = (b.items[0] for b in bills)
    assert (first.start, first.end) == (ny(2024, 5, 6, 23, 50), ny(2024, 5, 7))
    assert (second.start, second.end) == (ny(2024, 5, 7), ny(2024, 5, 7, 0, 10))
    assert first.id == second.id == "w1"


def test_local_day_is_the_team_time_zone_not_utc() -> None:
    """22:30 in New York is 02:30 UTC the next day: billed on the New York date."""
    start = datetime(2024, 5, 7, 2, 30, tzinfo=UTC)
    assert one_bill([work(start, 10)]).day == date(2024, 5, 6)
    assert one_bill([work(start, 10)], tz="UTC").day == date(2024, 5, 7)
    # Items may be given in any zone; the team's zone decides the day.
    crossing = work(datetime(2024, 5, 7, 3, 50, tzinfo=UTC), 20)  # 23:50-00:10 New York
    assert [b.raw_unscheduled for b in bill_days([crossing], tz=TZ)] == [
        timedelta(minutes=10),
        timedelta(minutes=10),
    ]


def test_spring_forward_day_has_23_hours() -> None:
    whole_day = WorkItem(
        customer_id="acme",
        person="ann",
        kind=UNSCHEDULED,
        billable=True,
        start=ny(2024, 3, 10),
        end=ny(2024, 3, 11),
    )
    bill = one_bill([whole_day])
    assert bill.raw_unscheduled == timedelta(hours=23)
    assert bill.day_end - bill.day_start == timedelta(hours=23)
    # 01:30 EST to 03:30 EDT is one hour of work, not two.
    bill = one_bill(
        [
            WorkItem(
                customer_id="acme",
                person="ann",
                kind=UNSCHEDULED,
                billable=True,
                start=ny(2024, 3, 10, 1, 30),
                end=ny(2024, 3, 10, 3, 30),
            )
        ]
    )
    assert bill.raw_unscheduled == timedelta(hours=1)
    assert bill.unscheduled_minutes == 60


def test_fall_back_day_has_25_hours_and_splits_at_local_midnight() -> None:
    start = datetime(2024, 11, 3, 3, 30, tzinfo=UTC)  # 23:30 EDT on 2 November
    bills = bill_days([work(start, timedelta(hours=27))], tz=TZ)  # to 01:30 EST on 4 November
    assert [(b.day, b.raw_unscheduled) for b in bills] == [
        (date(2024, 11, 2), timedelta(minutes=30)),
        (date(2024, 11, 3), timedelta(hours=25)),
        (date(2024, 11, 4), timedelta(hours=1, minutes=30)),
    ]
    assert [b.unscheduled_minutes for b in bills] == [30, 1500, 90]


def test_day_split_where_dst_skips_local_midnight() -> None:
    """Havana jumps from 00:00 to 01:00: 10 March 2024 begins at 01:00 local."""
    havana = ZoneInfo("America/Havana")
    start = datetime(2024, 3, 9, 23, 45, tzinfo=havana)
    bills = bill_days([work(start, 30)], tz="America/Havana")  # ends 01:15 CDT
    assert [(b.day, b.raw_unscheduled) for b in bills] == [
        (date(2024, 3, 9), timedelta(minutes=15)),
        (date(2024, 3, 10), timedelta(minutes=15)),
    ]
    assert bills[1].day_start == datetime(2024, 3, 10, 1, 0, tzinfo=havana)
    assert bills[0].day_end == bills[1].day_start


def test_non_billable_general_support_is_not_billed() -> None:
    general = work(ny(2024, 5, 6, 9), 50, billable=False)
    assert bill_days([general], tz=TZ) == []
    bill = one_bill([general, work(ny(2024, 5, 6, 11), 5)])
    assert bill.raw_unscheduled == timedelta(minutes=5)
    assert bill.unscheduled_minutes == 30
    assert general not in bill.items


def test_escalation_bills_from_the_escalation_moment() -> None:
    """Seed 001: general support escalates to 1-on-1, "whose time is billable"."""
    call = work(ny(2024, 5, 6, 10), 50, billable=False, id="call")
    general, one_on_one = escalate_at(call, ny(2024, 5, 6, 10, 20))
    assert (general.billable, general.start, general.end) == (
        False,
        call.start,
        ny(2024, 5, 6, 10, 20),
    )
    assert (one_on_one.billable, one_on_one.start, one_on_one.end) == (
        True,
        ny(2024, 5, 6, 10, 20),
        call.end,
    )
    bill = one_bill([general, one_on_one])
    assert bill.raw_unscheduled == timedelta(minutes=30)
    assert bill.items == (one_on_one,)


def test_split_at_keeps_everything_but_the_times() -> None:
    item = work(ny(2024, 5, 6, 10), 30, extra_engineer=True, id="x")
    before, after = split_at(item, ny(2024, 5, 6, 10, 10))
    assert before == item._replace(end=ny(2024, 5, 6, 10, 10))
    assert after == item._replace(start=ny(2024, 5, 6, 10, 10))
    # The ends are allowed: one part is empty.
    empty, whole = split_at(item, item.start)
    assert empty.duration == timedelta(0)
    assert whole == item


@pytest.mark.parametrize(
    ("instant", "field"),
    [
        (datetime(2024, 5, 6, 10, 10), "instant"),  # noqa: DTZ001 - naive on purpose
        (ny(2024, 5, 6, 9, 59), "instant"),
        (ny(2024, 5, 6, 10, 31), "instant"),
    ],
)
def test_split_at_rejects_a_bad_instant(instant: datetime, field: str) -> None:
    with pytest.raises(PolicyError) as err:
        split_at(work(ny(2024, 5, 6, 10), 30), instant)
    assert err.value.field == field


@pytest.mark.parametrize("kind", [BLOCK, LATE])
def test_only_unscheduled_work_splits(kind: WorkKind) -> None:
    with pytest.raises(PolicyError) as err:
        split_at(work(ny(2024, 5, 6, 10), 30, kind=kind), ny(2024, 5, 6, 10, 10))
    assert err.value.field == "item"


# --- scheduled blocks ----------------------------------------------------------------------------


def test_scheduled_block_is_billed_as_scheduled_not_pooled() -> None:
    """45-minute block + 10 minutes outside: 45 + 30, not (45 + 10 -> 60)."""
    bill = one_bill([work(ny(2024, 5, 6, 9), 45, kind=BLOCK), work(ny(2024, 5, 6, 14), 10)])
    assert bill.scheduled_minutes == 45
    assert bill.raw_unscheduled == timedelta(minutes=10)
    assert bill.unscheduled_minutes == 30
    assert bill.total_minutes == 75


def test_block_alone_is_not_rounded_to_the_increment() -> None:
    bill = one_bill([work(ny(2024, 5, 6, 9), 45, kind=BLOCK)])
    assert (bill.scheduled_minutes, bill.unscheduled_minutes, bill.total_minutes) == (45, 0, 45)


def test_fractional_block_minutes_round_up_per_block() -> None:
    bill = one_bill(
        [
            work(ny(2024, 5, 6, 9), timedelta(minutes=44, seconds=30), kind=BLOCK),
            work(ny(2024, 5, 6, 11), timedelta(minutes=10, seconds=1), kind=BLOCK),
        ]
    )
    assert bill.scheduled_minutes == 45 + 11


def test_block_across_midnight_is_billed_whole_on_its_start_date() -> None:
    bill = one_bill([work(ny(2024, 5, 6, 23, 30), 60, kind=BLOCK)])
    assert (bill.day, bill.scheduled_minutes) == (date(2024, 5, 6), 60)


def test_own_timer_inside_own_block_is_not_billed_twice() -> None:
    block = work(ny(2024, 5, 6, 10), 60, kind=BLOCK)
    timer = work(ny(2024, 5, 6, 10), 75)  # ran 15 minutes over the booking
    bill = one_bill([block, timer])
    assert bill.scheduled_minutes == 60
    assert bill.raw_unscheduled == timedelta(minutes=15)
    assert bill.total_minutes == 90


def test_another_persons_time_during_a_block_is_billed_in_addition() -> None:
    block = work(ny(2024, 5, 6, 10), 60, kind=BLOCK, person="ann")
    extra = work(ny(2024, 5, 6, 10), 60, person="eve", extra_engineer=True)
    bill = one_bill([block, extra])
    assert (bill.scheduled_minutes, bill.unscheduled_minutes) == (60, 60)


def test_a_non_billable_block_neither_bills_nor_absorbs_time() -> None:
    coaching = work(ny(2024, 5, 6, 10), 60, kind=BLOCK, billable=False)
    bill = one_bill([coaching, work(ny(2024, 5, 6, 10), 20)])
    assert (bill.scheduled_minutes, bill.raw_unscheduled) == (0, timedelta(minutes=20))


def test_a_block_for_another_customer_does_not_absorb_time() -> None:
    bills = bill_days(
        [work(ny(2024, 5, 6, 10), 60, kind=BLOCK, customer="beta"), work(ny(2024, 5, 6, 10), 20)],
        tz=TZ,
    )
    assert summary(bills) == [
        ("acme", date(2024, 5, 6), timedelta(minutes=20), 30, 0, 0, 30),
        ("beta", date(2024, 5, 6), timedelta(0), 0, 60, 0, 60),
    ]


def test_timer_across_midnight_inside_a_block_is_subtracted_on_both_days() -> None:
    block = work(ny(2024, 5, 6, 23, 30), 60, kind=BLOCK)
    timer = work(ny(2024, 5, 6, 23, 30), 70)
    bills = bill_days([block, timer], tz=TZ)
    assert summary(bills) == [
        ("acme", date(2024, 5, 6), timedelta(0), 0, 60, 0, 60),
        ("acme", date(2024, 5, 7), timedelta(minutes=10), 30, 0, 0, 30),
    ]


# --- late cancellations --------------------------------------------------------------------------


def test_late_cancellation_adds_thirty_minutes_outside_the_pool() -> None:
    bill = one_bill([work(ny(2024, 5, 6, 15), 60, kind=LATE), work(ny(2024, 5, 6, 9), 5)])
    assert (bill.unscheduled_minutes, bill.late_cancellation_minutes, bill.total_minutes) == (
        30,
        30,
        60,
    )


def test_each_late_cancellation_is_charged() -> None:
    bill = one_bill(
        [work(ny(2024, 5, 6, 9), 60, kind=LATE), work(ny(2024, 5, 6, 15), 60, kind=LATE)]
    )
    assert bill.late_cancellation_minutes == 60


def test_late_cancellation_is_billed_on_the_appointments_date() -> None:
    bill = one_bill([work(ny(2024, 5, 6, 23, 30), 60, kind=LATE, cancelled_at=ny(2024, 5, 6, 9))])
    assert (bill.day, bill.late_cancellation_minutes) == (date(2024, 5, 6), 30)


@pytest.mark.parametrize(
    ("cancelled_at", "minutes"),
    [
        (ny(2024, 5, 5, 15), 0),  # exactly 24 hours before
        (ny(2024, 5, 5, 15, 0, 1), 30),  # 23:59:59 before
        (ny(2024, 5, 5, 14, 59, 59), 0),
        (ny(2024, 5, 6, 15), 30),  # at the start
        (ny(2024, 5, 6, 15, 30), 30),  # after the start
    ],
)
def test_late_cancellation_with_its_cancellation_time(cancelled_at: datetime, minutes: int) -> None:
    bill = one_bill([work(ny(2024, 5, 6, 15), 60, kind=LATE, cancelled_at=cancelled_at)])
    assert bill.late_cancellation_minutes == minutes


def test_late_cancellation_fee_and_notice_are_parameters() -> None:
    item = work(ny(2024, 5, 6, 15), 60, kind=LATE, cancelled_at=ny(2024, 5, 6, 1))
    assert one_bill([item], late_cancel_minutes=15).late_cancellation_minutes == 15
    assert one_bill([item], cancel_notice=timedelta(hours=12)).late_cancellation_minutes == 0
    assert (
        one_bill(
            [item._replace(cancelled_at=None)], cancel_notice=timedelta(hours=1)
        ).late_cancellation_minutes
        == 30
    )


@pytest.mark.parametrize(
    ("before_start", "fee"),
    [
        (timedelta(hours=24), 0),
        (timedelta(hours=24) - timedelta(seconds=1), 30),
        (timedelta(hours=24) - timedelta(microseconds=1), 30),
        (timedelta(hours=48), 0),
        (timedelta(0), 30),
        (-timedelta(minutes=10), 30),
    ],
)
def test_cancellation_fee_minutes(before_start: timedelta, fee: int) -> None:
    start = ny(2024, 5, 6, 15)
    assert cancellation_fee_minutes(start, start - before_start) == fee


def test_cancellation_notice_is_elapsed_time_across_dst() -> None:
    """Appointment 10 March 12:00 EDT; 9 March 12:00 EST is only 23 hours before."""
    start = ny(2024, 3, 10, 12)
    assert cancellation_fee_minutes(start, ny(2024, 3, 9, 12)) == 30
    assert cancellation_fee_minutes(start, ny(2024, 3, 9, 11)) == 0
    assert cancellation_fee_minutes(start, datetime(2024, 3, 9, 16, tzinfo=UTC)) == 0


def test_cancellation_fee_parameters() -> None:
    start = ny(2024, 5, 6, 15)
    assert cancellation_fee_minutes(start, ny(2024, 5, 6, 1), fee_minutes=60) == 60
    assert cancellation_fee_minutes(start, ny(2024, 5, 6, 1), notice=timedelta(hours=12)) == 0
    assert cancellation_fee_minutes(start, start, notice=timedelta(0)) == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"appointment_start": datetime(2024, 5, 6, 15)}, "appointment_start"),  # noqa: DTZ001
        ({"cancelled_at": datetime(2024, 5, 6, 1)}, "cancelled_at"),  # noqa: DTZ001
        ({"notice": timedelta(hours=-1)}, "notice"),
        ({"fee_minutes": -1}, "fee_minutes"),
        ({"fee_minutes": True}, "fee_minutes"),
    ],
)
def test_cancellation_fee_bad_input(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {
        "appointment_start": ny(2024, 5, 6, 15),
        "cancelled_at": ny(2024, 5, 6, 1),
    }
    args.update(kwargs)
    start, cancelled = args.pop("appointment_start"), args.pop("cancelled_at")
    with pytest.raises(PolicyError) as err:
        cancellation_fee_minutes(start, cancelled, **args)
    assert err.value.field == field


# --- increments and bad input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "increment", "billed"),
    [
        ([5, 11], 15, 30),
        ([15], 15, 15),
        ([1], 15, 15),
        ([16], 15, 30),
        ([61], 60, 120),
        ([7], 1, 7),
    ],
)
def test_custom_increment(minutes: list[int], increment: int, billed: int) -> None:
    items = [work(ny(2024, 5, 6, 9 + n), m) for n, m in enumerate(minutes)]
    bill = one_bill(items, increment_minutes=increment)
    assert (bill.unscheduled_minutes, bill.increment_minutes) == (billed, increment)


@pytest.mark.parametrize(
    ("raw", "increment", "minutes"),
    [
        (timedelta(0), 30, 0),
        (timedelta(minutes=35), 30, 60),
        (timedelta(minutes=30), 30, 30),
        (timedelta(hours=2, seconds=1), 30, 150),
        (timedelta(minutes=1), 15, 15),
    ],
)
def test_round_up_to_increment(raw: timedelta, increment: int, minutes: int) -> None:
    assert round_up_to_increment(raw, increment) == minutes


@pytest.mark.parametrize("bad", [0, -30, 1.5, "30", True, None])
def test_bad_increment(bad: Any) -> None:
    with pytest.raises(PolicyError) as err:
        bill_days([work(ny(2024, 5, 6, 9), 5)], tz=TZ, increment_minutes=bad)
    assert err.value.field == "increment_minutes"
    with pytest.raises(PolicyError):
        round_up_to_increment(timedelta(minutes=5), bad)


def test_round_up_rejects_negative_time() -> None:
    with pytest.raises(PolicyError) as err:
        round_up_to_increment(timedelta(minutes=-1))
    assert err.value.field == "raw"


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "", "America", "../etc/passwd", None])
def test_unknown_time_zone(tz: Any) -> None:
    with pytest.raises(PolicyError) as err:
        bill_days([work(ny(2024, 5, 6, 9), 5)], tz=tz)
    assert err.value.field == "tz"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"late_cancel_minutes": -1}, "late_cancel_minutes"),
        ({"cancel_notice": timedelta(hours=-1)}, "cancel_notice"),
        ({"cancel_notice": 24}, "cancel_notice"),
    ],
)
def test_bad_bill_parameters(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyError) as err:
        bill_days([], tz=TZ, **kwargs)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start": datetime(2024, 5, 6, 9)}, "start"),  # noqa: DTZ001 - naive on purpose
        ({"end": datetime(2024, 5, 6, 9)}, "end"),  # noqa: DTZ001
        ({"end": ny(2024, 5, 6, 8, 59)}, "end"),
        ({"start": "2024-05-06T09:00"}, "start"),
        ({"customer_id": ""}, "customer_id"),
        ({"person": "  "}, "person"),
        ({"kind": "consulting"}, "kind"),
        ({"billable": 1}, "billable"),
        ({"extra_engineer": None}, "extra_engineer"),
        ({"cancelled_at": ny(2024, 5, 5, 9)}, "cancelled_at"),
        ({"kind": LATE, "cancelled_at": datetime(2024, 5, 5, 9)}, "cancelled_at"),  # noqa: DTZ001
    ],
)
def test_bad_work_items(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {
        "customer_id": "acme",
        "person": "ann",
        "kind": UNSCHEDULED,
        "start": ny(2024, 5, 6, 9),
        "end": ny(2024, 5, 6, 10),
        "billable": True,
    }
    args.update(kwargs)
    with pytest.raises(PolicyError) as err:
        WorkItem(**args)
    assert err.value.field == field


def test_work_item_accepts_the_kind_by_value_and_is_frozen() -> None:
    item = WorkItem(
        customer_id="acme",
        person="ann",
        kind="scheduled_block",  # type: ignore[arg-type]
        start=ny(2024, 5, 6, 9),
        end=ny(2024, 5, 6, 10),
        billable=True,
    )
    assert item.kind is BLOCK
    with pytest.raises(AttributeError):
        item.billable = False  # type: ignore[misc]
    # The named tuple's own ways to make one are checked too (and keep instants in UTC).
    with pytest.raises(PolicyError) as err:
        item._replace(end=ny(2024, 5, 6, 8))
    assert err.value.field == "end"
    with pytest.raises(PolicyError) as err:
        WorkItem._make(["acme", "ann", "nonsense", item.start, item.end, True])
    assert err.value.field == "kind"
    made = WorkItem._make(["acme", "ann", "scheduled_block", ny(2024, 5, 6, 9), item.end, True])
    assert made == item
    assert made.start.tzinfo is UTC


def test_duration_is_elapsed_time_even_in_one_zone_across_dst() -> None:
    item = work(ny(2024, 3, 9, 12), 0)
    item = item._replace(end=ny(2024, 3, 10, 12))
    assert item.duration == timedelta(hours=23)


def test_items_may_be_any_iterable() -> None:
    items = [work(ny(2024, 5, 6, 9), 5), work(ny(2024, 5, 6, 14), 30)]
    assert bill_days(iter(items), tz=TZ) == bill_days(items, tz=TZ)


def test_day_bill_checks_its_own_rounding() -> None:
    bill = one_bill([work(ny(2024, 5, 6, 9), 35)])
    with pytest.raises(PolicyError) as err:
        replace(bill, unscheduled_minutes=30)
    assert err.value.field == "unscheduled_minutes"
    with pytest.raises(PolicyError) as err:
        replace(bill, day_end=bill.day_start)
    assert err.value.field == "day_end"
    with pytest.raises(PolicyError) as err:
        replace(bill, scheduled_minutes=-1)
    assert err.value.field == "scheduled_minutes"


# --- the time report -----------------------------------------------------------------------------


def test_time_report_lists_items_and_day_totals() -> None:
    items = [
        work(ny(2024, 5, 6, 9), 5, id="a"),
        work(ny(2024, 5, 6, 14), 30, id="b", person="eve", extra_engineer=True),
        work(ny(2024, 5, 6, 16), 20, id="g", billable=False),
        work(ny(2024, 5, 6, 23, 50), 20, id="m"),
        work(ny(2024, 5, 7, 10), 45, kind=BLOCK, id="s"),
        work(ny(2024, 5, 7, 15), 60, kind=LATE, id="c"),
        work(ny(2024, 5, 6, 10), 40, customer="beta", id="other"),
    ]
    report = time_report(
        items, tz=TZ, start=date(2024, 5, 6), end=date(2024, 5, 7), customer_id="acme"
    )
    rows = [
        (
            r.day,
            r.item_id,
            r.person,
            r.kind,
            r.duration,
            r.billable,
            r.extra_engineer,
            r.charged_minutes,
        )
        for r in report.rows
    ]
    d6, d7 = date(2024, 5, 6), date(2024, 5, 7)
    m = timedelta(minutes=1)
    assert rows == [
        (d6, "a", "ann", UNSCHEDULED, 5 * m, True, False, None),
        (d6, "b", "eve", UNSCHEDULED, 30 * m, True, True, None),
        (d6, "g", "ann", UNSCHEDULED, 20 * m, False, False, 0),
        (d6, "m", "ann", UNSCHEDULED, 10 * m, True, False, None),
        (d7, "m", "ann", UNSCHEDULED, 10 * m, True, False, None),
        (d7, "s", "ann", BLOCK, 45 * m, True, False, 45),
        (d7, "c", "ann", LATE, timedelta(0), True, False, 30),
    ]
    assert report.rows[3].end == ny(2024, 5, 7)
    assert report.rows[3].start.tzinfo == NY
    assert [(d.day, d.raw_unscheduled, d.total_minutes) for d in report.days] == [
        (d6, 45 * m, 60),
        (d7, 10 * m, 30 + 45 + 30),
    ]
    assert report.raw_unscheduled == 55 * m
    assert report.billed_minutes == 165


def test_time_report_period_cuts_on_local_days() -> None:
    items = [work(ny(2024, 5, 6, 23, 50), 20, id="m"), work(ny(2024, 5, 8, 9), 5, id="late")]
    report = time_report(items, tz=TZ, start=date(2024, 5, 7), end=date(2024, 5, 7))
    assert [(r.day, r.item_id, r.duration) for r in report.rows] == [
        (date(2024, 5, 7), "m", timedelta(minutes=10))
    ]
    assert [d.day for d in report.days] == [date(2024, 5, 7)]
    assert report.customer_id is None


def test_time_report_bad_period() -> None:
    with pytest.raises(PolicyError) as err:
        time_report([], tz=TZ, start=date(2024, 5, 7), end=date(2024, 5, 6))
    assert err.value.field == "end"
    with pytest.raises(PolicyError) as err:
        time_report([], tz=TZ, start=ny(2024, 5, 6), end=date(2024, 5, 6))
    assert err.value.field == "start"


# --- hour blocks ---------------------------------------------------------------------------------


def hours(
    block_id: str, purchased_at: datetime, h: int = 10, customer: str = "acme", **kw: Any
) -> HourBlock:
    return HourBlock.of_hours(
        id=block_id, customer_id=customer, purchased_at=purchased_at, hours=h, **kw
    )


def day_bill(day: date, minutes: int, *, customer: str = "acme", tz: str = TZ) -> DayBill:
    """A day billed ``minutes`` as one scheduled block (the ledger only sees totals)."""
    zone = ZoneInfo(tz)
    start = datetime(day.year, day.month, day.day, 9, tzinfo=zone)
    return one_bill([work(start, minutes, kind=BLOCK, customer=customer)], tz=tz)


def test_hour_block_expires_ninety_days_of_elapsed_time_after_purchase() -> None:
    block = hours("b1", ny(2024, 1, 2, 10))
    assert block.minutes == 600
    assert block.expires_at == datetime(2024, 4, 1, 15, tzinfo=UTC)
    assert block.expires_at.astimezone(NY) == ny(2024, 4, 1, 11)  # EDT by then
    assert hours("b2", ny(2024, 1, 2, 10), valid_for=timedelta(days=30)).expires_at == (
        datetime(2024, 2, 1, 15, tzinfo=UTC)
    )


def test_balance_day_90_versus_day_91() -> None:
    block = hours("b1", ny(2024, 1, 2, 10), 2)
    just_before = balance([block], [], block.expires_at - timedelta(microseconds=1))
    assert just_before.total_minutes == 120
    assert just_before.next_expiry == block.expires_at
    assert just_before.next_expiry_minutes == 120
    at_expiry = balance([block], [], block.expires_at)
    assert at_expiry.total_minutes == 0
    assert at_expiry.blocks == ()
    assert at_expiry.next_expiry is None


def test_usage_on_day_90_draws_and_day_91_is_overage() -> None:
    block = hours("b1", ny(2024, 1, 2, 10), 2)
    day90, day91 = day_bill(date(2024, 4, 1), 60), day_bill(date(2024, 4, 2), 30)
    st = statement([block], [day90, day91], start=date(2024, 4, 1), end=date(2024, 4, 2), tz=TZ)
    assert [(u.day, u.draws, u.overage_minutes) for u in st.usage] == [
        (date(2024, 4, 1), (Draw("b1", 60),), 0),
        (date(2024, 4, 2), (), 30),
    ]
    assert [(e.block_id, e.forfeited_minutes) for e in st.expiries] == [("b1", 60)]
    assert (st.opening_balance, st.closing_balance, st.overage_minutes) == (120, 0, 30)


def test_a_block_bought_at_midnight_is_not_usable_on_the_day_it_expires() -> None:
    block = hours("b1", datetime(2024, 1, 1, tzinfo=UTC), 1)
    assert block.expires_at == datetime(2024, 3, 31, tzinfo=UTC)
    assert block.covers(day_bill(date(2024, 3, 30), 30, tz="UTC"))
    assert not block.covers(day_bill(date(2024, 3, 31), 30, tz="UTC"))


def test_hours_bought_later_the_same_day_cover_that_days_work() -> None:
    bill = day_bill(date(2024, 5, 6), 60)  # worked 09:00-10:00
    block = hours("b1", ny(2024, 5, 6, 15), 1)
    bal = balance([block], [bill], ny(2024, 5, 6, 23, 59))
    assert (bal.total_minutes, bal.overage_minutes) == (0, 0)
    # Provisional during the day: at noon the purchase had not happened yet.
    noon = balance([block], [bill], ny(2024, 5, 6, 12))
    assert (noon.total_minutes, noon.overage_minutes) == (0, 60)


def test_draws_from_the_oldest_block_first() -> None:
    old, new = hours("old", ny(2024, 1, 10), 1), hours("new", ny(2024, 1, 5), 1)
    bal = balance([old, new], [day_bill(date(2024, 2, 1), 30)], ny(2024, 2, 2))
    assert [(b.block_id, b.used_minutes, b.remaining_minutes) for b in bal.blocks] == [
        ("new", 30, 30),
        ("old", 0, 60),
    ]


def test_same_purchase_time_breaks_ties_by_block_id() -> None:
    b = hours("b", ny(2024, 1, 5), 1)
    a = hours("a", ny(2024, 1, 5), 1)
    bal = balance([b, a], [day_bill(date(2024, 2, 1), 30)], ny(2024, 2, 2))
    assert [(x.block_id, x.used_minutes) for x in bal.blocks] == [("a", 30), ("b", 0)]


def test_usage_spanning_two_blocks() -> None:
    first, second = hours("b1", ny(2024, 1, 5), 1), hours("b2", ny(2024, 1, 6), 2)
    bill = day_bill(date(2024, 2, 1), 90)
    st = statement([first, second], [bill], start=date(2024, 2, 1), end=date(2024, 2, 1), tz=TZ)
    assert st.usage[0].draws == (Draw("b1", 60), Draw("b2", 30))
    assert st.closing_balance == 90
    assert [(b.block_id, b.remaining_minutes) for b in st.upcoming_expiries] == [("b2", 90)]


def test_an_expired_older_block_is_skipped_and_its_rest_forfeited() -> None:
    old = hours("old", ny(2024, 1, 2, 10), 2)  # expires 1 April 11:00 EDT
    new = hours("new", ny(2024, 3, 1), 2)
    bills = [day_bill(date(2024, 3, 15), 30), day_bill(date(2024, 4, 3), 60)]
    st = statement([old, new], bills, start=date(2024, 3, 1), end=date(2024, 4, 30), tz=TZ)
    assert [u.draws for u in st.usage] == [(Draw("old", 30),), (Draw("new", 60),)]
    assert [(e.block_id, e.forfeited_minutes, e.purchased_minutes) for e in st.expiries] == [
        ("old", 90, 120)
    ]
    assert st.forfeited_minutes == 90
    assert (st.opening_balance, st.purchased_minutes, st.closing_balance) == (120, 120, 60)


def test_expired_hours_are_never_refunded_and_fully_used_blocks_still_expire() -> None:
    used_up = hours("b1", ny(2024, 1, 2), 1)
    bills = [day_bill(date(2024, 1, 3), 60)]
    st = statement([used_up], bills, start=date(2024, 1, 1), end=date(2024, 12, 31), tz=TZ)
    assert [(e.block_id, e.forfeited_minutes) for e in st.expiries] == [("b1", 0)]
    assert st.closing_balance == 0
    assert st.upcoming_expiries == ()


def test_overage_is_recorded_and_not_absorbed_by_a_later_purchase() -> None:
    bills = [day_bill(date(2024, 5, 6), 60)]
    later = hours("b1", ny(2024, 5, 7, 9), 5)
    bal = balance([later], bills, ny(2024, 5, 8))
    assert (bal.total_minutes, bal.overage_minutes) == (300, 60)
    st = statement([later], bills, start=date(2024, 5, 1), end=date(2024, 5, 31), tz=TZ)
    assert st.usage[0].overage_minutes == 60
    assert (st.overage_minutes, st.closing_balance) == (60, 300)


def test_overage_when_the_balance_runs_out_mid_day() -> None:
    bills = [day_bill(date(2024, 5, 6), 90)]
    st = statement(
        [hours("b1", ny(2024, 5, 1), 1)], bills, start=date(2024, 5, 6), end=date(2024, 5, 6), tz=TZ
    )
    assert (st.usage[0].drawn_minutes, st.usage[0].overage_minutes) == (60, 30)
    assert st.billed_minutes == st.drawn_minutes + st.overage_minutes == 90


def test_balance_lists_open_blocks_and_next_expiry() -> None:
    a = hours("a", ny(2024, 1, 5), 1)
    b = hours("b", ny(2024, 1, 20), 2)
    c = hours("c", ny(2024, 3, 1), 1)  # bought after as_of: not yet on the balance
    bal = balance([c, b, a], [day_bill(date(2024, 2, 1), 60)], ny(2024, 2, 10))
    assert [(x.block_id, x.used_minutes, x.remaining_minutes) for x in bal.blocks] == [
        ("a", 60, 0),
        ("b", 0, 120),
    ]
    assert bal.total_minutes == 120
    assert bal.next_expiry == b.expires_at  # a is used up: nothing to lose there
    assert bal.next_expiry_minutes == 120
    assert bal.customer_id == "acme"


def test_balance_with_nothing_is_zero() -> None:
    bal = balance([], [], ny(2024, 5, 6))
    assert (bal.total_minutes, bal.blocks, bal.next_expiry, bal.overage_minutes) == (0, (), None, 0)
    assert bal.customer_id is None


def test_ledger_is_per_customer() -> None:
    blocks = [hours("a1", ny(2024, 1, 5), 1), hours("b1", ny(2024, 1, 5), 1, customer="beta")]
    bills = [day_bill(date(2024, 2, 1), 30, customer="beta")]
    with pytest.raises(PolicyError) as err:
        balance(blocks, bills, ny(2024, 2, 2))
    assert err.value.field == "customer_id"
    assert balance(blocks, bills, ny(2024, 2, 2), customer_id="acme").total_minutes == 60
    assert balance(blocks, bills, ny(2024, 2, 2), customer_id="beta").total_minutes == 30
    with pytest.raises(PolicyError):
        statement(blocks, bills, start=date(2024, 2, 1), end=date(2024, 2, 1), tz=TZ)


def test_duplicate_blocks_or_day_bills_are_refused() -> None:
    block = hours("b1", ny(2024, 1, 5), 1)
    with pytest.raises(PolicyError) as err:
        balance([block, replace(block, minutes=30)], [], ny(2024, 2, 1))
    assert err.value.field == "blocks"
    bill = day_bill(date(2024, 2, 1), 30)
    with pytest.raises(PolicyError) as err:
        balance([block], [bill, bill], ny(2024, 2, 2))
    assert err.value.field == "day_bills"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"id": ""}, "id"),
        ({"customer_id": ""}, "customer_id"),
        ({"purchased_at": datetime(2024, 1, 5)}, "purchased_at"),  # noqa: DTZ001
        ({"minutes": 0}, "minutes"),
        ({"minutes": -60}, "minutes"),
        ({"minutes": True}, "minutes"),
        ({"minutes": 60.0}, "minutes"),
        ({"valid_for": timedelta(0)}, "valid_for"),
    ],
)
def test_bad_hour_blocks(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {
        "id": "b1",
        "customer_id": "acme",
        "purchased_at": ny(2024, 1, 5),
        "minutes": 60,
    }
    args.update(kwargs)
    with pytest.raises(PolicyError) as err:
        HourBlock(**args)
    assert err.value.field == field
    with pytest.raises(PolicyError) as err:
        HourBlock.of_hours(id="b1", customer_id="acme", purchased_at=ny(2024, 1, 5), hours=0)
    assert err.value.field == "hours"


def test_balance_refuses_a_naive_as_of() -> None:
    with pytest.raises(PolicyError) as err:
        balance([], [], datetime(2024, 5, 6))  # noqa: DTZ001
    assert err.value.field == "as_of"


# --- statements ----------------------------------------------------------------------------------


def assert_balanced(st: Any) -> None:
    assert st.opening_balance + st.purchased_minutes - st.drawn_minutes - st.forfeited_minutes == (
        st.closing_balance
    )
    assert (
        st.opening_balance
        + st.purchased_minutes
        - st.billed_minutes
        - st.forfeited_minutes
        + st.overage_minutes
    ) == st.closing_balance
    assert st.drawn_minutes + st.overage_minutes == st.billed_minutes


def test_statement_for_a_month() -> None:
    blocks = [
        hours("jan", ny(2024, 1, 2, 10), 2),  # expires 1 April 11:00 EDT
        hours("mar", ny(2024, 3, 20, 12), 5),
        hours("apr", ny(2024, 4, 15, 12), 10),
    ]
    bills = [
        day_bill(date(2024, 2, 1), 30),  # before the period: in the opening balance
        day_bill(date(2024, 3, 25), 60),
        day_bill(date(2024, 4, 1), 15),  # day 90 of "jan"
        day_bill(date(2024, 4, 10), 300),
        day_bill(date(2024, 4, 12), 60),  # all gone: overage
        day_bill(date(2024, 4, 20), 45),
        day_bill(date(2024, 5, 2), 30),  # after the period
    ]
    st = statement(blocks, bills, start=date(2024, 4, 1), end=date(2024, 4, 30), tz=TZ)
    assert st.opens_at == ny(2024, 4, 1)
    assert st.closes_at == ny(2024, 5, 1)
    # Opening: jan 120 - 30 - 60 = 30; mar 300.
    assert st.opening_balance == 330
    assert [(p.block_id, p.minutes) for p in st.purchases] == [("apr", 600)]
    assert [(u.day, u.draws, u.overage_minutes) for u in st.usage] == [
        (date(2024, 4, 1), (Draw("jan", 15),), 0),
        (date(2024, 4, 10), (Draw("mar", 300),), 0),
        (date(2024, 4, 12), (), 60),
        (date(2024, 4, 20), (Draw("apr", 45),), 0),
    ]
    assert [(e.block_id, e.forfeited_minutes) for e in st.expiries] == [("jan", 15)]
    assert st.expiries[0].expires_at == ny(2024, 4, 1, 11)
    assert st.closing_balance == 555
    assert st.overage_minutes == 60
    assert [(b.block_id, b.remaining_minutes, b.expires_at) for b in st.upcoming_expiries] == [
        ("apr", 555, blocks[2].expires_at)
    ]
    assert_balanced(st)
    assert st.usage[0].raw_unscheduled == timedelta(0)
    assert st.usage[0].scheduled_minutes == 15


def test_statement_closing_equals_balance_at_period_end() -> None:
    blocks = [hours("a", ny(2024, 1, 2), 3), hours("b", ny(2024, 2, 10), 1)]
    bills = [day_bill(date(2024, 1, 15), 90), day_bill(date(2024, 2, 20), 120)]
    st = statement(blocks, bills, start=date(2024, 2, 1), end=date(2024, 2, 29), tz=TZ)
    assert (
        st.closing_balance
        == balance(blocks, bills, ny(2024, 2, 29, 23, 59, 59, 999999)).total_minutes
        == 30
    )
    assert (
        st.opening_balance
        == balance(blocks, bills, ny(2024, 1, 31, 23, 59, 59, 999999)).total_minutes
        == 90
    )
    assert_balanced(st)


def test_statement_as_of_cuts_the_period() -> None:
    blocks = [hours("a", ny(2024, 5, 1), 2), hours("b", ny(2024, 5, 20), 1)]
    bills = [day_bill(date(2024, 5, 6), 30), day_bill(date(2024, 5, 25), 30)]
    st = statement(
        blocks,
        bills,
        start=date(2024, 5, 1),
        end=date(2024, 5, 31),
        tz=TZ,
        as_of=ny(2024, 5, 10, 12),
    )
    assert st.closes_at == ny(2024, 5, 10, 12) + timedelta(microseconds=1)
    assert [p.block_id for p in st.purchases] == ["a"]
    assert [u.day for u in st.usage] == [date(2024, 5, 6)]
    assert st.closing_balance == 90
    assert [(b.block_id, b.remaining_minutes) for b in st.upcoming_expiries] == [("a", 90)]
    assert_balanced(st)
    later = statement(
        blocks, bills, start=date(2024, 5, 1), end=date(2024, 5, 31), tz=TZ, as_of=ny(2024, 7, 1)
    )
    assert later.closes_at == ny(2024, 6, 1)


def test_statement_lists_what_expires_when() -> None:
    blocks = [
        hours("a", ny(2024, 5, 1), 1),
        hours("b", ny(2024, 5, 3), 2),
        hours("c", ny(2024, 5, 2), 1),
    ]
    st = statement(
        blocks,
        [day_bill(date(2024, 5, 6), 60)],
        start=date(2024, 5, 1),
        end=date(2024, 5, 31),
        tz=TZ,
    )
    assert [(b.block_id, b.remaining_minutes, b.expires_at) for b in st.upcoming_expiries] == [
        ("c", 60, blocks[2].expires_at),
        ("b", 120, blocks[1].expires_at),
    ]


def test_statement_bad_input() -> None:
    bill = day_bill(date(2024, 5, 6), 30)
    with pytest.raises(PolicyError) as err:
        statement([], [bill], start=date(2024, 5, 1), end=date(2024, 5, 31), tz="UTC")
    assert err.value.field == "tz"
    with pytest.raises(PolicyError) as err:
        statement([], [], start=date(2024, 5, 2), end=date(2024, 5, 1), tz=TZ)
    assert err.value.field == "end"
    with pytest.raises(PolicyError) as err:
        statement(
            [], [], start=date(2024, 5, 1), end=date(2024, 5, 31), tz=TZ, as_of=ny(2024, 4, 30)
        )
    assert err.value.field == "as_of"
    with pytest.raises(PolicyError) as err:
        naive = datetime(2024, 5, 6)  # noqa: DTZ001  (the mistake under test)
        statement([], [], start=date(2024, 5, 1), end=date(2024, 5, 31), tz=TZ, as_of=naive)
    assert err.value.field == "as_of"
    with pytest.raises(PolicyError) as err:
        statement([], [], start=date(2024, 5, 1), end=date(2024, 5, 31), tz="Nowhere/Land")
    assert err.value.field == "tz"


def test_block_expiring_exactly_at_the_period_start_is_in_the_period() -> None:
    block = hours("a", datetime(2024, 1, 1, tzinfo=UTC), 1)  # expires 31 March 00:00 UTC
    st = statement([block], [], start=date(2024, 3, 31), end=date(2024, 3, 31), tz="UTC")
    assert st.opening_balance == 60
    assert [(e.block_id, e.forfeited_minutes) for e in st.expiries] == [("a", 60)]
    assert st.closing_balance == 0
    assert_balanced(st)
