"""Invariants of business time on generated calendars (random windows, weekdays, holidays,
overrides and zones, several with clock changes, two of them at midnight), checked against a
deliberately naive day-by-day reference so the week-skipping shortcuts cannot drift."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentdesk.policy.calendar import WEEKDAYS, BusinessCalendar

ZONES = [
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Australia/Sydney",  # southern hemisphere: clocks change in April and October
    "Australia/Lord_Howe",  # a 30-minute clock change
    "Asia/Kolkata",  # +05:30, no clock changes
    "America/Santiago",  # clocks change at midnight
    "America/Havana",  # clocks change at midnight
]
BASE = datetime(2026, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 2 * 365 * 86_400
# Instants (UTC) near 2026 clock changes in the zones above: the interesting neighbourhoods.
TRANSITIONS = [
    datetime(2026, m, d, 6, tzinfo=UTC)
    for m, d in ((3, 8), (11, 1), (3, 29), (10, 25), (4, 5), (10, 4), (9, 6), (3, 15))
]
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _hhmm(half_hours: int) -> str:
    return f"{half_hours // 2:02d}:{30 * (half_hours % 2):02d}"


@st.composite
def windows(draw: st.DrawFn, max_points: int = 6) -> list[list[str]]:
    points = sorted(draw(st.lists(st.integers(0, 48), max_size=max_points, unique=True)))
    if draw(st.booleans()):  # touching windows: [a, b], [b, c], ...
        pairs = list(pairwise(points))
    else:
        pairs = list(zip(points[::2], points[1::2], strict=False))
    return [[_hhmm(a), _hhmm(b)] for a, b in pairs]


@st.composite
def calendars(draw: st.DrawFn) -> dict[str, Any]:
    hours = {day: draw(windows()) for day in WEEKDAYS}
    if not any(hours.values()):
        hours["wed"] = [["09:00", "17:30"]]
    dates = st.dates(min_value=date(2025, 12, 1), max_value=date(2028, 1, 31))
    return {
        "tz": draw(st.sampled_from(ZONES)),
        "hours": hours,
        "holidays": sorted({d.isoformat() for d in draw(st.lists(dates, max_size=6))}),
        "overrides": {
            d.isoformat(): draw(windows(4)) for d in sorted(draw(st.sets(dates, max_size=4)))
        },
        **({"holiday_country": c} if (c := draw(st.sampled_from([None, "US", "DE"]))) else {}),
    }


def instants() -> st.SearchStrategy[datetime]:
    anywhere = st.integers(0, SPAN_SECONDS).map(lambda s: BASE + timedelta(seconds=s))
    near_change = st.tuples(st.sampled_from(TRANSITIONS), st.integers(-3 * 86_400, 3 * 86_400)).map(
        lambda p: p[0] + timedelta(seconds=p[1])
    )
    on_the_half_hour = st.integers(0, SPAN_SECONDS // 1800).map(
        lambda n: BASE + timedelta(minutes=30 * n)
    )
    micro = st.integers(0, 999_999).map(lambda us: timedelta(microseconds=us))
    return st.tuples(
        st.one_of(anywhere, near_change, on_the_half_hour), st.one_of(st.just(timedelta(0)), micro)
    ).map(lambda p: p[0] + p[1])


durations = st.one_of(
    st.integers(0, 60 * 3600).map(lambda s: timedelta(seconds=s)),
    st.integers(0, 120).map(lambda n: timedelta(minutes=30 * n)),
    st.integers(0, 10**6).map(lambda us: timedelta(microseconds=us)),
)


def reference_between(d: dict[str, Any], a: datetime, b: datetime) -> timedelta:
    """Business time in [a, b) the slow, obvious way: every window of every date, unioned."""
    zone = ZoneInfo(d["tz"])
    country = d.get("holiday_country")
    listed = {date.fromisoformat(x) for x in d["holidays"]}
    day = a.astimezone(zone).date() - timedelta(days=2)
    last = b.astimezone(zone).date() + timedelta(days=1)
    pieces: list[tuple[datetime, datetime]] = []
    while day <= last:
        key = day.isoformat()
        if key in d["overrides"]:
            todays = d["overrides"][key]
        elif day in listed or (country and day in _country(country, day.year)):
            todays = []
        else:
            todays = d["hours"][WEEKDAYS[day.weekday()]]
        for start, end in todays:
            lo, hi = (_local(zone, day, t) for t in (start, end))
            lo, hi = max(lo, a), min(hi, b)
            if lo < hi:
                pieces.append((lo, hi))
        day += timedelta(days=1)
    total, reach = timedelta(0), None
    for lo, hi in sorted(pieces):
        if reach is not None and lo < reach:
            lo = reach
        if lo < hi:
            total += hi - lo
            reach = hi
    return total


@cache
def _country(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, years=year))


def _local(zone: ZoneInfo, day: date, hhmm: str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    if h == 24:
        day, h = day + timedelta(days=1), 0
    return datetime(day.year, day.month, day.day, h, m, tzinfo=zone).astimezone(UTC)


def is_closing(cal: BusinessCalendar, t: datetime) -> bool:
    return not cal.is_open(t) and cal.is_open(t - timedelta(microseconds=1))


@settings(max_examples=30, deadline=None)
@given(calendars())
def test_dict_round_trip(d: dict[str, Any]) -> None:
    cal = BusinessCalendar.from_dict(d)
    assert BusinessCalendar.from_dict(cal.to_dict()) == cal
    assert BusinessCalendar.from_dict(cal.to_dict()).to_dict() == cal.to_dict()


@SETTINGS
@given(calendars(), instants(), durations)
def test_between_inverts_add(d: dict[str, Any], start: datetime, span: timedelta) -> None:
    cal = BusinessCalendar.from_dict(d)
    due = cal.add(start, span)
    assert due.tzinfo is cal.zone
    assert due >= start
    assert cal.between(start, due) == span
    assert cal.between(start, due) == reference_between(d, start, due)
    assert cal.is_open(due) or is_closing(cal, due)
    if span == timedelta(0):
        assert due.astimezone(UTC) == cal.next_open(start).astimezone(UTC)


@SETTINGS
@given(calendars(), instants(), durations, durations)
def test_add_is_monotonic(d: dict[str, Any], start: datetime, x: timedelta, y: timedelta) -> None:
    cal = BusinessCalendar.from_dict(d)
    short, long = sorted((x, y))
    # Compared in UTC: same-zone datetimes compare by wall clock and ignore fold.
    assert cal.add(start, short).astimezone(UTC) <= cal.add(start, long).astimezone(UTC)
    # Adding in two steps lands on the same business moment (up to a closing/opening pair).
    two_steps = cal.add(cal.add(start, short), long - short)
    assert cal.between(start, two_steps) == long


@SETTINGS
@given(calendars(), instants(), instants(), instants())
def test_between_is_additive(d: dict[str, Any], x: datetime, y: datetime, z: datetime) -> None:
    cal = BusinessCalendar.from_dict(d)
    a, b, c = sorted((x, y, z))
    assert cal.between(a, b) + cal.between(b, c) == cal.between(a, c)
    assert cal.between(c, a) == -cal.between(a, c)
    assert cal.between(a, c) == reference_between(d, a, c)


@SETTINGS
@given(calendars(), instants())
def test_next_open_is_open_and_skips_no_business_time(d: dict[str, Any], t: datetime) -> None:
    cal = BusinessCalendar.from_dict(d)
    opening = cal.next_open(t)
    assert opening >= t
    assert cal.is_open(opening)
    assert cal.between(t, opening) == timedelta(0)
    # Compared in UTC: "==" across zones is False for a repeated local time (PEP 495).
    assert (opening.astimezone(UTC) == t) == cal.is_open(t)
    if opening > t:
        assert not cal.is_open(opening - timedelta(microseconds=1))


@SETTINGS
@given(calendars(), instants(), st.integers(0, 15), st.integers(0, 15))
def test_add_days_is_monotonic_and_open(d: dict[str, Any], start: datetime, x: int, y: int) -> None:
    cal = BusinessCalendar.from_dict(d)
    few, many = sorted((x, y))
    early, late = cal.add_days(start, few), cal.add_days(start, many)
    assert cal.is_open(early)
    assert cal.is_open(late)
    assert early.astimezone(UTC) <= late.astimezone(UTC)
    assert cal.add_days(start, 0).astimezone(UTC) == cal.next_open(start).astimezone(UTC)


@settings(max_examples=25, deadline=None)
@given(calendars(), instants(), st.integers(0, 400))
def test_long_spans_match_the_reference(d: dict[str, Any], start: datetime, hours: int) -> None:
    cal = BusinessCalendar.from_dict(d)
    due = cal.add(start, timedelta(hours=hours))
    assert reference_between(d, start, due) == timedelta(hours=hours)
