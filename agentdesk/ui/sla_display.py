"""The SLA clock as the queue shows it: cached per ticket, cheap to re-read every second.

:func:`agentdesk.policy.sla.sla_status` is the only definition of a ticket's due time and state.
It costs 13-30 microseconds a call (it walks business time twice for day targets), so calling
it for 100,000 rows (the At risk / Breached views, the SLA column sort) or for every visible row
on every repaint would be too slow. :class:`SlaClock` therefore caches what does not change
with time:

* **Keyed by the SLA inputs, not by a version number.** The cache key is the ticket's
  :class:`SlaInputs` (arrival, effective tier, plan, first response, waiting periods). A changed
  ticket has different inputs, so it can never be served a stale due time, whatever the replica
  does with ``version`` for optimistic local edits; an unchanged ticket is computed once.
* **Answered tickets** (met / met late) are time independent: the whole status is cached.
* **Unanswered tickets without an open pause** have a fixed due time and target length; only
  "business time left" moves. The due time comes from ``sla_status``; the state at ``now`` is
  then re-derived from it with the same three comparisons ``sla_status`` makes (breached after
  the due instant, at risk when ``left <= total * AT_RISK_SHARE``), and :meth:`SlaClock.state`
  usually decides it without walking business time at all. A test checks all of this agrees
  with ``sla_status`` over a whole fixture queue at several instants, so the copy cannot drift
  silently.
* **Tickets waiting on the customer** (an open pause) have a due time that moves with ``now``;
  they always go through ``sla_status``.

The plans and calendars are small tables read once (:meth:`SlaClock.load`) into
``SupportPlan`` / ``BusinessCalendar`` objects; a plan without a calendar runs on the team's
default calendar, which the schema does not store, so the caller passes it (seed 002's New York
office hours unless told otherwise).

The text helpers are pure functions so they are testable without a widget; colours follow the
palette (light or dark) so the queue stays readable in both.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, NamedTuple

from PySide6.QtGui import QColor, QPalette
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from ..models import Calendar, Plan
from ..policy.calendar import BusinessCalendar
from ..policy.errors import PolicyError
from ..policy.plans import ResponseTarget, SupportPlan
from ..policy.sla import SlaState, SlaStatus, sla_status
from .shown_time import clock_text, to_local

log = logging.getLogger(__name__)

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

#: The share of the target left at which a ticket counts as at risk (sla_status's default).
AT_RISK_SHARE = Fraction(1, 4)
#: What a cell or field says while the row it shows (contact, organisation, plan) has not
#: arrived from the server yet: never a "?" or a rule asserted on missing data.
LOADING = "loading…"

#: Seed 002's hours: Monday-Friday 08:00-17:00 New York time, US public holidays off.
DEFAULT_CALENDAR_DATA: Mapping[str, Any] = {
    "tz": "America/New_York",
    "hours": {d: [["08:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holiday_country": "US",
}

_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CACHE_LIMIT = 300_000  # cached tickets before the caches are dropped (a bound, not a tuning knob)

Pause = tuple[datetime, datetime | None]


def default_team_calendar() -> BusinessCalendar:
    return BusinessCalendar.from_dict(DEFAULT_CALENDAR_DATA, name="Office hours (ET)")


class SlaInputs(NamedTuple):
    """Everything a ticket's SLA clock depends on; hashable, so it is its own cache key."""

    arrival: datetime
    tier: int
    plan_id: uuid.UUID | None
    first_response: datetime | None
    pauses: tuple[Pause, ...]


class _Fixed:
    """The time-independent part of an unanswered, unpaused ticket's clock, plus the last
    exact "business time left" (``seen_at``, ``seen_left``) for :meth:`SlaClock.state`."""

    __slots__ = ("due", "seen_at", "seen_left", "target", "total")

    def __init__(self, due: datetime, target: ResponseTarget, total: timedelta,
                 seen_at: datetime, seen_left: timedelta) -> None:
        self.due, self.target, self.total = due, target, total
        self.seen_at, self.seen_left = seen_at, seen_left


