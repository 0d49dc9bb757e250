"""Business calendars: when the support team is open, and business time between instants.

Response targets are "counted only in the support team's business hours" (seeds 002 and 003:
Mon-Fri 08:00-17:00 ET; Mon-Fri 06:00-17:00 Pacific), "requests made outside of our normal business
hours" wait "until business hours resume" (seed 002), and a plan may run on its own hours (seed
002: "unless stated otherwise in your individual agreement"). So a calendar is data, not code: a
time zone, weekly hours (several intervals a day, for lunch breaks), holidays, and per-date
overrides. Its dict form is also the on-disk and wire format::

    {"tz": "America/New_York",
     "hours": {"mon": [["08:00", "17:00"]], ..., "sun": []},
     "holidays": ["2026-12-25"],
     "overrides": {"2026-12-24": [["08:00", "12:00"]]},
     "holiday_country": "US"}            # optional

Rules every method follows (so that SLA clocks agree on the desktop and the server):

* Business time is real elapsed time inside the local wall-clock windows. On the day clocks
  spring forward a 00:00-24:00 window holds 23 hours; on the day they fall back, 25 hours.
* A window boundary that does not exist locally (inside a spring-forward gap) moves forward by the
  gap: 02:30 on a day that jumps from 02:00 to 03:00 means 03:30. A boundary that exists twice
  (fall-back) means its first occurrence. A window that collapses to nothing that way is closed.
* Windows are half-open ``[open, close)``. Adjacent windows (12:00-13:00 then 13:00-17:00, or a day
  ending at 24:00 followed by a day starting at 00:00) form one continuous open period.
* A day's hours are: its override if it has one (an empty list closes it; an override on a
  holiday opens it), else nothing on a holiday, else the weekday's hours. Holidays are the explicit
  list plus, when ``holiday_country`` is set, that country's public holidays from the ``holidays``
  package (observed days included, e.g. Friday 2026-07-03 for Independence Day in the US).
* A calendar with no weekly hours at all is rejected when built (field ``hours``): every search
  for the next opening would otherwise run forever. Holidays and overrides are finite, so weekly
  hours guarantee an opening is always found.
* All methods take and return time-zone-aware datetimes; results are in the calendar's zone.
  Naive datetimes are rejected: guessing their zone is how SLA clocks drift by hours. Compare
  results as instants (``.astimezone(UTC)``): Python compares two datetimes that share a zone by
  wall clock, ignoring ``fold``, so around a fall-back 01:59 (first) sorts after 01:00 (second),
  and ``==`` across zones is always False for a repeated local time (PEP 495).

Speed: each local date's windows are converted to UTC once and cached (shared by calendars with
equal rules, so rebuilding one from its dict stays fast), public holidays are cached per (country,
year) for the process, and
long spans skip whole weeks at a time (a week without holidays, overrides or clock changes holds
exactly the nominal weekly hours; other weeks are summed from their days, then cached), so 10,000
business hours or 2,000 business days cost a few hundred cached steps. A zone that changed its
clocks and changed them back within a single week would be misread as a plain week; no zone does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from .errors import PolicyError
from .zones import zone as _resolve_zone

#: Weekday keys of the dict form, Monday first (``date.weekday()`` order).
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_KEYS = frozenset({"tz", "hours", "holidays", "overrides", "holiday_country"})
_TIME_RE = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)
_ZERO = timedelta(0)
_EMPTY: frozenset[int] = frozenset()
_MINUTES_PER_DAY = 24 * 60
_CACHE_LIMIT = 50_000  # cached dates/weeks per set of rules before the cache is dropped

#: A window in minutes after local midnight: ``0 <= start < end <= 1440``.
Window = tuple[int, int]
#: A window of one date as UTC instants, ``[open, close)``.
Span = tuple[datetime, datetime]


@cache
def _supported_countries() -> frozenset[str]:
    import holidays  # imported lazily: the package is large and most calendars never need it

    return frozenset(holidays.list_supported_countries())


@lru_cache(maxsize=1024)
def _public_holidays(country: str, year: int) -> frozenset[int]:
    """One country's public holidays in one year (as date ordinals), shared process-wide."""
    import holidays

    return frozenset(day.toordinal() for day in holidays.country_holidays(country, years=year))


