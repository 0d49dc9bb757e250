"""Business calendars: the seeds' hours (002: Mon-Fri 08:00-17:00 ET; 003: Mon-Fri 06:00-17:00 PT),
holidays, overrides, lunch breaks, 24x7, clock changes, and every kind of bad input."""

from __future__ import annotations

import time as wallclock
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agentdesk.policy.calendar import BusinessCalendar
from agentdesk.policy.errors import PolicyError

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
BERLIN = ZoneInfo("Europe/Berlin")
WORKDAYS = ("mon", "tue", "wed", "thu", "fri")
H = timedelta(hours=1)
M = timedelta(minutes=1)


def at(tz: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0, fold: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=tz, fold=fold)


def spec(
    tz: str = "America/New_York",
    windows: Any = (("08:00", "17:00"),),
    days: tuple[str, ...] = WORKDAYS,
    **extra: Any,
) -> dict[str, Any]:
    hours = {
        day: [list(w) for w in windows] if day in days else []
        for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    }
    return {"tz": tz, "hours": hours, "holidays": [], "overrides": {}, **extra}


def cal(**kwargs: Any) -> BusinessCalendar:
    return BusinessCalendar.from_dict(spec(**kwargs))


SEED_002 = cal()  # Huemor: Monday-Friday, 8am - 5pm ET
SEED_003 = cal(tz="America/Los_Angeles", windows=(("06:00", "17:00"),))  # MindTouch: 6-5 PT


def same_instant(a: datetime, b: datetime) -> bool:
    """Equal instants (compared in UTC: same-zone comparison ignores fold) in the same zone."""
    return a.astimezone(UTC) == b.astimezone(UTC) and a.tzinfo is b.tzinfo


# ----------------------------------------------------------------------------- the dict form


def test_dict_round_trips_exactly() -> None:
    d = spec(
        holidays=["2026-07-03", "2026-12-25"],
        overrides={"2026-12-24": [["08:00", "12:00"]]},
        holiday_country="US",
    )
    d["hours"]["mon"] = [["08:00", "12:00"], ["13:00", "17:00"]]
    d["hours"]["sat"] = [["00:00", "24:00"]]
    c = BusinessCalendar.from_dict(d)
    assert c.to_dict() == d
    assert BusinessCalendar.from_dict(c.to_dict()) == c


def test_dict_form_is_normalised() -> None:
    c = BusinessCalendar.from_dict(
        {
            "tz": "Europe/Berlin",
            "hours": {"tue": (("13:00", "17:00"), ("08:00", "12:00"))},
            "holidays": ["2026-12-26", "2026-12-25", "2026-12-25"],
        }
    )
    assert c.to_dict() == {
        "tz": "Europe/Berlin",
        "hours": {
            "mon": [],
            "tue": [["08:00", "12:00"], ["13:00", "17:00"]],
            "wed": [],
            "thu": [],
            "fri": [],
            "sat": [],
            "sun": [],
        },
        "holidays": ["2026-12-25", "2026-12-26"],
        "overrides": {},
    }
    assert "holiday_country" not in c.to_dict()
    assert BusinessCalendar.from_dict({**c.to_dict(), "holiday_country": None}) == c


def test_name_is_a_label_outside_the_dict_and_equality() -> None:
    a = BusinessCalendar.from_dict(spec(), name="Support ET")
    b = BusinessCalendar.from_dict(spec())
    assert a.name == "Support ET"
    assert b.name is None
    assert "name" not in a.to_dict()
    assert a == b
    assert hash(a) == hash(b)
    assert a != cal(tz="America/Chicago")
    assert a != "not a calendar"
    with pytest.raises(PolicyError) as err:
        BusinessCalendar.from_dict({**spec(), "name": "Support ET"})
    assert err.value.field == "name"


def test_properties() -> None:
    c = cal(holiday_country="US")
    assert c.tz == "America/New_York"
    assert c.zone is NY
    assert c.holiday_country == "US"
    assert "America/New_York" in repr(c)


# ----------------------------------------------------------------------------- the seeds' hours