class SlaClock:
    """Plans, calendars and per-ticket due times, shared by the GUI thread and query workers.

    Thread safety: the caches are plain dicts written with single assignments (atomic under the
    GIL); two threads computing the same entry both store the same value. :meth:`load` builds
    new dicts and swaps them in, so a reader never sees a half-loaded set of plans.
    """

    def __init__(self, default_calendar: BusinessCalendar | None = None) -> None:
        self.default_calendar = default_calendar or default_team_calendar()
        self._plans: dict[uuid.UUID, SupportPlan] = {}
        self._calendars: dict[uuid.UUID, BusinessCalendar] = {}
        self._loaded = False
        self._answered: dict[SlaInputs, SlaStatus] = {}
        self._fixed: dict[SlaInputs, _Fixed] = {}
        self._refused: set[SlaInputs] = set()

    # ------------------------------------------------------------------------------ lookups

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self, conn: Connection) -> None:
        """(Re)read every plan and calendar: a handful of rows, read in one go."""
        by_id: dict[uuid.UUID, BusinessCalendar] = {}
        plans: dict[uuid.UUID, SupportPlan] = {}
        calendars: dict[uuid.UUID, BusinessCalendar] = {}
        with Session(bind=conn) as session:
            for cal_row in session.scalars(select(Calendar).where(Calendar.deleted.is_(False))):
                try:
                    by_id[cal_row.id] = BusinessCalendar.from_dict(cal_row.data, name=cal_row.name)
                except PolicyError:
                    continue  # a broken calendar falls back to the team default, never crashes
            for plan_row in session.scalars(select(Plan).where(Plan.deleted.is_(False))):
                found = by_id.get(plan_row.calendar_id) if plan_row.calendar_id else None
                calendar = found or self.default_calendar
                try:
                    plans[plan_row.id] = plan_row.to_policy(calendar.name)
                except PolicyError:
                    continue
                calendars[plan_row.id] = calendar
        self._plans, self._calendars = plans, calendars
        self._answered, self._fixed = {}, {}
        self._loaded = True

    def plan(self, plan_id: uuid.UUID | None) -> SupportPlan | None:
        return self._plans.get(plan_id) if plan_id is not None else None

    def calendar(self, plan_id: uuid.UUID | None) -> BusinessCalendar:
        found = self._calendars.get(plan_id) if plan_id is not None else None
        return found or self.default_calendar

    def plans(self) -> Mapping[uuid.UUID, SupportPlan]:
        return self._plans

    # ------------------------------------------------------------------------------ clocks

    def status(self, inputs: SlaInputs, now: datetime) -> SlaStatus | None:
        """The ticket's SLA status at ``now``; None when its plan is unknown (not synced yet)
        or the policy refuses its data."""
        try:
            return self._status(inputs, now)
        except PolicyError as exc:
            if inputs not in self._refused:
                self._refused.add(inputs)
                log.warning("no SLA for a ticket: %s: %s", exc.field, exc.message)
            return None

    def _status(self, inputs: SlaInputs, now: datetime) -> SlaStatus | None:
        plan = self.plan(inputs.plan_id)
        if plan is None:
            return None
        calendar = self.calendar(inputs.plan_id)
        paused_now = any(end is None or end > now for _, end in inputs.pauses)
        if inputs.first_response is not None and inputs.first_response <= now:
            found = self._answered.get(inputs)
            if found is None:
                found = self._compute(inputs, plan, calendar, now)
                self._store(self._answered, inputs, found)
            return found
        if paused_now or inputs.first_response is not None:
            return self._compute(inputs, plan, calendar, now)
        fixed = self._fixed.get(inputs)
        if fixed is None:
            full = self._compute(inputs, plan, calendar, now)
            self._store(self._fixed, inputs, _Fixed(
                full.due, full.target, full.business_total, now, full.business_left))
            return full
        left = calendar.between(now, fixed.due)
        if now >= fixed.seen_at:
            fixed.seen_at, fixed.seen_left = now, left
        return SlaStatus(fixed.due, fixed.target, fixed.total, left, _state(now, fixed, left),
                         False)

    def state(self, inputs: SlaInputs, now: datetime) -> SlaState | None:
        """Just the state, usually without walking business time.

        With the due time cached: breached is one comparison. Otherwise the last exact
        "business time left" bounds the present one, because business time never runs faster
        than wall time: ``seen_left - (now - seen_at) <= left(now) <= seen_left``. If the lower
        bound is still above the at-risk share the ticket is on track; if the upper bound is
        already within it the ticket is at risk. Only tickets crossing that edge since they
        were last looked at need :meth:`status`.
        """
        fixed = self._fixed.get(inputs)
        if (
            fixed is not None
            and inputs.first_response is None
            and not any(end is None or end > now for _, end in inputs.pauses)
        ):
            if now > fixed.due:
                return SlaState.BREACHED
            if now >= fixed.seen_at:
                quarter = fixed.total * AT_RISK_SHARE.numerator
                den = AT_RISK_SHARE.denominator
                if (fixed.seen_left - (now - fixed.seen_at)) * den > quarter:
                    return SlaState.ON_TRACK
                if fixed.seen_left * den <= quarter:
                    return SlaState.AT_RISK
        found = self.status(inputs, now)
        return None if found is None else found.state

    def due(self, inputs: SlaInputs, now: datetime) -> tuple[bool, datetime] | None:
        """(answered, due instant) for sorting by the SLA column; no business-time walk for a
        ticket whose due time is already cached."""
        if inputs.first_response is None:
            fixed = self._fixed.get(inputs)
            if fixed is not None and not any(end is None or end > now for _, end in inputs.pauses):
                return False, fixed.due
        else:
            found = self._answered.get(inputs)
            if found is not None:
                return True, found.due
        status = self.status(inputs, now)
        if status is None:
            return None
        return status.state in (SlaState.MET, SlaState.MET_LATE), status.due

    def _compute(
        self, inputs: SlaInputs, plan: SupportPlan, calendar: BusinessCalendar, now: datetime
    ) -> SlaStatus:
        """sla_status; a row it refuses (corrupt replica data) shows no SLA rather than
        failing the whole queue, and is logged once per distinct input."""
        return sla_status(
            inputs.arrival,
            inputs.tier,
            plan,
            calendar,
            now,
            first_response=inputs.first_response,
            paused=inputs.pauses,
            at_risk_share=AT_RISK_SHARE,
        )

    @staticmethod
    def _store(cache: dict[SlaInputs, Any], key: SlaInputs, value: Any) -> None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = value


def _state(now: datetime, fixed: _Fixed, left: timedelta) -> SlaState:
    """sla_status's rule for an unanswered, unpaused ticket (see the module docstring)."""
    if now > fixed.due:
        return SlaState.BREACHED
    if left * AT_RISK_SHARE.denominator <= fixed.total * AT_RISK_SHARE.numerator:
        return SlaState.AT_RISK
    return SlaState.ON_TRACK


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
    """"Tue 14:00 EST" on the plan's business clock (the hours that count), with the date
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