@dataclass(frozen=True)
class _Spec:
    """The calendar's rules in canonical form: what equality and hashing compare."""

    tz: str
    weekly: tuple[tuple[Window, ...], ...]  # 7 entries, Monday first
    holidays: frozenset[date]
    overrides: tuple[tuple[date, tuple[Window, ...]], ...]  # sorted by date
    holiday_country: str | None


class _Day(NamedTuple):
    spans: tuple[Span, ...]
    total: timedelta


class _Week(NamedTuple):
    """Summary of the Monday-to-Sunday week; ``end`` is the next Monday's local midnight."""

    total: timedelta
    days: int
    end: datetime


@lru_cache(maxsize=64)
def _caches_for(spec: _Spec) -> tuple[dict[int, _Day], dict[int, _Week]]:
    """Per-date and per-week caches, shared by equal calendars.

    The server rebuilds calendars from stored dicts for each request; sharing the caches by
    rules (not by object) keeps those rebuilt calendars as fast as long-lived ones. Entries are
    pure functions of the rules, so sharing them is safe.
    """
    return {}, {}


class BusinessCalendar:
    """A support team's business hours in one time zone. Immutable; build with :meth:`from_dict`.

    ``name`` is a label for people (e.g. "24x7"); it is not part of the dict form and not part
    of equality, which compares the rules only.
    """

    __slots__ = (
        "_closed",
        "_days",
        "_nominal_days",
        "_nominal_total",
        "_overrides",
        "_spec",
        "_special",
        "_weekly_minutes",
        "_weeks",
        "_zone",
        "name",
    )

    def __init__(self, spec: _Spec, name: str | None = None) -> None:
        """Internal: use :meth:`from_dict` or :meth:`always_open`, which validate."""
        if not any(spec.weekly):
            raise PolicyError(
                "hours", "the calendar is never open: give at least one weekday some hours"
            )
        self._spec = spec
        self.name = name
        self._zone = ZoneInfo(spec.tz)
        self._overrides: dict[date, tuple[Window, ...]] = dict(spec.overrides)
        # Date ordinals: listed holidays, and every date that is not a plain weekday.
        self._closed = frozenset(day.toordinal() for day in spec.holidays)
        self._special = self._closed | frozenset(day.toordinal() for day in self._overrides)
        self._weekly_minutes = tuple(_minutes(day) for day in spec.weekly)
        self._nominal_total = timedelta(minutes=sum(self._weekly_minutes))
        self._nominal_days = sum(1 for minutes in self._weekly_minutes if minutes)
        self._days, self._weeks = _caches_for(spec)

    # ----------------------------------------------------------------------------- building

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, name: str | None = None) -> BusinessCalendar:
        """Build a calendar from its dict form, naming the first bad field in any error.

        Times are "HH:MM" (24-hour, two digits); "24:00" may end a window. Windows of one day must
        not overlap (touching is fine). Missing weekdays are closed. Dates are "YYYY-MM-DD".
        """
        if not isinstance(d, Mapping):
            raise PolicyError("calendar", "must be an object")
        unknown = sorted(str(k) for k in d if k not in _KEYS)
        if unknown:
            raise PolicyError(unknown[0], "unknown calendar field")
        tz = _parse_tz(d.get("tz"))
        if "hours" not in d:
            raise PolicyError("hours", "is required")
        weekly = _parse_hours(d["hours"])
        holidays = _parse_holidays(d.get("holidays", []))
        overrides = _parse_overrides(d.get("overrides", {}))
        country = _parse_country(d.get("holiday_country"))
        return cls(_Spec(tz, weekly, holidays, overrides, country), name)

    @classmethod
    def always_open(cls, tz: str = "UTC", *, name: str | None = "24x7") -> BusinessCalendar:
        """A 24x7 calendar (e.g. for a plan that is "stated otherwise in your agreement")."""
        day = ((0, _MINUTES_PER_DAY),)
        return cls(_Spec(_parse_tz(tz), (day,) * 7, frozenset(), (), None), name)

    def to_dict(self) -> dict[str, Any]:
        """The dict form; ``from_dict(cal.to_dict()) == cal``. Lists come out sorted."""
        spec = self._spec
        out: dict[str, Any] = {
            "tz": spec.tz,
            "hours": {
                key: _windows_out(day) for key, day in zip(WEEKDAYS, spec.weekly, strict=True)
            },
            "holidays": [day.isoformat() for day in sorted(spec.holidays)],
            "overrides": {day.isoformat(): _windows_out(w) for day, w in spec.overrides},
        }
        if spec.holiday_country is not None:
            out["holiday_country"] = spec.holiday_country
        return out

    @property
    def tz(self) -> str:
        return self._spec.tz

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    @property
    def holiday_country(self) -> str | None:
        return self._spec.holiday_country

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BusinessCalendar) and other._spec == self._spec

    def __hash__(self) -> int:
        return hash(self._spec)

    def __repr__(self) -> str:
        return f"BusinessCalendar(name={self.name!r}, tz={self._spec.tz!r})"

    # ----------------------------------------------------------------------------- queries

    def is_holiday(self, day: date) -> bool:
        """Whether ``day`` is a listed or (with ``holiday_country``) public holiday."""
        ordinal = day.toordinal()
        return ordinal in self._closed or ordinal in self._country_holidays(day.year)

    def is_business_day(self, day: date) -> bool:
        """Whether ``day`` has any business hours (after holidays, overrides and clock changes)."""
        return self._day(day).total > _ZERO

    def is_open(self, t: datetime) -> bool:
        """Whether ``t`` lies inside business hours. A closing instant is not open."""
        u = _utc(t, "t")
        return self._next_open_utc(u) == u

    def next_open(self, t: datetime) -> datetime:
        """``t`` itself if open, else the next opening (Friday 18:00 -> Monday 08:00)."""
        return self._next_open_utc(_utc(t, "t")).astimezone(self._zone)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant ``duration`` of business time after ``start``.

        A start outside business hours starts counting at the next opening, so zero time returns
        the next business moment at or after ``start``. A span that runs out exactly at a
        closing time returns that closing time: 30 minutes from Friday 16:30 is Friday 17:00,
        not Monday 08:00 (the due time is the last moment that still counts).
        """
        cur = _utc(start, "start")
        if not isinstance(duration, timedelta):
            raise PolicyError("duration", "must be a timedelta")
        if duration < _ZERO:
            raise PolicyError("duration", "must not be negative")
        remaining = duration
        first = self._local_date(cur)
        day = first - _DAY
        try:
            while True:
                if day > first and day.weekday() == 0:
                    week = self._week(day)
                    while remaining > week.total:  # strictly: the end may be the week's last close
                        remaining -= week.total
                        day += _WEEK
                        week = self._week(day)
                for open_, close in self._day(day).spans:
                    if close <= cur:
                        continue
                    if open_ < cur:
                        open_ = cur
                    available = close - open_
                    if remaining <= available:
                        return (open_ + remaining).astimezone(self._zone)
                    remaining -= available
                    cur = close
                day += _DAY
        except OverflowError:
            raise PolicyError("duration", "runs past the end of the calendar") from None

    def add_days(self, start: datetime, n: int) -> datetime:
        """The same local time ``n`` business days after ``start`` ("1 day" targets, seed 002).

        A start outside business hours first moves to the next opening (Friday 18:00 -> Monday
        08:00; that is the n == 0 result). Then it steps over ``n`` business days (days with
        business hours; holidays and closed days are skipped) and keeps the local time of day.
        If that time is not open on the target day (a shorter day, or a day with a lunch break)
        the result is the next business moment after it.
        """
        if not isinstance(n, int) or isinstance(n, bool):
            raise PolicyError("days", "must be a whole number")
        if n < 0:
            raise PolicyError("days", "must not be negative")
        local = self._next_open_utc(_utc(start, "start")).astimezone(self._zone)
        if n == 0:
            return local
        time_of_day = local.time().replace(fold=0)
        day = local.date()
        remaining = n
        try:
            while remaining:
                day += _DAY
                if day.weekday() == 0:
                    week = self._week(day)
                    while remaining > week.days:
                        remaining -= week.days
                        day += _WEEK
                        week = self._week(day)
                if self._day(day).total > _ZERO:
                    remaining -= 1
            target = datetime.combine(day, time_of_day, tzinfo=self._zone).astimezone(UTC)
            return self._next_open_utc(target).astimezone(self._zone)
        except OverflowError:
            raise PolicyError("days", "runs past the end of the calendar") from None

    def between(self, a: datetime, b: datetime) -> timedelta:
        """Business time in ``[a, b)``; negative (``-between(b, a)``) when ``b`` is before ``a``.

        The sign is kept rather than rejected so "business time left until the due time" reads
        naturally as negative once a ticket is overdue.
        """
        ua, ub = _utc(a, "a"), _utc(b, "b")
        if ub < ua:
            return -self.between(b, a)
        total = _ZERO
        first, last = self._local_date(ua), self._local_date(ub)
        day = first - _DAY
        while day <= last:
            if day > first and day.weekday() == 0:
                week = self._week(day)
                while week.end <= ub:
                    total += week.total
                    day += _WEEK
                    week = self._week(day)
            for open_, close in self._day(day).spans:
                if close <= ua:
                    continue
                if open_ >= ub:
                    return total
                total += min(close, ub) - max(open_, ua)
            day += _DAY
        return total

    # ----------------------------------------------------------------------------- internals

    def _local_date(self, u: datetime) -> date:
        return u.astimezone(self._zone).date()

    def _next_open_utc(self, u: datetime) -> datetime:
        day = self._local_date(u) - _DAY
        while True:
            for open_, close in self._day(day).spans:
                if close > u:
                    return open_ if open_ > u else u
            day += _DAY

    def _country_holidays(self, year: int) -> frozenset[int]:
        country = self._spec.holiday_country
        return _EMPTY if country is None else _public_holidays(country, year)

    def _windows_on(self, day: date) -> tuple[Window, ...]:
        override = self._overrides.get(day)
        if override is not None:
            return override
        if self.is_holiday(day):
            return ()
        return self._spec.weekly[day.weekday()]

    def _instant(self, day: date, minute: int) -> datetime:
        if minute == _MINUTES_PER_DAY:
            day, minute = day + _DAY, 0
        local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self._zone)
        return local.astimezone(UTC)  # fold=0: gap times move forward, repeated times come first

    def _day(self, day: date) -> _Day:
        key = day.toordinal()
        found = self._days.get(key)
        if found is None:
            spans: list[Span] = []
            for start, end in self._windows_on(day):
                open_, close = self._instant(day, start), self._instant(day, end)
                if spans and open_ < spans[-1][1]:  # only possible around a clock change
                    open_ = spans[-1][1]
                if close <= open_:
                    continue
                if spans and spans[-1][1] == open_:
                    spans[-1] = (spans[-1][0], close)
                else:
                    spans.append((open_, close))
            found = _Day(tuple(spans), sum((c - o for o, c in spans), _ZERO))
            if len(self._days) >= _CACHE_LIMIT:
                self._days.clear()
            self._days[key] = found
        return found

    def _week(self, monday: date) -> _Week:
        key = monday.toordinal()
        found = self._weeks.get(key)
        if found is None:
            before = self._weeks.get(key - 7)
            start = before.end if before is not None else self._instant(monday, 0)
            end = self._instant(monday + _WEEK, 0)
            if end - start != _WEEK:  # the clocks change this week: convert every window
                totals = [self._day(monday + timedelta(days=i)).total for i in range(7)]
                found = _Week(sum(totals, _ZERO), sum(1 for t in totals if t), end)
            elif self._is_plain(key, monday.year):
                found = _Week(self._nominal_total, self._nominal_days, end)
            else:  # one UTC offset all week: wall-clock minutes are real minutes
                minutes = [_minutes(self._windows_on(monday + timedelta(days=i))) for i in range(7)]
                found = _Week(timedelta(minutes=sum(minutes)), sum(1 for m in minutes if m), end)
            if len(self._weeks) >= _CACHE_LIMIT:
                self._weeks.clear()
            self._weeks[key] = found
        return found

    def _is_plain(self, monday: int, year: int) -> bool:
        """No holiday or override in the week starting on the ordinal ``monday``."""
        week = range(monday, monday + 7)
        if not self._special.isdisjoint(week):
            return False
        if self._spec.holiday_country is None:
            return True
        sunday_year = date.fromordinal(monday + 6).year
        return self._country_holidays(year).isdisjoint(week) and (
            sunday_year == year or self._country_holidays(sunday_year).isdisjoint(week)
        )


# --------------------------------------------------------------------------------- parsing


def _utc(t: object, field: str) -> datetime:
    if not isinstance(t, datetime):
        raise PolicyError(field, "must be a datetime")
    if t.tzinfo is None or t.utcoffset() is None:
        raise PolicyError(field, "must be time-zone aware (a naive datetime has no known zone)")
    if not 1 < t.year < 9999:  # room for the day before and the week after
        raise PolicyError(field, "must be between the years 2 and 9998")
    return t.astimezone(UTC)


def _parse_tz(value: object) -> str:
    _resolve_zone(value)
    assert isinstance(value, str)  # zone() refused everything else
    return value


def _parse_minute(value: object, field: str) -> int:
    if not isinstance(value, str) or not _TIME_RE.fullmatch(value):
        raise PolicyError(field, f"times are 'HH:MM' from 00:00 to 24:00, got {value!r}")
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _parse_windows(value: object, field: str) -> tuple[Window, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise PolicyError(field, "must be a list of [start, end] pairs")
    windows: list[Window] = []
    for i, pair in enumerate(value):
        where = f"{field}[{i}]"
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise PolicyError(where, "must be a [start, end] pair like ['08:00', '17:00']")
        start, end = _parse_minute(pair[0], where), _parse_minute(pair[1], where)
        if end <= start:
            raise PolicyError(where, "must end after it starts")
        for other_start, other_end in windows:
            if start < other_end and other_start < end:
                raise PolicyError(where, "overlaps an earlier interval of the same day")
        windows.append((start, end))
    return tuple(sorted(windows))


def _parse_hours(value: object) -> tuple[tuple[Window, ...], ...]:
    if not isinstance(value, Mapping):
        raise PolicyError("hours", "must be an object keyed by weekday ('mon' ... 'sun')")
    for key in value:
        if key not in WEEKDAYS:
            raise PolicyError(f"hours.{key}", "unknown weekday (use 'mon' ... 'sun')")
    return tuple(_parse_windows(value.get(key, []), f"hours.{key}") for key in WEEKDAYS)


def _parse_date(value: object, field: str) -> date:
    if isinstance(value, str) and _DATE_RE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise PolicyError(field, f"must be a date 'YYYY-MM-DD', got {value!r}")


def _parse_holidays(value: object) -> frozenset[date]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PolicyError("holidays", "must be a list of dates 'YYYY-MM-DD'")
    return frozenset(_parse_date(v, f"holidays[{i}]") for i, v in enumerate(value))


def _parse_overrides(value: object) -> tuple[tuple[date, tuple[Window, ...]], ...]:
    if not isinstance(value, Mapping):
        raise PolicyError("overrides", "must be an object keyed by date 'YYYY-MM-DD'")
    parsed = {
        _parse_date(key, f"overrides.{key}"): _parse_windows(windows, f"overrides.{key}")
        for key, windows in value.items()
    }
    return tuple(sorted(parsed.items()))


def _parse_country(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in _supported_countries():
        raise PolicyError("holiday_country", f"unknown country code {value!r} (e.g. 'US', 'DE')")
    return value


def _minutes(windows: Iterable[Window]) -> int:
    return sum(end - start for start, end in windows)


def _minute_out(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _windows_out(windows: Iterable[Window]) -> list[list[str]]:
    return [[_minute_out(start), _minute_out(end)] for start, end in windows]
