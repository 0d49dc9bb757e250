"""Initial-response targets and the SLA clock.

Seed 002 promises a first response per severity tier (30 minutes, 4 hours, 1 day, 2 days) within
business hours; seed 003 says "each support plan provides an initial response time guarantee", so
the target comes from :meth:`SupportPlan.target_for` and the hours from the plan's
:class:`BusinessCalendar` (choosing that calendar from ``plan.calendar`` is the caller's job).

Only the *initial response* is promised. Resolution time is never promised (seed 002: it "will
vary"; seed 003: "we cannot guarantee when a ticket will be resolved"), so this module has no
resolution due date; track resolution time elsewhere, never count it down.

Untriaged tickets have no assessed tier yet (seed 002 step 1: a coordinator assesses severity);
until then the caller passes the urgency the customer stated as ``tier``, so the clock runs from
arrival and triage only moves the due time.

Time waiting on the customer does not count: ``paused`` periods stop the clock, and the due time
moves out by the business time they cover.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from .calendar import BusinessCalendar
from .errors import PolicyError
from .plans import TIERS, ResponseTarget, SupportPlan

#: A period waiting on the customer: ``(start, end)``; ``end`` None means "still waiting".
Pause = tuple[datetime, datetime | None]

_ZERO = timedelta(0)


class SlaState(enum.StrEnum):
    """Where a ticket stands against its initial-response target."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"  # unanswered, at most ``at_risk_share`` of the target left
    BREACHED = "breached"  # unanswered and past the due time
    MET = "met"  # answered at or before the due time
    MET_LATE = "met_late"  # answered after the due time


@dataclass(frozen=True)
class SlaStatus:
    """The SLA clock of one ticket at one moment.

    ``business_total``: the target's length in business time (for a business-days target, the
    business time from arrival to the unpaused due time).
    ``business_left``: business time from ``now`` to ``due``; negative when overdue. Once the
    ticket is answered the clock has stopped, so it is measured from the first response instead
    (the margin by which the target was met, or missed when negative).
    ``paused``: the clock is paused at ``now`` (always False once answered: it has stopped).
    """

    due: datetime
    target: ResponseTarget
    business_total: timedelta
    business_left: timedelta
    state: SlaState
    paused: bool


def response_due(
    arrival: datetime,
    tier: int,
    plan: SupportPlan,
    calendar: BusinessCalendar,
    paused: Iterable[Pause] = (),
    *,
    now: datetime | None = None,
) -> datetime:
    """When the first response is due.

    Business-time targets (30 minutes, 4 hours) count business time from arrival; business-day
    targets keep the time of day (``BusinessCalendar.add_days``). Arrival outside business hours
    starts the clock at the next opening (seed 002: no response "until business hours resume").

    Pauses extend the due time by the business time they cover before the (extended) due time.
    That fixed point is computed directly: the clock's business time is walked around the pauses
    until the target is used up. Open-ended pauses run until ``now``, which is then required.
    """
    arrival_utc = _aware(arrival, "arrival")
    target = _target(plan, tier)
    periods = _merged(_pairs(paused), None if now is None else _aware(now, "now"))
    if target.business_time is not None:
        return _walk(calendar, arrival_utc, target.business_time, periods)
    assert target.business_days is not None
    due = calendar.add_days(arrival, target.business_days)
    due_utc = due.astimezone(UTC)
    if not any(end > arrival_utc and start < due_utc for start, end in periods):
        return due
    length = calendar.between(arrival, due)
    # Keep the unpaused rule that a day target's due time is an open moment, not a closing one.
    return calendar.next_open(_walk(calendar, arrival_utc, length, periods))