def test_seed_002_open_hours() -> None:
    assert SEED_002.is_open(at(NY, 2026, 1, 5, 8))  # Monday 08:00 opens
    assert SEED_002.is_open(at(NY, 2026, 1, 5, 16, 59))
    assert not SEED_002.is_open(at(NY, 2026, 1, 5, 17))  # closing instant is not open
    assert not SEED_002.is_open(at(NY, 2026, 1, 5, 7, 59))
    assert not SEED_002.is_open(at(NY, 2026, 1, 10, 12))  # Saturday
    assert not SEED_002.is_open(at(NY, 2026, 1, 11, 12))  # Sunday
    assert SEED_002.is_open(datetime(2026, 1, 5, 13, tzinfo=UTC))  # 08:00 EST
    assert not SEED_002.is_open(datetime(2026, 1, 5, 12, 59, tzinfo=UTC))


def test_seed_003_open_hours() -> None:
    assert SEED_003.is_open(at(LA, 2026, 1, 5, 6))
    assert not SEED_003.is_open(at(LA, 2026, 1, 5, 5, 59))
    assert not SEED_003.is_open(at(LA, 2026, 1, 5, 17))
    # Business time is counted in the calendar's zone whatever zone the caller uses.
    assert SEED_003.between(at(NY, 2026, 1, 5, 9), at(NY, 2026, 1, 5, 20)) == 11 * H


def test_next_open() -> None:
    friday_evening = at(NY, 2026, 1, 9, 18)
    assert same_instant(SEED_002.next_open(friday_evening), at(NY, 2026, 1, 12, 8))
    assert same_instant(SEED_002.next_open(at(NY, 2026, 1, 9, 17)), at(NY, 2026, 1, 12, 8))
    assert same_instant(SEED_002.next_open(at(NY, 2026, 1, 6, 3)), at(NY, 2026, 1, 6, 8))
    inside = at(NY, 2026, 1, 6, 11, 17)
    assert same_instant(SEED_002.next_open(inside), inside)
    # Results come back in the calendar's zone.
    result = SEED_002.next_open(datetime(2026, 1, 10, 12, tzinfo=UTC))
    assert same_instant(result, at(NY, 2026, 1, 12, 8))


# ----------------------------------------------------------------------------- add / between


def test_add_within_a_day_and_across_nights() -> None:
    assert same_instant(SEED_002.add(at(NY, 2026, 1, 5, 9), 30 * M), at(NY, 2026, 1, 5, 9, 30))
    assert same_instant(SEED_002.add(at(NY, 2026, 1, 5, 16), 2 * H), at(NY, 2026, 1, 6, 9))
    assert same_instant(SEED_002.add(at(NY, 2026, 1, 5, 8), 9 * H), at(NY, 2026, 1, 5, 17))
    assert same_instant(SEED_002.add(at(NY, 2026, 1, 5, 8), 45 * H), at(NY, 2026, 1, 9, 17))
    assert same_instant(SEED_002.add(at(NY, 2026, 1, 5, 8), 46 * H), at(NY, 2026, 1, 12, 9))


def test_span_ending_at_closing_time_keeps_the_closing_time() -> None:
    friday = at(NY, 2026, 1, 9, 16, 30)
    assert same_instant(SEED_002.add(friday, 30 * M), at(NY, 2026, 1, 9, 17))  # not Monday 08:00
    assert same_instant(SEED_002.add(friday, 31 * M), at(NY, 2026, 1, 12, 8, 1))
    tiny = timedelta(microseconds=1)
    assert same_instant(SEED_002.add(friday, 30 * M + tiny), at(NY, 2026, 1, 12, 8) + tiny)


def test_start_outside_hours_counts_from_the_next_opening() -> None:
    saturday = at(NY, 2026, 1, 10, 12)
    assert same_instant(SEED_002.add(saturday, 1 * H), at(NY, 2026, 1, 12, 9))
    early = at(NY, 2026, 1, 6, 5)
    assert same_instant(SEED_002.add(early, 30 * M), at(NY, 2026, 1, 6, 8, 30))


def test_whole_weeks_ending_at_closing_time() -> None:
    # Spans that use up whole weeks exactly end at the last closing, not the next opening.
    sunday = at(NY, 2026, 1, 4, 12)
    assert same_instant(SEED_002.add(sunday, 45 * H), at(NY, 2026, 1, 9, 17))
    assert same_instant(SEED_002.add(sunday, 90 * H), at(NY, 2026, 1, 16, 17))
    due = SEED_002.add(sunday, 9000 * H)  # exactly 200 weeks
    assert same_instant(due, at(NY, 2026, 1, 9, 17) + timedelta(weeks=199))
    assert SEED_002.between(sunday, due) == 9000 * H
    assert same_instant(SEED_002.add(sunday, 9000 * H + M), at(NY, 2029, 11, 5, 8, 1))


