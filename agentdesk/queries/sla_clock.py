"""The SLA clock as the queue reads it: cached per ticket, cheap to re-read every second.

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

Qt-free (the queue's read side, :mod:`agentdesk.queries.queue`, computes the At risk / Breached
views and the SLA column sort with it on a worker thread); the text and colours that show a
status are in :mod:`agentdesk.ui.sla_display`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, NamedTuple

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from ..models import Calendar, Plan
from ..policy.calendar import BusinessCalendar
from ..policy.errors import PolicyError
from ..policy.plans import ResponseTarget, SupportPlan
from ..policy.sla import SlaState, SlaStatus, sla_status

log = logging.getLogger(__name__)

__all__ = [
    "AT_RISK_SHARE",
    "DEFAULT_CALENDAR_DATA",
    "LOADING",
    "Pause",
    "SlaClock",
    "SlaInputs",
    "default_team_calendar",
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

    def __init__(
        self,
        due: datetime,
        target: ResponseTarget,
        total: timedelta,
        seen_at: datetime,
        seen_left: timedelta,
    ) -> None:
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
            self._store(
                self._fixed,
                inputs,
                _Fixed(full.due, full.target, full.business_total, now, full.business_left),
            )
            return full
        left = calendar.between(now, fixed.due)
        if now >= fixed.seen_at:
            fixed.seen_at, fixed.seen_left = now, left
        return SlaStatus(
            fixed.due, fixed.target, fixed.total, left, _state(now, fixed, left), False
        )

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
