"""Queue order (seeds 002 and 003): urgency, then plan, then arrival, then id."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentdesk.policy.errors import PolicyError
from agentdesk.policy.plans import seed_plans
from agentdesk.policy.queue import (
    DEFAULT_UNTRIAGED_TIER,
    QueueKey,
    arrival_microseconds,
    effective_tier,
    queue_key,
)

LA = ZoneInfo("America/Los_Angeles")
NY = ZoneInfo("America/New_York")
PLANS = {p.key: p for p in seed_plans()}


def key(**kw: Any) -> QueueKey:
    defaults: dict[str, Any] = {
        "tier": 3,
        "stated_urgency": None,
        "plan_rank": PLANS["standard"].rank,
        "arrival": datetime(2026, 3, 2, 8, 0, tzinfo=LA),
        "ticket_id": "0190a000-0000-7000-8000-000000000001",
    }
    defaults.update(kw)
    return queue_key(**defaults)


def test_seed_003_standard_ticket_at_8am_before_standard_ticket_at_10am() -> None:
    at_10 = key(arrival=datetime(2026, 3, 2, 10, 0, tzinfo=LA), ticket_id="a")
    at_8 = key(arrival=datetime(2026, 3, 2, 8, 0, tzinfo=LA), ticket_id="b")
    assert at_8 < at_10
    assert sorted([at_10, at_8]) == [at_8, at_10]


def test_urgency_beats_plan_and_arrival() -> None:
    basic_tier1_late = key(
        tier=1, plan_rank=PLANS["basic"], arrival=datetime(2026, 3, 2, 16, 0, tzinfo=LA)
    )
    enterprise_tier2_early = key(
        tier=2, plan_rank=PLANS["enterprise"], arrival=datetime(2026, 3, 2, 6, 0, tzinfo=LA)
    )
    assert basic_tier1_late < enterprise_tier2_early


def test_plan_beats_arrival() -> None:
    premium_late = key(
        plan_rank=PLANS["premium"].rank,
        arrival=datetime(2026, 3, 2, 16, 0, tzinfo=LA),
        ticket_id="z",
    )
    standard_early = key(
        plan_rank=PLANS["standard"].rank,
        arrival=datetime(2026, 3, 2, 6, 0, tzinfo=LA),
        ticket_id="a",
    )
    assert premium_late < standard_early


def test_plan_rank_is_data_plan_or_int_alike() -> None:
    plan = PLANS["premium"]
    assert key(plan_rank=plan) == key(plan_rank=plan.rank)
    # Any ranking a team configures: higher is first, negative ranks are fine.
    assert key(plan_rank=100) < key(plan_rank=-5)


def test_arrival_across_time_zones_compares_by_instant() -> None:
    # 11:00 in New York is 08:00 in Los Angeles: the LA ticket at 08:30 arrived later.
    ny = key(arrival=datetime(2026, 3, 2, 11, 0, tzinfo=NY), ticket_id="z")
    la = key(arrival=datetime(2026, 3, 2, 8, 30, tzinfo=LA), ticket_id="a")
    assert ny < la
    same_instant_utc = key(arrival=datetime(2026, 3, 2, 16, 0, tzinfo=UTC), ticket_id="z")
    assert same_instant_utc.arrival_us == ny.arrival_us


def test_arrival_in_repeated_dst_hour_uses_fold() -> None:
    first = datetime(2026, 11, 1, 1, 30, tzinfo=NY)  # EDT, 05:30 UTC
    second = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NY)  # EST, 06:30 UTC
    assert arrival_microseconds(second) - arrival_microseconds(first) == 3_600_000_000
    assert key(arrival=first, ticket_id="z") < key(arrival=second, ticket_id="a")


def test_arrival_is_exact_integer_microseconds() -> None:
    t = datetime(2026, 3, 2, 8, 0, 0, 1, tzinfo=UTC)
    assert arrival_microseconds(t) == 1772438400_000_001
    assert arrival_microseconds(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert arrival_microseconds(datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)) == -1_000_000


def test_id_breaks_ties_as_text() -> None:
    a = key(ticket_id="0190a000-0000-7000-8000-00000000000a")
    b = key(ticket_id="0190a000-0000-7000-8000-00000000000b")
    assert a < b
    assert key(ticket_id="10") < key(ticket_id="9")  # text, not numbers


def test_key_is_a_plain_sortable_tuple() -> None:
    k = key(tier=2, plan_rank=3, arrival=datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), ticket_id="x")
    assert isinstance(k, tuple)
    assert tuple(k) == (2, -3, 1_000_000, "x")
    assert k == (2, -3, 1_000_000, "x")


# --- untriaged tickets ---------------------------------------------------------------------------


def test_assessed_tier_wins_over_stated_urgency() -> None:
    assert effective_tier(3, 1) == 3
    assert effective_tier(1, 4) == 1
    assert key(tier=4, stated_urgency=1).tier == 4


def test_stated_urgency_stands_in_before_triage() -> None:
    assert effective_tier(None, 1) == 1
    production_down = key(
        tier=None,
        stated_urgency=1,
        plan_rank=PLANS["basic"],
        arrival=datetime(2026, 3, 2, 16, 0, tzinfo=LA),
    )
    triaged_cosmetic = key(
        tier=4, plan_rank=PLANS["enterprise"], arrival=datetime(2026, 3, 2, 6, 0, tzinfo=LA)
    )
    assert production_down < triaged_cosmetic


def test_neither_tier_nor_urgency_sorts_as_default_tier_4() -> None:
    assert DEFAULT_UNTRIAGED_TIER == 4
    assert effective_tier(None, None) == 4
    unknown_early = key(
        tier=None, stated_urgency=None, arrival=datetime(2026, 3, 2, 6, 0, tzinfo=LA)
    )
    tier3_late = key(tier=3, arrival=datetime(2026, 3, 2, 16, 0, tzinfo=LA))
    assert tier3_late < unknown_early


def test_untriaged_default_is_configurable() -> None:
    assert effective_tier(None, None, untriaged_default=2) == 2
    assert key(tier=None, stated_urgency=None, untriaged_default=2).tier == 2
    # The default only applies when nothing better is known.
    assert effective_tier(None, 3, untriaged_default=2) == 3
    assert effective_tier(4, None, untriaged_default=1) == 4


def test_triaged_and_untriaged_at_same_tier_are_not_separated() -> None:
    """Same effective tier: plan then arrival decide, whether or not triage has happened."""
    untriaged_early = key(
        tier=None, stated_urgency=2, arrival=datetime(2026, 3, 2, 8, 0, tzinfo=LA), ticket_id="z"
    )
    triaged_late = key(tier=2, arrival=datetime(2026, 3, 2, 9, 0, tzinfo=LA), ticket_id="a")
    assert untriaged_early < triaged_late
    triaged_early = key(tier=2, arrival=datetime(2026, 3, 2, 7, 0, tzinfo=LA), ticket_id="z")
    assert triaged_early < untriaged_early
    untriaged_higher_plan = key(
        tier=None,
        stated_urgency=2,
        plan_rank=PLANS["premium"],
        arrival=datetime(2026, 3, 2, 9, 30, tzinfo=LA),
    )
    assert untriaged_higher_plan < triaged_early


# --- bad input -----------------------------------------------------------------------------------


def test_naive_arrival_is_refused() -> None:
    naive = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).replace(tzinfo=None)
    with pytest.raises(PolicyError) as err:
        key(arrival=naive)
    assert err.value.field == "arrival"


def test_non_datetime_arrival_is_refused() -> None:
    with pytest.raises(PolicyError) as err:
        key(arrival=date(2026, 3, 2))
    assert err.value.field == "arrival"


@pytest.mark.parametrize("bad", [0, 5, -1, True, "1", 1.0])
@pytest.mark.parametrize("field", ["tier", "stated_urgency", "untriaged_default"])
def test_tiers_outside_1_to_4_are_refused_naming_the_field(field: str, bad: object) -> None:
    with pytest.raises(PolicyError) as err:
        key(**{field: bad})
    assert err.value.field == field
    assert isinstance(err.value, ValueError)


def test_bad_urgency_is_caught_even_when_the_tier_is_set() -> None:
    with pytest.raises(PolicyError) as err:
        effective_tier(1, 9)
    assert err.value.field == "stated_urgency"


@pytest.mark.parametrize("bad", [True, 1.5, "2", None])
def test_bad_plan_rank_is_refused(bad: object) -> None:
    with pytest.raises(PolicyError) as err:
        key(plan_rank=bad)
    assert err.value.field == "plan_rank"


@pytest.mark.parametrize("bad", ["", None, 7])
def test_bad_ticket_id_is_refused(bad: object) -> None:
    with pytest.raises(PolicyError) as err:
        key(ticket_id=bad)
    assert err.value.field == "ticket_id"


# --- property: the key induces the documented total order ----------------------------------------

ZONES = st.sampled_from([UTC, LA, NY, ZoneInfo("Asia/Kolkata"), timezone(timedelta(hours=-3))])
TICKETS = st.fixed_dictionaries(
    {
        "tier": st.none() | st.integers(1, 4),
        "stated_urgency": st.none() | st.integers(1, 4),
        "plan_rank": st.integers(-2, 3),
        # A narrow window so equal instants and equal ranks actually collide.
        "arrival": st.datetimes(
            min_value=datetime(2026, 3, 7),  # noqa: DTZ001 (bounds are naive)
            max_value=datetime(2026, 3, 9),  # noqa: DTZ001
            timezones=ZONES,
        ).map(lambda d: d.replace(second=0, microsecond=0)),
        "ticket_id": st.text(alphabet="0123abc-", min_size=1, max_size=3),
    }
)


def rule_says_before(a: dict[str, Any], b: dict[str, Any]) -> bool | None:
    """The rule written independently of the key: True if a first, False if b, None if equal."""

    def tier(t: dict[str, Any]) -> int:
        if t["tier"] is not None:
            return int(t["tier"])
        return int(t["stated_urgency"]) if t["stated_urgency"] is not None else 4

    if tier(a) != tier(b):
        return tier(a) < tier(b)
    if a["plan_rank"] != b["plan_rank"]:
        return bool(a["plan_rank"] > b["plan_rank"])
    ia, ib = a["arrival"].astimezone(UTC), b["arrival"].astimezone(UTC)
    if ia != ib:
        return bool(ia < ib)
    if a["ticket_id"] != b["ticket_id"]:
        return bool(a["ticket_id"] < b["ticket_id"])
    return None


@settings(max_examples=150, deadline=None)
@given(st.lists(TICKETS, min_size=2, max_size=12))
def test_sorting_by_key_follows_the_rule_pairwise(tickets: list[dict[str, Any]]) -> None:
    ordered = sorted(tickets, key=lambda t: queue_key(**t))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            assert rule_says_before(b, a) is not True, (a, b)


@settings(max_examples=150, deadline=None)
@given(TICKETS, TICKETS)
def test_key_comparison_matches_the_rule(a: dict[str, Any], b: dict[str, Any]) -> None:
    ka, kb = queue_key(**a), queue_key(**b)
    verdict = rule_says_before(a, b)
    if verdict is None:
        assert ka == kb
    else:
        assert (ka < kb) is verdict
        assert (kb < ka) is not verdict
