"""The time statement as CSV: one table, one line per fact, written by :mod:`.csv_safe`.

A spreadsheet user filters on the ``Section`` column (opening, purchase, entry, day, expiry,
total, closing, correction); every number is in minutes so sums in a spreadsheet are exact (a
correction line carries none: it is history, already reflected in the entries). The ``total``
line carries the same figures as the PDF's totals (a test reads both back and compares).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import IO
from zoneinfo import ZoneInfo

from ..queries.statement import StatementEntry, StatementView, hours_text
from .csv_safe import Cell, write_csv

__all__ = ["HEADER", "statement_rows", "write_statement_csv"]

HEADER = (
    "Section",
    "Date",
    "Description",
    "Person",
    "Start",
    "End",
    "Raw minutes",
    "Billed minutes",
    "Drawn minutes",
    "Overage minutes",
    "Purchased minutes",
    "Forfeited minutes",
    "Balance minutes",
)


#: "HH:MM" for each minute of a day.
_CLOCK = tuple(f"{m // 60:02}:{m % 60:02}" for m in range(24 * 60))


def _blank(n: int) -> list[Cell]:
    return [None] * n


def _entry_lines(entries: Sequence[StatementEntry], day: str) -> Iterator[Sequence[Cell]]:
    """One day's entry lines. A year is ~20,000 entries: each is made as it is written, its
    day's date written out once, its times of day looked up (docs/performance.md)."""
    clock = _CLOCK
    # Unpacked once: a named tuple's field by name is a descriptor call.
    for _, start, end, person, what, minutes, charged, billable, extra, ticket, note in entries:
        if extra:
            what += ", extra engineer"
        if not billable:
            what += ", not billable"
        if ticket:
            what += " - " + ticket
        if note:
            what += " - " + note
        yield [
            "entry",
            day,
            what,
            person,
            clock[start.hour * 60 + start.minute],
            clock[end.hour * 60 + end.minute],
            minutes,
            charged,
            None,
            None,
            None,
            None,
            None,
        ]


def statement_rows(view: StatementView) -> Iterator[Sequence[Cell]]:
    zone = ZoneInfo(view.tz)
    yield [
        "opening",
        view.start.isoformat(),
        f"Opening balance, {view.organisation} ({view.plan})",
        *_blank(9),
        view.opening,
    ]
    for p in view.statement.purchases:
        yield [
            "purchase",
            p.purchased_at.astimezone(zone).date().isoformat(),
            f"Purchased {hours_text(p.minutes)}, expires "
            f"{p.expires_at.astimezone(zone).date().isoformat()}",
            *_blank(7),
            p.minutes,
            None,
            None,
        ]
    entries_by_day: dict[date, list[StatementEntry]] = {}
    for e in view.entries:
        entries_by_day.setdefault(e.day, []).append(e)
    billed_days = {d.day: d for d in view.days}
    for day in sorted(set(entries_by_day) | set(billed_days)):
        yield from _entry_lines(entries_by_day.get(day, ()), day.isoformat())
        d = billed_days.get(day)
        if d is None:
            continue
        parts = [f"work rounded up once: {d.work_billed} min"]
        if d.scheduled:
            parts.append(f"scheduled blocks {d.scheduled} min")
        if d.late_cancellation:
            parts.append(f"late cancellation {d.late_cancellation} min")
        if d.extra_engineer_minutes:
            parts.append(f"includes extra engineer {d.extra_engineer_minutes} min")
        yield [
            "day",
            d.day.isoformat(),
            "Day total: " + "; ".join(parts),
            None,
            None,
            None,
            d.raw_minutes,
            d.billed,
            d.drawn,
            d.overage,
            None,
            None,
            None,
        ]
    for x in view.statement.expiries:
        yield [
            "expiry",
            x.expires_at.astimezone(zone).date().isoformat(),
            f"Block of {hours_text(x.purchased_minutes)} expired; unused hours forfeited",
            *_blank(8),
            x.forfeited_minutes,
            None,
        ]
    yield [
        "total",
        view.end.isoformat(),
        view.identity_text,
        None,
        None,
        None,
        sum(d.raw_minutes for d in view.days),
        view.billed,
        view.drawn,
        view.overage,
        view.purchased,
        view.forfeited,
        None,
    ]
    yield ["closing", view.end.isoformat(), "Closing balance", *_blank(9), view.closing]
    for line in view.expiry_lines:
        yield ["upcoming expiry", None, line, *_blank(10)]
    for c in view.corrections:  # history only: the live entries above already reflect them
        start = c.started_at.astimezone(zone)
        yield [
            "correction",
            start.date().isoformat(),
            c.text,
            c.person,
            start.strftime("%H:%M"),
            c.ended_at.astimezone(zone).strftime("%H:%M"),
            *_blank(7),
        ]


#: The only columns of :func:`statement_rows` that carry text from outside the program: the
#: description (subjects, notes, the organisation's name, a correction's text) and the person.
#: Every other cell is a date, a time of day, a number, None or the program's own words.
TEXT_COLUMNS = (HEADER.index("Description"), HEADER.index("Person"))


def write_statement_csv(out: IO[str], view: StatementView) -> int:
    return write_csv(out, HEADER, statement_rows(view), text_columns=TEXT_COLUMNS)
