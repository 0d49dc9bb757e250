"""response_instants: the stored due / at-risk instants turn sla_status's states into range
comparisons. Checked against sla_status itself at instants around both edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentdesk.policy.calendar import BusinessCalendar
from agentdesk.policy.errors import PolicyError
from agentdesk.policy.plans import seed_calendars, seed_plans
from agentdesk.policy.sla import SlaState, response_instants, sla_status

PLANS = seed_plans()
CALENDARS = [BusinessCalendar.from_dict(data) for _, data in seed_calendars().values()]
US = timedelta(microseconds=1)


def state_by_range(instants: tuple[datetime, datetime], now: datetime) -> SlaState:
    due, risk = instants
    if now > due:
        return SlaState.BREACHED
    return SlaState.AT_RISK if now >= risk else SlaState.ON_TRACK


@settings(max_examples=150, deadline=None)
@given(
    arrival=st.datetimes(
        min_value=datetime(2026, 1, 1),  # noqa: DTZ001
        max_value=datetime(2027, 12, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    tier=st.integers(1, 4),
    plan=st.sampled_from(PLANS),
    calendar=st.sampled_from(CALENDARS),
    pause=st.one_of(st.none(), st.tuples(st.integers(0, 5000), st.integers(0, 5000))),
    probe=st.integers(-600, 60 * 24 * 8),
)
def test_ranges_agree_with_sla_status(
    arrival: datetime,
    tier: int,
    plan: object,
    calendar: BusinessCalendar,
    pause: tuple[int, int] | None,
    probe: int,
) -> None:
    assert not isinstance(plan, str)
    pauses = []
    if pause is not None:
        start = arrival + timedelta(minutes=pause[0])
        pauses.append((start, start + timedelta(minutes=pause[1])))
    instants = response_instants(arrival, tier, plan, calendar, pauses)  # type: ignore[arg-type]
    assert instants is not None
    due, risk = instants
    assert risk <= due
    last = max([arrival, *(end for _, end in pauses)])
    for now in (risk - US, risk, due, due + US, last + timedelta(minutes=abs(probe))):
        if now < last:
            continue  # the stored instants describe the clock once every pause is over
        expected = sla_status(arrival, tier, plan, calendar, now, paused=pauses)  # type: ignore[arg-type]
        assert expected.due == due
        assert state_by_range(instants, now) is expected.state, now


def test_open_pause_has_no_fixed_instants_until_answered() -> None:
    cal, plan = CALENDARS[0], PLANS[0]
    arrival = datetime(2026, 12, 7, 14, tzinfo=UTC)
    waiting = [(arrival + timedelta(minutes=10), None)]
    assert response_instants(arrival, 2, plan, cal, waiting) is None
    answered = arrival + timedelta(minutes=5)
    got = response_instants(arrival, 2, plan, cal, waiting, first_response=answered)
    status = sla_status(arrival, 2, plan, cal, answered + timedelta(days=3), answered, waiting)
    assert got is not None
    assert got[0] == status.due


def test_bad_input_names_the_field() -> None:
    with pytest.raises(PolicyError) as err:
        response_instants(datetime(2026, 1, 1), 1, PLANS[0], CALENDARS[0])  # noqa: DTZ001
    assert err.value.field == "arrival"
    with pytest.raises(PolicyError) as err:
        response_instants(datetime(2026, 1, 1, tzinfo=UTC), 5, PLANS[0], CALENDARS[0])
    assert err.value.field == "tier"
