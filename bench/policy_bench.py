"""Micro-benchmark of business-time arithmetic (``agentdesk.policy.calendar``).

The queue re-sorts and every dashboard recomputes SLA clocks for hundreds of tickets, so
``add``/``add_days``/``between`` must cost microseconds, not milliseconds, even for very long
spans. Prints one JSON line per measurement: median/min/max nanoseconds per call over ``runs``
timed batches of ``inner`` calls, and the ratio against two baselines measured in the same run
(a bare aware ``datetime + timedelta``, and a ``zoneinfo`` round trip UTC -> New York -> UTC).

"warm" rows reuse one calendar (its per-date and per-week caches filled, as in a running app);
"cold" rows use a calendar never seen before in every run (its caches are shared by calendars
with equal rules, so each run adds one distinct far-future holiday), so they include converting
each date's hours to UTC instants again. Public-holiday tables are cached per (country, year) for
the whole process, so only a cold row's first run pays for loading them from ``holidays``.

Run: ``python bench/policy_bench.py`` (about 5 seconds).
"""

from __future__ import annotations

import itertools
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

try:
    from agentdesk.policy.calendar import BusinessCalendar
except ImportError:  # a checkout without the editable install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from agentdesk.policy.calendar import BusinessCalendar

NY = ZoneInfo("America/New_York")
SPEC: dict[str, Any] = {
    "tz": "America/New_York",
    "hours": {d: [["08:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": [],
    "overrides": {},
    "holiday_country": "US",
}
# 52 starts across 2026 at varied times (some outside business hours), cycled through.
STARTS = [
    datetime(2026, 1, 5, 7, 15, tzinfo=NY) + timedelta(days=7 * i + i % 5, hours=(3 * i) % 12)
    for i in range(52)
]


def measure(call: Callable[[int], object], runs: int, inner: int) -> list[int]:
    """Nanoseconds per call for each of ``runs`` batches of ``inner`` calls."""
    per_call = []
    for run in range(runs):
        began = time.perf_counter_ns()
        for i in range(inner):
            call(run * inner + i)
        per_call.append((time.perf_counter_ns() - began) // inner)
    return per_call


_FRESH = itertools.count()


def measure_cold(call: Callable[[BusinessCalendar, int], object], runs: int) -> list[int]:
    """Like :func:`measure`, with a new calendar (empty caches) built outside the timing."""
    per_call = []
    for run in range(runs):
        unique = (date(2090, 1, 1) + timedelta(days=next(_FRESH))).isoformat()
        cal = BusinessCalendar.from_dict({**SPEC, "holidays": [unique]})
        began = time.perf_counter_ns()
        call(cal, run)
        per_call.append(time.perf_counter_ns() - began)
    return per_call


def report(
    name: str, span: str, cache: str, samples: list[int], inner: int, baselines: dict[str, float]
) -> dict[str, Any]:
    median = statistics.median(samples)
    row: dict[str, Any] = {
        "bench": name,
        "span": span,
        "cache": cache,
        "median_ns": round(median),
        "min_ns": min(samples),
        "max_ns": max(samples),
        "median_us": round(median / 1000, 2),
        "runs": len(samples),
        "calls_per_run": inner,
    }
    for base, base_median in baselines.items():
        row[f"x_{base}"] = round(median / base_median, 1)
    row["python"] = platform.python_version()
    print(json.dumps(row), flush=True)
    return row


def start(i: int) -> datetime:
    return STARTS[i % len(STARTS)]


def main() -> None:
    began = time.perf_counter()
    cal = BusinessCalendar.from_dict(SPEC)
    utc_starts = [s.astimezone(UTC) for s in STARTS]
    thirty, two_days = timedelta(minutes=30), 2
    long_hours, long_days = timedelta(hours=10_000), 2000
    # Ends for the `between` rows, computed once (and checked: between inverts add).
    short_ends = [cal.add(s, thirty) for s in STARTS]
    long_ends = [cal.add(s, long_hours) for s in STARTS]
    day_ends = [cal.add_days(s, long_days) for s in STARTS]
    assert all(cal.between(s, e) == long_hours for s, e in zip(STARTS, long_ends, strict=True))

    plain = measure(lambda i: start(i) + thirty, 200, 200)
    zone = measure(lambda i: utc_starts[i % 52].astimezone(NY).astimezone(UTC), 200, 200)
    base = {"datetime_add": statistics.median(plain), "zoneinfo": statistics.median(zone)}
    report("baseline datetime + timedelta", "-", "-", plain, 200, base)
    report("baseline zoneinfo UTC->NY->UTC", "-", "-", zone, 200, base)

    def at(i: int, ends: list[datetime]) -> datetime:
        return ends[i % len(ends)]

    warm: list[tuple[str, str, Callable[[int], object], int, int]] = [
        ("add", "30 minutes", lambda i: cal.add(start(i), thirty), 400, 50),
        ("add_days", "2 business days", lambda i: cal.add_days(start(i), two_days), 400, 50),
        ("between", "30 minutes", lambda i: cal.between(start(i), at(i, short_ends)), 400, 50),
        ("is_open", "-", lambda i: cal.is_open(start(i)), 400, 50),
        ("add", "10,000 business hours", lambda i: cal.add(start(i), long_hours), 300, 1),
        ("add_days", "2,000 business days", lambda i: cal.add_days(start(i), long_days), 300, 1),
        (
            "between",
            "10,000 business hours",
            lambda i: cal.between(start(i), at(i, long_ends)),
            300,
            1,
        ),
        (
            "between",
            "2,000 business days",
            lambda i: cal.between(start(i), at(i, day_ends)),
            300,
            1,
        ),
    ]
    for name, span, call, runs, inner in warm:
        measure(call, 3, inner)  # warm-up
        report(name, span, "warm", measure(call, runs, inner), inner, base)

    cold: list[tuple[str, str, Callable[[BusinessCalendar, int], object]]] = [
        ("add", "30 minutes", lambda c, i: c.add(start(i), thirty)),
        ("add", "10,000 business hours", lambda c, i: c.add(start(i), long_hours)),
        ("add_days", "2,000 business days", lambda c, i: c.add_days(start(i), long_days)),
        ("between", "10,000 business hours", lambda c, i: c.between(start(i), at(i, long_ends))),
    ]
    for name, span, cold_call in cold:
        report(name, span, "cold", measure_cold(cold_call, 40), 1, base)
    elapsed = time.perf_counter() - began
    print(json.dumps({"bench": "total", "seconds": round(elapsed, 2)}), flush=True)


if __name__ == "__main__":
    main()