def test_between_stops_inside_a_week() -> None:
    c = BusinessCalendar.always_open()
    sunday = datetime(2026, 1, 4, tzinfo=UTC)
    late_sunday = datetime(2026, 1, 11, 23, 30, tzinfo=UTC)
    assert c.between(sunday, late_sunday) == timedelta(days=7, hours=23, minutes=30)
    assert c.between(sunday, late_sunday + timedelta(weeks=5)) == timedelta(
        days=42, hours=23, minutes=30
    )


def test_add_zero_is_the_next_business_moment() -> None:
    assert same_instant(SEED_002.add(at(NY, 2026, 1, 9, 17), timedelta(0)), at(NY, 2026, 1, 12, 8))
    inside = at(NY, 2026, 1, 7, 10)
    assert same_instant(SEED_002.add(inside, timedelta(0)), inside)


def test_spans_past_the_year_9999_are_a_policy_error() -> None:
    with pytest.raises(PolicyError) as err:
        SEED_002.add(at(NY, 9998, 6, 1, 9), 100 * 45 * H)
    assert err.value.field == "duration"
    with pytest.raises(PolicyError) as err:
        BusinessCalendar.always_open().add_days(datetime(9998, 12, 1, tzinfo=UTC), 500)
    assert err.value.field == "days"


def test_add_rejects_negative_or_non_timedelta() -> None:
    with pytest.raises(PolicyError) as err:
        SEED_002.add(at(NY, 2026, 1, 5, 9), -M)
    assert err.value.field == "duration"
    with pytest.raises(PolicyError) as err:
        SEED_002.add(at(NY, 2026, 1, 5, 9), 30)  # type: ignore[arg-type]
    assert err.value.field == "duration"


def test_between() -> None:
    monday, friday = at(NY, 2026, 1, 5, 8), at(NY, 2026, 1, 9, 17)
    assert SEED_002.between(monday, friday) == 45 * H
    assert SEED_002.between(friday, monday) == -45 * H  # signed, not an error
    assert SEED_002.between(monday, monday) == timedelta(0)
    assert SEED_002.between(at(NY, 2026, 1, 9, 16), at(NY, 2026, 1, 12, 9)) == 2 * H
    assert SEED_002.between(at(NY, 2026, 1, 10, 1), at(NY, 2026, 1, 11, 23)) == timedelta(0)
    assert SEED_002.between(at(NY, 2026, 1, 5, 8), at(NY, 2026, 2, 2, 8)) == 4 * 45 * H
    # Half-open: the instant b itself is excluded, so [08:00, 08:00) is empty.
    assert SEED_002.between(at(NY, 2026, 1, 5, 7), at(NY, 2026, 1, 5, 8)) == timedelta(0)


def test_lunch_break() -> None:
    c = cal(windows=(("08:00", "12:00"), ("13:00", "17:00")))
    assert not c.is_open(at(NY, 2026, 1, 5, 12, 30))
    assert same_instant(c.next_open(at(NY, 2026, 1, 5, 12, 30)), at(NY, 2026, 1, 5, 13))
    assert same_instant(c.add(at(NY, 2026, 1, 5, 11, 30), 30 * M), at(NY, 2026, 1, 5, 12))
    assert same_instant(c.add(at(NY, 2026, 1, 5, 11, 30), 1 * H), at(NY, 2026, 1, 5, 13, 30))
    assert c.between(at(NY, 2026, 1, 5, 11), at(NY, 2026, 1, 5, 14)) == 2 * H
    assert c.between(at(NY, 2026, 1, 5), at(NY, 2026, 1, 6)) == 8 * H


def test_adjacent_windows_are_one_open_period() -> None:
    c = cal(windows=(("08:00", "12:00"), ("12:00", "17:00")))
    assert c.is_open(at(NY, 2026, 1, 5, 12))
    assert same_instant(c.add(at(NY, 2026, 1, 5, 11), 2 * H), at(NY, 2026, 1, 5, 13))
    assert c.between(at(NY, 2026, 1, 5), at(NY, 2026, 1, 6)) == 9 * H
    assert c.to_dict()["hours"]["mon"] == [["08:00", "12:00"], ["12:00", "17:00"]]


