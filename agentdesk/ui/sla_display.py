"""How the queue and the ticket card show an SLA status: texts, tooltips and colours.

The clock itself (plans, calendars, per-ticket due times, cached) is Qt-free and lives on the
read side, :mod:`agentdesk.queries.sla_clock`; it is re-exported here for the widgets that use
both. The text helpers are pure functions so they are testable without a widget; colours follow
the palette (light or dark) so the queue stays readable in both.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from PySide6.QtGui import QColor, QPalette

from ..policy.calendar import BusinessCalendar
from ..policy.plans import ResponseTarget
from ..policy.sla import SlaState, SlaStatus
from ..queries.sla_clock import (
    AT_RISK_SHARE,
    LOADING,
    SlaClock,
    SlaInputs,
    default_team_calendar,
)
from .shown_time import clock_text, to_local

__all__ = [
    "AT_RISK_SHARE",
    "LOADING",
    "SlaClock",
    "SlaInputs",
    "age_text",
    "default_team_calendar",
    "due_text",
    "duration_text",
    "is_dark",
    "sla_colour",
    "sla_text",
    "sla_tooltip",
    "target_text",
]

_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# ---------------------------------------------------------------------------------- text


def duration_text(value: timedelta, *, seconds: bool = False) -> str:
    """A short human duration: "2d 3h", "3h 12m", "12m", or "12m 05s" with ``seconds``.

    Whole seconds only, rounded towards zero: a countdown shows what is surely left.
    """
    total = int(abs(value).total_seconds())
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if seconds:
        return f"{minutes}m {secs:02d}s"
    return f"{minutes}m" if minutes else "<1m"


def age_text(arrival: datetime, now: datetime) -> str:
    """Wall-clock age since arrival, business hours ignored: "45m", "3h 12m", "2d"."""
    age = now - arrival
    if age < timedelta(minutes=1):
        return "<1m"
    if age < timedelta(days=1):
        return duration_text(age)
    return f"{age.days}d"


def sla_text(status: SlaStatus | None) -> str:
    """The SLA cell: business time left, live to the second in the last hour."""
    if status is None:
        return "—"
    if status.state is SlaState.MET:
        return "Met"
    if status.state is SlaState.MET_LATE:
        return "Met late"
    if status.state is SlaState.BREACHED:
        text = f"Overdue {duration_text(status.business_left, seconds=True)}"
    else:
        text = f"{duration_text(status.business_left, seconds=True)} left"
    return f"⏸ {text}" if status.paused else text


def target_text(target: ResponseTarget) -> str:
    """ "30 business minutes", "4 business hours", "1 business day"."""
    if target.business_days is not None:
        days = target.business_days
        return f"{days} business day{'s' if days != 1 else ''}"
    assert target.business_time is not None
    minutes = int(target.business_time.total_seconds()) // 60
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} business hour{'s' if hours != 1 else ''}"
    return f"{minutes} business minutes"


def _when(t: datetime, calendar: BusinessCalendar, now: datetime) -> str:
    """ "Tue 14:00 EST" on the plan's business clock (the hours that count), with the date
    added when it is not within the coming week, and the person's own clock beside it when
    that reads differently: "Tue 14:00 EST (20:00 CET your time)".

    Weekday and month names are spelled here, not by strftime, whose names follow the
    process locale (Qt sets it from the environment).
    """
    local = t.astimezone(calendar.zone)
    zone = local.tzname() or calendar.tz
    clock = f"{local.hour:02d}:{local.minute:02d} {zone}"
    day = _WEEKDAY_NAMES[local.weekday()]
    if timedelta(days=-1) <= t - now <= timedelta(days=6):
        text = f"{day} {clock}"
    else:
        text = f"{day} {local.day} {_MONTH_NAMES[local.month - 1]} {local.year} {clock}"
    mine = to_local(t)
    if (mine.utcoffset(), mine.tzname()) != (local.utcoffset(), local.tzname()):
        text += f" ({clock_text(t, now)} your time)"
    return text


def due_text(status: SlaStatus, now: datetime) -> str:
    """The due instant on the person's clock, beside the live countdown (:func:`sla_text`)
    that says how much business time is left: "due 14:00 CET", "was due Tue 09:30 CET"."""
    when = clock_text(status.due, now)
    return f"due {when}" if now <= status.due else f"was due {when}"


def sla_tooltip(
    status: SlaStatus | None,
    *,
    tier: int,
    triaged: bool,
    calendar: BusinessCalendar,
    plan_name: str | None,
    now: datetime,
) -> str:
    """What the target is and where the ticket stands, in words."""
    if status is None:
        return "No response target: the ticket's plan is not known on this desktop yet."
    which = f"Tier {tier}" if triaged else f"Tier {tier} (stated urgency; not triaged yet)"
    lines = [f"{which}: {target_text(status.target)}, due {_when(status.due, calendar, now)}"]
    hours = calendar.name or calendar.tz
    left = duration_text(status.business_left)
    if status.state is SlaState.MET:
        lines.append(f"Answered in time ({left} to spare).")
    elif status.state is SlaState.MET_LATE:
        lines.append(f"Answered {left} of business time late.")
    elif status.state is SlaState.BREACHED:
        lines.append(f"Breached: overdue by {left} of business time.")
    elif status.state is SlaState.AT_RISK:
        lines.append(f"At risk: {left} of business time left.")
    else:
        lines.append(f"On track: {left} of business time left.")
    if status.paused:
        lines.append("Paused while waiting on the customer.")
    plan = f"{plan_name} plan, " if plan_name else ""
    lines.append(f"Counted in business hours only ({plan}{hours}).")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- colour

_COLOURS: Mapping[tuple[SlaState, bool], str] = {
    (SlaState.AT_RISK, False): "#a35c00",  # amber, dark enough on a light base
    (SlaState.AT_RISK, True): "#ffb74d",
    (SlaState.BREACHED, False): "#c62828",
    (SlaState.BREACHED, True): "#ff6e6e",
}


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Base).lightness() < 128


def sla_colour(state: SlaState | None, palette: QPalette) -> QColor | None:
    """Foreground for an SLA cell: normal on track, amber at risk, red breached, muted met."""
    if state is None or state is SlaState.ON_TRACK:
        return None
    if state in (SlaState.MET, SlaState.MET_LATE):
        return palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
    return QColor(_COLOURS[(state, is_dark(palette))])
