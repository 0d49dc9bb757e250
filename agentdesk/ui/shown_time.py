"""Instants as a person reads them: on their own clock, relative where that is what matters.

Every time the workstation shows (the queue's tooltips, the ticket card and its history, the
SLA due texts, the contact panel, the timer) goes through this module, so one setting
(:data:`agentdesk.ui.settings.TIME_ZONE`, the computer's own zone by default) decides the
clock for all of them. The rules keep counting in UTC and in the team's or the plan's zone
(:mod:`agentdesk.policy.zones`); only the words change here.

The zone is process state set once at start and again when the setting changes
(:func:`set_display_zone`), not a parameter threaded through every widget: a person has one
clock, and a panel built later must not show another.

Weekday and month names are spelled here, not by strftime, whose names follow the process
locale (Qt sets it from the environment).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, tzinfo

from ..policy.errors import PolicyError
from ..policy.zones import zone

log = logging.getLogger(__name__)

__all__ = [
    "ago_text",
    "clock_text",
    "display_zone",
    "local_text",
    "set_display_zone",
    "to_local",
]

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

#: None: the computer's own zone (what ``datetime.astimezone()`` uses).
_zone: tzinfo | None = None


def set_display_zone(name: str) -> str | None:
    """Show times in the IANA zone ``name`` ("" for the computer's own).

    Returns None when done, or why ``name`` was not used (the computer's zone is used then):
    a settings file can name a zone this machine's tzdata does not know.
    """
    global _zone
    if not name.strip():
        _zone = None
        return None
    try:
        _zone = zone(name.strip())
    except PolicyError as exc:
        _zone = None
        log.warning("time zone setting ignored: %s", exc.message)
        return exc.message
    return None


def display_zone() -> tzinfo | None:
    """The zone set by :func:`set_display_zone`; None for the computer's own."""
    return _zone


def to_local(t: datetime) -> datetime:
    """``t`` on the person's clock."""
    return t.astimezone(_zone)


def _zone_name(local: datetime) -> str:
    return local.tzname() or ""


def local_text(t: datetime | None, *, empty: str = "—") -> str:
    """An instant in full on the person's clock: "2026-03-03 10:00 EST"."""
    if t is None:
        return empty
    local = to_local(t)
    return f"{local:%Y-%m-%d %H:%M} {_zone_name(local)}".rstrip()


def clock_text(t: datetime, now: datetime) -> str:
    """A nearby instant as short as it can be said unambiguously: "14:00 EST" today,
    "Tue 14:00 EST" within the week either side, the date added beyond."""
    local, today = to_local(t), to_local(now)
    clock = f"{local.hour:02d}:{local.minute:02d} {_zone_name(local)}".rstrip()
    if local.date() == today.date():
        return clock
    day = _WEEKDAYS[local.weekday()]
    if abs(local.date() - today.date()) < timedelta(days=7):
        return f"{day} {clock}"
    return f"{day} {local.day} {_MONTHS[local.month - 1]} {local.year} {clock}"


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 3600:
        return f"{max(seconds // 60, 1)} min"
    if seconds < 86_400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} d"


def ago_text(t: datetime | None, now: datetime, *, empty: str = "—") -> str:
    """A past instant relative to ``now`` with its clock time: "2 h ago, 14:02 CET";
    "just now" under a minute; a future instant (a skewed clock) reads "in 5 min, …"."""
    if t is None:
        return empty
    delta = now - t
    if abs(delta) < timedelta(minutes=1):
        return f"just now, {clock_text(t, now)}"
    if delta < timedelta(0):
        return f"in {_span(-delta)}, {clock_text(t, now)}"
    return f"{_span(delta)} ago, {clock_text(t, now)}"