def test_midnight_end_and_next_day_start_are_continuous() -> None:
    d = spec(days=())
    d["hours"]["mon"] = [["20:00", "24:00"]]
    d["hours"]["tue"] = [["00:00", "04:00"]]
    c = BusinessCalendar.from_dict(d)
    assert c.is_open(at(NY, 2026, 1, 6, 0))  # Tuesday 00:00 = Monday 24:00
    assert same_instant(c.add(at(NY, 2026, 1, 5, 22), 2 * H), at(NY, 2026, 1, 6, 0))
    assert same_instant(c.add(at(NY, 2026, 1, 5, 23), 2 * H), at(NY, 2026, 1, 6, 1))
    assert c.between(at(NY, 2026, 1, 5, 20), at(NY, 2026, 1, 6, 4)) == 8 * H
    assert same_instant(c.add(at(NY, 2026, 1, 6, 3), 2 * H), at(NY, 2026, 1, 12, 21))


def test_always_open() -> None:
    c = BusinessCalendar.always_open()
    assert c.name == "24x7"
    assert c.tz == "UTC"
    assert c.to_dict()["hours"] == {
        d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    }
    start = datetime(2026, 12, 24, 23, 59, tzinfo=UTC)
    assert c.is_open(start)
    assert c.add(start, 10_000 * H) == start + 10_000 * H
    assert c.between(start, start + 777 * H) == 777 * H
    assert c.add_days(start, 3) == start + timedelta(days=3)
    assert BusinessCalendar.always_open("America/New_York", name=None).name is None


def test_always_open_counts_real_time_across_clock_changes() -> None:
    c = BusinessCalendar.always_open("America/New_York")
    # Saturday noon + 24 business hours lands at Sunday 13:00 local: Sunday lost an hour.
    assert same_instant(c.add(at(NY, 2026, 3, 7, 12), 24 * H), at(NY, 2026, 3, 8, 13))
    assert same_instant(c.add(at(NY, 2026, 10, 31, 12), 24 * H), at(NY, 2026, 11, 1, 11))


# ----------------------------------------------------------------------------- holidays, overrides


def test_explicit_holiday_is_closed() -> None:
    c = cal(holidays=["2026-12-25"])
    assert c.is_holiday(date(2026, 12, 25))
    assert not c.is_business_day(date(2026, 12, 25))
    assert not c.is_open(at(NY, 2026, 12, 25, 10))
    assert same_instant(c.add(at(NY, 2026, 12, 24, 16), 2 * H), at(NY, 2026, 12, 28, 9))
    assert c.between(at(NY, 2026, 12, 21), at(NY, 2026, 12, 28)) == 36 * H


def test_holiday_country_us() -> None:
    c = cal(holiday_country="US")
    for day in (date(2026, 1, 1), date(2026, 7, 3), date(2026, 11, 26), date(2027, 1, 18)):
        assert c.is_holiday(day), day
        assert not c.is_business_day(day)
    assert not c.is_holiday(date(2026, 7, 2))
    # Thursday 2 July 16:00 + 2 h: Friday 3 July is Independence Day (observed).
    assert same_instant(c.add(at(NY, 2026, 7, 2, 16), 2 * H), at(NY, 2026, 7, 6, 9))
    assert same_instant(c.next_open(at(NY, 2026, 11, 25, 17)), at(NY, 2026, 11, 27, 8))


def test_holiday_country_and_explicit_list_combine() -> None:
    c = cal(holiday_country="US", holidays=["2026-11-27"])
    assert same_instant(c.next_open(at(NY, 2026, 11, 25, 17)), at(NY, 2026, 11, 30, 8))


def test_override_shortens_a_day() -> None:
    c = cal(holidays=["2026-12-25"], overrides={"2026-12-24": [["08:00", "12:00"]]})
    assert c.is_open(at(NY, 2026, 12, 24, 11))
    assert not c.is_open(at(NY, 2026, 12, 24, 12))
    assert same_instant(c.add(at(NY, 2026, 12, 24, 11), 2 * H), at(NY, 2026, 12, 28, 9))
    assert same_instant(c.add(at(NY, 2026, 12, 24, 11), 1 * H), at(NY, 2026, 12, 24, 12))


def test_override_closes_a_day() -> None:
    c = cal(overrides={"2026-03-10": []})
    assert not c.is_business_day(date(2026, 3, 10))
    assert not c.is_holiday(date(2026, 3, 10))
    assert same_instant(c.next_open(at(NY, 2026, 3, 9, 18)), at(NY, 2026, 3, 11, 8))