def sla_status(
    arrival: datetime,
    tier: int,
    plan: SupportPlan,
    calendar: BusinessCalendar,
    now: datetime,
    first_response: datetime | None = None,
    paused: Iterable[Pause] = (),
    at_risk_share: Fraction | int = Fraction(1, 4),
) -> SlaStatus:
    """The SLA state of a ticket at ``now``.

    The clock stops at the first response: pauses after it (or after ``now``) do not count.
    At risk: unanswered, not yet overdue, and at most ``at_risk_share`` of the target's business
    length left (the edge counts as at risk). Breached: unanswered and ``now`` after the due
    time (answering exactly at the due time meets the target). Met late: answered after it.
    """
    arrival_utc = _aware(arrival, "arrival")
    now_utc = _aware(now, "now")
    if isinstance(at_risk_share, bool) or not isinstance(at_risk_share, Fraction | int):
        raise PolicyError("at_risk_share", "must be a Fraction (no floats), e.g. Fraction(1, 4)")
    if not 0 <= at_risk_share <= 1:
        raise PolicyError("at_risk_share", "must be between 0 and 1")
    stop = now_utc
    if first_response is not None:
        stop = _aware(first_response, "first_response")
        if stop < arrival_utc:
            raise PolicyError("first_response", "is before the ticket arrived")
    pairs = _pairs(paused)
    periods = [(s, min(e, stop)) for s, e in _merged(pairs, now_utc) if s < stop]
    target = _target(plan, tier)
    due = response_due(arrival, tier, plan, calendar, periods)
    if target.business_time is not None:
        total = target.business_time
    else:
        total = calendar.between(arrival, response_due(arrival, tier, plan, calendar))
    left = calendar.between(stop, due)
    due_utc = due.astimezone(UTC)
    if first_response is not None:
        state = SlaState.MET if stop <= due_utc else SlaState.MET_LATE
        is_paused = False
    else:
        is_paused = any(s <= now_utc and (e is None or now_utc < e) for s, e in pairs)
        if now_utc > due_utc:
            state = SlaState.BREACHED
        elif left * at_risk_share.denominator <= total * at_risk_share.numerator:
            state = SlaState.AT_RISK
        else:
            state = SlaState.ON_TRACK
    return SlaStatus(due, target, total, left, state, is_paused)


def response_instants(
    arrival: datetime,
    tier: int,
    plan: SupportPlan,
    calendar: BusinessCalendar,
    paused: Iterable[Pause] = (),
    first_response: datetime | None = None,
    at_risk_share: Fraction | int = Fraction(1, 4),
) -> tuple[datetime, datetime] | None:
    """``(due, at_risk)``: the instants at which an unpaused ticket becomes breached (any time
    after ``due``) and at risk (from ``at_risk`` up to ``due``), so that stored on the ticket
    they turn :func:`sla_status`'s states into range comparisons with ``now``:
    ``now < at_risk`` on track, ``at_risk <= now <= due`` at risk, ``now > due`` breached.

    None while the ticket waits on the customer (an open pause and no first response): its due
    time moves with the clock then, so it has no fixed instant until the wait ends. Once
    answered, pauses after the first response no longer count (as in :func:`sla_status`), and
    ``due`` is what the first response is measured against.

    ``at_risk`` is the first instant with at most ``at_risk_share`` of the target's business
    length left before ``due`` (business time, as ``sla_status`` measures what is left).
    """
    if isinstance(at_risk_share, bool) or not isinstance(at_risk_share, Fraction | int):
        raise PolicyError("at_risk_share", "must be a Fraction (no floats), e.g. Fraction(1, 4)")
    if not 0 <= at_risk_share <= 1:
        raise PolicyError("at_risk_share", "must be between 0 and 1")
    arrival_utc = _aware(arrival, "arrival")
    pairs = _pairs(paused)
    if first_response is None:
        if any(end is None for _, end in pairs):
            return None
        periods = pairs
    else:
        stop = _aware(first_response, "first_response")
        if stop < arrival_utc:
            raise PolicyError("first_response", "is before the ticket arrived")
        periods = [(s, stop if e is None else min(e, stop)) for s, e in pairs if s < stop]
    target = _target(plan, tier)
    due = response_due(arrival, tier, plan, calendar, periods)
    if target.business_time is not None:
        total = target.business_time
    else:
        total = calendar.between(arrival, response_due(arrival, tier, plan, calendar))
    share = Fraction(at_risk_share)
    risky = total * share.numerator // share.denominator
    before = calendar.between(arrival, due) - risky
    at_risk = calendar.add(arrival, max(before, _ZERO)).astimezone(UTC)
    return due.astimezone(UTC), min(at_risk, due.astimezone(UTC))