def test_override_opens_a_holiday_and_a_weekend() -> None:
    c = cal(
        holiday_country="US",
        holidays=["2026-12-25"],
        overrides={"2026-12-25": [["10:00", "14:00"]], "2026-12-26": [["09:00", "10:00"]]},
    )
    assert c.is_holiday(date(2026, 12, 25))
    assert c.is_business_day(date(2026, 12, 25))
    assert not c.is_open(at(NY, 2026, 12, 25, 9))
    assert c.is_open(at(NY, 2026, 12, 25, 10))
    assert c.is_open(at(NY, 2026, 12, 26, 9, 30))  # a Saturday
    assert same_instant(c.add(at(NY, 2026, 12, 24, 16), 6 * H), at(NY, 2026, 12, 26, 10))
    assert same_instant(c.add(at(NY, 2026, 12, 24, 16), 7 * H), at(NY, 2026, 12, 28, 9))
    assert c.between(at(NY, 2026, 12, 24), at(NY, 2026, 12, 27)) == 14 * H


# ----------------------------------------------------------------------------- clock changes

DST_DAYS = [
    # zone, day clocks spring forward, day clocks fall back
    ("America/New_York", date(2026, 3, 8), date(2026, 11, 1)),
    ("America/Los_Angeles", date(2026, 3, 8), date(2026, 11, 1)),
    ("Europe/Berlin", date(2026, 3, 29), date(2026, 10, 25)),
]


@pytest.mark.parametrize(("tz", "spring", "autumn"), DST_DAYS)
def test_full_day_window_holds_23_and_25_hours(tz: str, spring: date, autumn: date) -> None:
    zone = ZoneInfo(tz)
    c = cal(tz=tz, windows=(("00:00", "24:00"),), days=("sun",))
    for day, hours in ((spring, 23), (autumn, 25), (spring - timedelta(days=7), 24)):
        start = at(zone, day.year, day.month, day.day)
        end = start.replace(day=day.day + 1)
        assert c.between(start, end) == hours * H
        assert same_instant(c.add(start, hours * H), end)
        assert c.between(end - timedelta(days=3), end + timedelta(days=3)) == hours * H
    # The hour after the spring gap: 01:59 + 1 min of business time is 03:00.
    assert same_instant(
        c.add(at(zone, spring.year, spring.month, spring.day, 1, 59), M),
        at(zone, spring.year, spring.month, spring.day, 3),
    )


@pytest.mark.parametrize(("tz", "spring", "autumn"), DST_DAYS)
def test_boundary_in_the_gap_moves_forward(tz: str, spring: date, autumn: date) -> None:
    zone = ZoneInfo(tz)
    c = cal(tz=tz, windows=(("02:30", "05:00"),), days=("sun",))
    y, mo, d = spring.year, spring.month, spring.day
    assert same_instant(c.next_open(at(zone, y, mo, d)), at(zone, y, mo, d, 3, 30))
    assert not c.is_open(at(zone, y, mo, d, 3, 29))
    assert c.between(at(zone, y, mo, d), at(zone, y, mo, d + 1)) == 90 * M
    assert c.between(at(zone, y, mo, d - 7), at(zone, y, mo, d - 6)) == 150 * M


def test_window_inside_the_gap() -> None:
    # 02:00-02:30 moves to 03:00-03:30; 02:30-03:00 would run from 03:30 back to 03:00: closed.
    moved = cal(windows=(("02:00", "02:30"),), days=("sun",))
    assert moved.between(at(NY, 2026, 3, 8), at(NY, 2026, 3, 9)) == 30 * M
    assert same_instant(moved.next_open(at(NY, 2026, 3, 8)), at(NY, 2026, 3, 8, 3))
    collapsed = cal(windows=(("02:30", "03:00"),), days=("sun",))
    assert not collapsed.is_business_day(date(2026, 3, 8))
    assert collapsed.is_business_day(date(2026, 3, 1))
    assert same_instant(collapsed.next_open(at(NY, 2026, 3, 8)), at(NY, 2026, 3, 15, 2, 30))


def test_windows_that_overlap_after_the_gap_count_once() -> None:
    # 01:00-02:30 becomes 01:00 EST-03:30 EDT, overlapping 03:00-04:00 EDT: 2 real hours in all.
    c = cal(windows=(("01:00", "02:30"), ("03:00", "04:00")), days=("sun",))
    assert c.between(at(NY, 2026, 3, 8), at(NY, 2026, 3, 9)) == 2 * H
    assert same_instant(c.add(at(NY, 2026, 3, 8), 2 * H), at(NY, 2026, 3, 8, 4))
    assert c.between(at(NY, 2026, 3, 1), at(NY, 2026, 3, 2)) == 150 * M


@pytest.mark.parametrize(("tz", "spring", "autumn"), DST_DAYS)
def test_ambiguous_boundary_means_first_occurrence(tz: str, spring: date, autumn: date) -> None:
    zone = ZoneInfo(tz)
    y, mo, d = autumn.year, autumn.month, autumn.day
    repeated = 1 if tz.startswith("America") else 2  # the local hour that happens twice
    opens = cal(tz=tz, windows=((f"0{repeated}:30", f"0{repeated + 2}:00"),), days=("sun",))
    first = at(zone, y, mo, d, repeated, 30, fold=0)
    second = at(zone, y, mo, d, repeated, 30, fold=1)
    assert second.astimezone(UTC) - first.astimezone(UTC) == H  # same-zone "-" ignores fold
    assert same_instant(opens.next_open(at(zone, y, mo, d)), first)
    assert opens.is_open(second)
    assert opens.between(at(zone, y, mo, d), at(zone, y, mo, d + 1)) == 150 * M  # 1.5 h + 1 h
    closes = cal(tz=tz, windows=(("00:00", f"0{repeated}:30"),), days=("sun",))
    assert closes.between(at(zone, y, mo, d), at(zone, y, mo, d + 1)) == (repeated * 60 + 30) * M
    assert not closes.is_open(second)
    assert same_instant(closes.add(at(zone, y, mo, d), (repeated * 60 + 30) * M), first)


def test_business_hours_across_the_dst_weekend() -> None:
    friday = at(NY, 2026, 3, 6, 16)
    monday = SEED_002.add(friday, 2 * H)
    assert same_instant(monday, at(NY, 2026, 3, 9, 9))
    assert monday.utcoffset() == timedelta(hours=-4)
    assert SEED_002.between(friday, monday) == 2 * H
    assert SEED_002.between(at(NY, 2026, 3, 2), at(NY, 2026, 3, 16)) == 90 * H
    assert SEED_002.between(at(NY, 2026, 10, 26), at(NY, 2026, 11, 9)) == 90 * H


# ----------------------------------------------------------------------------- add_days


def test_add_days_keeps_the_time_of_day() -> None:
    tuesday = at(NY, 2026, 1, 6, 10)
    assert same_instant(SEED_002.add_days(tuesday, 1), at(NY, 2026, 1, 7, 10))
    assert same_instant(SEED_002.add_days(tuesday, 2), at(NY, 2026, 1, 8, 10))
    assert same_instant(SEED_002.add_days(at(NY, 2026, 1, 9, 10), 1), at(NY, 2026, 1, 12, 10))
    assert same_instant(SEED_002.add_days(at(NY, 2026, 1, 9, 10), 5), at(NY, 2026, 1, 16, 10))


def test_add_days_skips_holidays() -> None:
    c = cal(holiday_country="US", holidays=["2026-12-25"])
    assert same_instant(c.add_days(at(NY, 2026, 12, 24, 10), 1), at(NY, 2026, 12, 28, 10))
    assert same_instant(c.add_days(at(NY, 2026, 7, 2, 10), 1), at(NY, 2026, 7, 6, 10))
    assert same_instant(c.add_days(at(NY, 2026, 11, 25, 10), 2), at(NY, 2026, 11, 30, 10))


def test_add_days_from_outside_hours_normalises_first() -> None:
    friday_evening = at(NY, 2026, 1, 9, 18)
    assert same_instant(SEED_002.add_days(friday_evening, 0), at(NY, 2026, 1, 12, 8))
    assert same_instant(SEED_002.add_days(friday_evening, 1), at(NY, 2026, 1, 13, 8))
    inside = at(NY, 2026, 1, 7, 9, 15)
    assert same_instant(SEED_002.add_days(inside, 0), inside)


def test_add_days_time_outside_the_target_days_hours() -> None:
    c = cal(holidays=["2026-12-25"], overrides={"2026-12-24": [["08:00", "12:00"]]})
    # Wednesday 14:00 + 1 day: Thursday closes at 12:00, Friday is a holiday -> Monday 08:00.
    assert same_instant(c.add_days(at(NY, 2026, 12, 23, 14), 1), at(NY, 2026, 12, 28, 8))
    assert same_instant(c.add_days(at(NY, 2026, 12, 23, 9), 1), at(NY, 2026, 12, 24, 9))
    d = spec(days=("mon",))
    d["hours"]["tue"] = [["08:00", "12:00"], ["13:00", "17:00"]]
    lunch = BusinessCalendar.from_dict(d)
    assert same_instant(lunch.add_days(at(NY, 2026, 1, 5, 12, 30), 1), at(NY, 2026, 1, 6, 13))
    early = cal(windows=(("06:00", "17:00"),), days=("mon",))
    early_dict = early.to_dict()
    early_dict["hours"]["tue"] = [["09:00", "17:00"]]
    mixed = BusinessCalendar.from_dict(early_dict)
    assert same_instant(mixed.add_days(at(NY, 2026, 1, 5, 6, 30), 1), at(NY, 2026, 1, 6, 9))