def response_business_time(
    arrival: datetime,
    first_response: datetime,
    due: datetime,
    tier: int,
    plan: SupportPlan,
    calendar: BusinessCalendar,
) -> timedelta:
    """Business time the first response took, pauses excluded, given its ``due`` time (from
    :func:`response_instants`): the target's length minus what was left when it came, exactly
    ``business_total - business_left`` of :func:`sla_status` at the response."""
    target = _target(plan, tier)
    if target.business_time is not None:
        total = target.business_time
    else:
        total = calendar.between(arrival, response_due(arrival, tier, plan, calendar))
    return total - calendar.between(first_response, due)


def _target(plan: SupportPlan, tier: int) -> ResponseTarget:
    if isinstance(tier, bool) or not isinstance(tier, int) or tier not in TIERS:
        raise PolicyError("tier", f"must be one of {list(TIERS)}, got {tier!r}")
    return plan.target_for(tier)


def _aware(t: object, field: str) -> datetime:
    """``t`` in UTC: every comparison here is between instants.

    Two datetimes that share a zone compare by wall clock, ignoring ``fold``, so 01:59 before
    the fall-back would wrongly sort after the repeated 01:00; in UTC that cannot happen.
    """
    if not isinstance(t, datetime):
        raise PolicyError(field, "must be a datetime")
    if t.tzinfo is None or t.utcoffset() is None:
        raise PolicyError(field, "must be time-zone aware")
    return t.astimezone(UTC)


def _pairs(paused: Iterable[Pause]) -> list[Pause]:
    if isinstance(paused, str | bytes):
        raise PolicyError("paused", "must be a list of (start, end) periods")
    out: list[Pause] = []
    for i, period in enumerate(paused):
        if not isinstance(period, tuple | list) or len(period) != 2:
            raise PolicyError(f"paused[{i}]", "must be a (start, end) pair; end may be None")
        start = _aware(period[0], f"paused[{i}]")
        end = None if period[1] is None else _aware(period[1], f"paused[{i}]")
        if end is not None and end < start:
            raise PolicyError(f"paused[{i}]", "ends before it starts")
        out.append((start, end))
    return out


def _merged(pairs: list[Pause], now: datetime | None) -> list[tuple[datetime, datetime]]:
    """Pause periods closed (open-ended ones end at ``now``), sorted, overlaps joined."""
    closed: list[tuple[datetime, datetime]] = []
    for i, (start, end) in enumerate(pairs):
        if end is None:
            if now is None:
                raise PolicyError(f"paused[{i}]", "is still open: pass `now` to end it")
            end = max(start, now)
        if start < end:
            closed.append((start, end))
    closed.sort()
    merged: list[tuple[datetime, datetime]] = []
    for start, end in closed:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _walk(
    calendar: BusinessCalendar,
    start: datetime,
    length: timedelta,
    periods: list[tuple[datetime, datetime]],
) -> datetime:
    """The first instant after ``start`` with ``length`` of unpaused business time behind it."""
    cursor, remaining = start, length
    for pause_start, pause_end in periods:
        if pause_end <= cursor:
            continue
        if pause_start > cursor:
            available = calendar.between(cursor, pause_start)
            if remaining <= available:
                return calendar.add(cursor, remaining)
            remaining -= available
        cursor = pause_end
    return calendar.add(cursor, remaining)