def test_add_days_across_clock_changes() -> None:
    c = BusinessCalendar.always_open("America/New_York")
    # Saturday 02:30 + 1 day: Sunday 02:30 does not exist and moves to 03:30.
    assert same_instant(c.add_days(at(NY, 2026, 3, 7, 2, 30), 1), at(NY, 2026, 3, 8, 3, 30))
    # Saturday 01:30 + 1 day: Sunday 01:30 happens twice; the first one.
    result = c.add_days(at(NY, 2026, 10, 31, 1, 30), 1)
    assert same_instant(result, at(NY, 2026, 11, 1, 1, 30, fold=0))
    assert result.utcoffset() == timedelta(hours=-4)
    # From the second 01:30 the next day is still 01:30 local.
    second = at(NY, 2026, 11, 1, 1, 30, fold=1)
    assert same_instant(c.add_days(second, 1), at(NY, 2026, 11, 2, 1, 30))


def test_add_days_counts_only_business_days() -> None:
    c = cal(holiday_country="US")
    start = at(NY, 2026, 1, 6, 10)
    result = c.add_days(start, 2000)
    day, count = date(2026, 1, 6), 0
    while count < 2000:
        day += timedelta(days=1)
        if day.weekday() < 5 and not c.is_holiday(day):
            count += 1
    assert same_instant(result, at(NY, day.year, day.month, day.day, 10))


@pytest.mark.parametrize("n", [-1, True, 1.0, "1"])
def test_add_days_rejects_bad_counts(n: Any) -> None:
    with pytest.raises(PolicyError) as err:
        SEED_002.add_days(at(NY, 2026, 1, 5, 9), n)
    assert err.value.field == "days"


# ----------------------------------------------------------------------------- speed


def test_long_spans_are_fast_even_uncached() -> None:
    c = cal(holiday_country="US")
    start = at(NY, 2026, 1, 6, 10)
    began = wallclock.perf_counter()
    due = c.add(start, 10_000 * H)
    assert c.between(start, due) == 10_000 * H
    c.add_days(start, 2_000)
    assert wallclock.perf_counter() - began < 0.25  # loading ~10 years of holidays included
    began = wallclock.perf_counter()
    for _ in range(10):
        c.add(start, 10_000 * H)
        c.add(start, 30 * M)
    assert wallclock.perf_counter() - began < 0.05


# ----------------------------------------------------------------------------- bad input

BAD: list[tuple[str, Any]] = [
    ("calendar", ["not", "an", "object"]),
    ("colour", {**spec(), "colour": "blue"}),
    ("tz", {k: v for k, v in spec().items() if k != "tz"}),
    ("tz", spec(tz="Mars/Olympus_Mons")),
    ("tz", spec(tz="")),
    ("tz", spec(tz="America")),
    ("tz", spec(tz="../etc/passwd")),
    ("tz", {**spec(), "tz": 5}),
    ("hours", {k: v for k, v in spec().items() if k != "hours"}),
    ("hours", {**spec(), "hours": [["08:00", "17:00"]]}),
    ("hours", spec(days=())),
    ("hours", {**spec(), "hours": {}}),
    ("hours.monday", {**spec(), "hours": {"monday": [["08:00", "17:00"]]}}),
    ("hours.mon", {**spec(), "hours": {"mon": "08:00-17:00"}}),
    ("hours.mon[0]", {**spec(), "hours": {"mon": [["08:00"]]}}),
    ("hours.mon[0]", {**spec(), "hours": {"mon": ["08:00-17:00"]}}),
    ("hours.mon[0]", {**spec(), "hours": {"mon": [["17:00", "08:00"]]}}),
    ("hours.mon[0]", {**spec(), "hours": {"mon": [["08:00", "08:00"]]}}),
    ("hours.mon[0]", {**spec(), "hours": {"mon": [["08:00", "25:00"]]}}),
    ("hours.mon[0]", {**spec(), "hours": {"mon": [["8am", "5pm"]]}}),
    ("hours.mon[0]", {**spec(), "hours": {"mon": [["8:00", "17:00"]]}}),
    ("hours.mon[0]", {**spec(), "hours": {"mon": [["08:60", "17:00"]]}}),
    ("hours.mon[0]", {**spec(), "hours": {"mon": [["24:00", "24:00"]]}}),
    ("hours.mon[0]", {**spec(), "hours": {"mon": [[800, 1700]]}}),
    ("hours.mon[0]", {**spec(), "hours": {"mon": [["08:00:00", "17:00"]]}}),
    ("hours.mon[1]", {**spec(), "hours": {"mon": [["08:00", "12:00"], ["11:00", "17:00"]]}}),
    ("hours.mon[1]", {**spec(), "hours": {"mon": [["08:00", "17:00"], ["09:00", "10:00"]]}}),
    (
        "hours.fri[2]",
        {**spec(), "hours": {"fri": [["08:00", "09:00"], ["10:00", "11:00"], ["25:00", "26:00"]]}},
    ),
    ("holidays", spec(holidays="2026-12-25")),
    ("holidays", spec(holidays=5)),
    ("holidays[0]", spec(holidays=["20261225"])),
    ("holidays[0]", spec(holidays=[date(2026, 12, 25)])),
    ("holidays[1]", spec(holidays=["2026-12-25", "2026-13-01"])),
    ("holidays[2]", spec(holidays=["2026-12-25", "2026-12-26", "2026-02-30"])),
    ("holidays[1]", spec(holidays=["2026-12-25", "Christmas"])),
    ("overrides", spec(overrides=[["2026-12-24", []]])),
    ("overrides.2026-02-30", spec(overrides={"2026-02-30": []})),
    ("overrides.24/12/2026", spec(overrides={"24/12/2026": []})),
    ("overrides.2026-12-24", spec(overrides={"2026-12-24": "closed"})),
    ("overrides.2026-12-24[0]", spec(overrides={"2026-12-24": [["12:00", "08:00"]]})),
    (
        "overrides.2026-12-24[1]",
        spec(overrides={"2026-12-24": [["08:00", "12:00"], ["10:00", "13:00"]]}),
    ),
    ("holiday_country", spec(holiday_country="XX")),
    ("holiday_country", spec(holiday_country="usa")),
    ("holiday_country", spec(holiday_country=1)),
]


@pytest.mark.parametrize(("field", "data"), BAD, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD)])
def test_bad_input_names_the_field(field: str, data: Any) -> None:
    with pytest.raises(PolicyError) as err:
        BusinessCalendar.from_dict(data)
    assert err.value.field == field
    assert isinstance(err.value, ValueError)


def test_always_closed_calendar_is_rejected_with_a_clear_message() -> None:
    with pytest.raises(PolicyError, match="never open") as err:
        BusinessCalendar.from_dict(spec(days=(), overrides={"2026-12-24": [["08:00", "12:00"]]}))
    assert err.value.field == "hours"


def test_always_open_rejects_an_unknown_zone() -> None:
    with pytest.raises(PolicyError) as err:
        BusinessCalendar.always_open("Nowhere/Special")
    assert err.value.field == "tz"


NAIVE = datetime(2026, 1, 5, 9)  # noqa: DTZ001 - deliberately naive


@pytest.mark.parametrize(
    ("field", "call"),
    [
        ("t", lambda c: c.is_open(NAIVE)),
        ("t", lambda c: c.next_open(NAIVE)),
        ("start", lambda c: c.add(NAIVE, H)),
        ("start", lambda c: c.add_days(NAIVE, 1)),
        ("a", lambda c: c.between(NAIVE, at(NY, 2026, 1, 6))),
        ("b", lambda c: c.between(at(NY, 2026, 1, 4), NAIVE)),
        ("t", lambda c: c.is_open(date(2026, 1, 5))),
        ("start", lambda c: c.add("2026-01-05T09:00", H)),
        ("b", lambda c: c.between(at(NY, 2026, 1, 4), datetime.max.replace(tzinfo=UTC))),
        ("t", lambda c: c.next_open(datetime.min.replace(tzinfo=UTC))),
    ],
)
def test_naive_or_non_datetimes_are_rejected(field: str, call: Any) -> None:
    with pytest.raises(PolicyError) as err:
        call(SEED_002)
    assert err.value.field == field
