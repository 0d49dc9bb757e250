"""Entitlements (seed 000 allowances, seed 003 channels)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentdesk.policy.entitlements import (
    EntitlementDecision,
    calendar_year_bounds,
    calendar_year_of,
    check_request,
    conversation_allowance,
    conversations_in_year,
    review_bonus_applies,
)
from agentdesk.policy.errors import PolicyError
from agentdesk.policy.plans import SupportPlan, seed_plans

PLANS = {p.key: p for p in seed_plans()}
BASIC, STANDARD, PREMIUM, ENTERPRISE = (
    PLANS[k] for k in ("basic", "standard", "premium", "enterprise")
)
NY = ZoneInfo("America/New_York")


def check(plan: SupportPlan = BASIC, **kw: Any) -> EntitlementDecision:
    args: dict[str, Any] = {
        "channel": "portal",
        "verified_reviews": 0,
        "reviews_last_6_months": 0,
        "conversations_this_year": 0,
    }
    args.update(kw)
    return check_request(plan, **args)


# --- allowance -----------------------------------------------------------------------------------


def test_basic_gets_5_conversations() -> None:
    assert conversation_allowance(BASIC, 0, 0) == 5


def test_review_bonus_needs_both_thresholds() -> None:
    assert conversation_allowance(BASIC, 25, 10) == 10
    assert conversation_allowance(BASIC, 300, 40) == 10
    assert conversation_allowance(BASIC, 24, 10) == 5
    assert conversation_allowance(BASIC, 25, 9) == 5
    assert review_bonus_applies(BASIC, 25, 10)
    assert not review_bonus_applies(BASIC, 24, 99)


def test_premium_plans_are_unlimited() -> None:
    for plan in (STANDARD, PREMIUM, ENTERPRISE):
        assert conversation_allowance(plan, 0, 0) is None
        assert conversation_allowance(plan, 100, 100) is None
        assert not review_bonus_applies(plan, 100, 100)


def test_allowance_comes_from_plan_data() -> None:
    custom = SupportPlan(
        key="lite",
        name="Lite",
        rank=0,
        conversations_per_year=3,
        review_bonus_conversations=2,
        min_verified_reviews=4,
        min_recent_reviews=1,
    )
    assert conversation_allowance(custom, 3, 1) == 3
    assert conversation_allowance(custom, 4, 1) == 5
    no_bonus = replace(custom, review_bonus_conversations=0)
    assert conversation_allowance(no_bonus, 100, 100) == 3
    assert not review_bonus_applies(no_bonus, 100, 100)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((-1, 0), "verified_reviews"),
        ((0, -1), "reviews_last_6_months"),
        ((True, 0), "verified_reviews"),
        ((0, 2.0), "reviews_last_6_months"),
    ],
)
def test_bad_review_counts_are_refused(args: tuple[Any, Any], field: str) -> None:
    with pytest.raises(PolicyError) as err:
        conversation_allowance(BASIC, *args)
    assert err.value.field == field
    # Validated even where the plan makes them irrelevant.
    with pytest.raises(PolicyError) as err:
        conversation_allowance(PREMIUM, *args)
    assert err.value.field == field


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 60), st.integers(0, 30))
def test_allowance_is_monotone_in_reviews(verified: int, recent: int) -> None:
    allowance = conversation_allowance(BASIC, verified, recent)
    assert allowance in (5, 10)
    assert conversation_allowance(BASIC, verified + 1, recent) in (allowance, 10)
    assert conversation_allowance(BASIC, verified, recent + 1) in (allowance, 10)
    assert (allowance == 10) == (verified >= 25 and recent >= 10)


# --- check_request -------------------------------------------------------------------------------


def test_basic_request_within_allowance_is_ok() -> None:
    d = check(conversations_this_year=2, year=2026)
    assert d.allowed
    assert d.code == "ok"
    assert (d.allowance, d.used, d.remaining) == (5, 2, 3)
    assert d.channel_allowed
    assert not d.bonus_applies
    assert d.reason == (
        "Portal support is included in your Basic/Free plan; this request is "
        "support conversation 3 of 5 in 2026 (5 support conversations per "
        "calendar year), leaving 2."
    )


def test_last_conversation_is_allowed_and_the_next_is_not() -> None:
    last = check(conversations_this_year=4)
    assert last.allowed
    assert last.remaining == 1
    assert "leaving 0" in last.reason
    over = check(conversations_this_year=5)
    assert not over.allowed
    assert over.code == "allowance_used_up"
    assert over.remaining == 0


def test_used_up_reason_names_the_allowance_and_the_review_bonus() -> None:
    d = check(conversations_this_year=5, verified_reviews=12, reviews_last_6_months=3, year=2026)
    assert d.reason == (
        "Your Basic/Free plan includes 5 support conversations per calendar year, and all 5 have "
        "been used in 2026. You would qualify for 5 more with at least 25 verified reviews and 10 "
        "in the last 6 months (you have 12 and 3)."
    )


def test_bonus_extends_the_allowance_and_reason_says_so() -> None:
    d = check(conversations_this_year=7, verified_reviews=30, reviews_last_6_months=10)
    assert d.allowed
    assert d.bonus_applies
    assert (d.allowance, d.remaining) == (10, 3)
    assert "conversation 8 of 10 this calendar year" in d.reason
    assert "plus 5 more for a trustworthy review profile" in d.reason
    used_up = check(
        conversations_this_year=10, verified_reviews=30, reviews_last_6_months=10, year=2026
    )
    assert not used_up.allowed
    assert used_up.reason == (
        "Your Basic/Free plan includes 5 support conversations per calendar year, plus 5 more for "
        "a trustworthy review profile, and all 10 have been used in 2026."
    )
    assert "would qualify" not in used_up.reason


def test_losing_the_bonus_midyear_leaves_no_room_and_remaining_is_not_negative() -> None:
    d = check(conversations_this_year=8, verified_reviews=30, reviews_last_6_months=2)
    assert not d.allowed
    assert (d.allowance, d.used, d.remaining) == (5, 8, 0)
    assert "8 recorded" in d.reason


def test_catalogue_names_unlimited_plans_when_allowance_is_used_up() -> None:
    d = check(conversations_this_year=5, catalogue=seed_plans())
    assert d.reason.endswith(
        "Unlimited support conversations are included in the Standard, Premium and Enterprise "
        "plans."
    )


def test_unlimited_plan_is_always_allowed() -> None:
    d = check(PREMIUM, channel="chat", conversations_this_year=10_000)
    assert d.allowed
    assert d.code == "ok"
    assert (d.allowance, d.remaining, d.used) == (None, None, 10_000)
    assert d.reason == (
        "Chat support is included in your Premium plan, with unlimited support conversations."
    )


@pytest.mark.parametrize(
    ("plan", "channel", "allowed"),
    [
        (BASIC, "portal", True),
        (BASIC, "chat", False),
        (BASIC, "phone", False),
        (STANDARD, "portal", True),
        (STANDARD, "chat", False),
        (STANDARD, "phone", False),
        (PREMIUM, "portal", True),
        (PREMIUM, "chat", True),
        (PREMIUM, "phone", False),
        (ENTERPRISE, "portal", True),
        (ENTERPRISE, "chat", True),
        (ENTERPRISE, "phone", True),
    ],
)
def test_seed_003_channels_by_plan(plan: SupportPlan, channel: str, allowed: bool) -> None:
    d = check(plan, channel=channel)
    assert d.channel_allowed is allowed
    assert d.allowed is allowed
    assert d.code == ("ok" if allowed else "channel_not_in_plan")


def test_phone_refusal_names_the_plans_that_include_it() -> None:
    d = check(STANDARD, channel="phone", catalogue=seed_plans())
    assert d.reason == (
        "Phone support is included in the Enterprise plan only; your Standard plan "
        "includes: portal."
    )
    chat = check(STANDARD, channel="chat", catalogue=seed_plans())
    assert chat.reason == (
        "Chat support is included in the Premium and Enterprise plans only; "
        "your Standard plan includes: portal."
    )
    premium = check(PREMIUM, channel="phone", catalogue=seed_plans())
    assert premium.reason.endswith("your Premium plan includes: portal, chat.")


def test_channel_refusal_without_catalogue_still_names_own_channels() -> None:
    d = check(PREMIUM, channel="phone")
    assert d.reason == (
        "Phone support is not included in your Premium plan; your Premium plan "
        "includes: portal, chat."
    )
    nowhere = check(STANDARD, channel="email", catalogue=seed_plans())
    assert nowhere.reason == (
        "Email support is not offered in any plan; your Standard plan includes: portal."
    )


def test_channel_refusal_comes_first_but_allowance_is_still_reported() -> None:
    d = check(BASIC, channel="phone", conversations_this_year=5)
    assert d.code == "channel_not_in_plan"
    assert not d.allowed
    assert (d.allowance, d.remaining) == (5, 0)


def test_wording_follows_renamed_plan_data() -> None:
    plan = SupportPlan(
        key="gold",
        name="Gold",
        rank=5,
        channels=frozenset({"portal", "email"}),
        conversations_per_year=1,
    )
    d = check(plan, channel="phone")
    assert d.reason.endswith("your Gold plan includes: portal, email.")
    used = check(plan, conversations_this_year=1, year=2027)
    assert used.reason == (
        "Your Gold plan includes 1 support conversation per calendar year, "
        "and it has been used in 2027."
    )
    none = check(replace(plan, conversations_per_year=0))
    assert not none.allowed
    assert none.reason == "Your Gold plan includes no support conversations."


def test_decision_is_frozen() -> None:
    d = check()
    with pytest.raises(FrozenInstanceError):
        d.allowed = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"channel": None}, "channel"),
        ({"conversations_this_year": -1}, "conversations_this_year"),
        ({"conversations_this_year": None}, "conversations_this_year"),
        ({"verified_reviews": -3}, "verified_reviews"),
        ({"reviews_last_6_months": -3}, "reviews_last_6_months"),
        ({"year": 0}, "year"),
        ({"year": "2026"}, "year"),
    ],
)
def test_check_request_bad_input(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyError) as err:
        check(**kw)
    assert err.value.field == field


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(seed_plans()),
    st.sampled_from(["portal", "chat", "phone", "email"]),
    st.integers(0, 40),
    st.integers(0, 15),
    st.integers(0, 20),
)
def test_decision_fields_are_consistent(
    plan: SupportPlan, channel: str, verified: int, recent: int, used: int
) -> None:
    d = check(
        plan,
        channel=channel,
        verified_reviews=verified,
        reviews_last_6_months=recent,
        conversations_this_year=used,
    )
    assert d.allowance == conversation_allowance(plan, verified, recent)
    assert d.channel_allowed == (channel in plan.channels)
    if d.allowance is None:
        assert d.remaining is None
    else:
        assert d.remaining == max(d.allowance - used, 0)
    room = d.remaining is None or d.remaining > 0
    assert d.allowed == (d.channel_allowed and room)
    assert (d.code == "ok") == d.allowed
    assert d.reason
    assert plan.name in d.reason


# --- calendar year in the team's zone ------------------------------------------------------------


def test_new_years_eve_in_new_york_is_still_the_old_year() -> None:
    eve = datetime(2025, 12, 31, 23, 30, tzinfo=NY)
    assert eve.astimezone(UTC).year == 2026  # the trap
    assert calendar_year_of(eve, "America/New_York") == 2025
    assert calendar_year_of(eve, "UTC") == 2026
    assert calendar_year_of(eve.astimezone(UTC), "America/New_York") == 2025


def test_conversations_in_year_counts_in_the_team_zone() -> None:
    arrivals = [
        datetime(2025, 1, 1, 4, 59, tzinfo=UTC),  # 2024-12-31 23:59 in New York
        datetime(2025, 1, 1, 5, 0, tzinfo=UTC),  # 2025-01-01 00:00 in New York
        datetime(2025, 12, 31, 23, 30, tzinfo=NY),  # 2026 in UTC, 2025 in New York
        datetime(2026, 1, 1, 0, 0, tzinfo=NY),
    ]
    assert conversations_in_year(arrivals, 2025, "America/New_York") == 2
    assert conversations_in_year(arrivals, 2024, "America/New_York") == 1
    assert conversations_in_year(arrivals, 2026, "America/New_York") == 1
    assert conversations_in_year(arrivals, 2026, "UTC") == 2
    assert conversations_in_year(iter(arrivals), 2025, "UTC") == 2  # any iterable
    assert conversations_in_year([], 2025, "UTC") == 0


def test_naive_instants_are_refused() -> None:
    naive = datetime(2025, 12, 31, 23, 30, tzinfo=UTC).replace(tzinfo=None)
    with pytest.raises(PolicyError) as err:
        calendar_year_of(naive, "America/New_York")
    assert err.value.field == "instant"
    with pytest.raises(PolicyError) as err:
        conversations_in_year([datetime(2025, 1, 1, tzinfo=UTC), naive], 2025, "UTC")
    assert err.value.field == "arrivals[1]"


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "", "../etc/passwd", None, "not a zone"])
def test_unknown_time_zone_is_refused(tz: Any) -> None:
    with pytest.raises(PolicyError) as err:
        calendar_year_of(datetime(2025, 1, 1, tzinfo=UTC), tz)
    assert err.value.field == "tz"
    with pytest.raises(PolicyError) as err:
        conversations_in_year([], 2025, tz)
    assert err.value.field == "tz"


def test_bad_year_is_refused() -> None:
    with pytest.raises(PolicyError) as err:
        conversations_in_year([], True, "UTC")  # bool is an int to the type checker, not here
    assert err.value.field == "year"


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.datetimes(
            min_value=datetime(2024, 6, 1),  # noqa: DTZ001 (bounds are naive)
            max_value=datetime(2027, 6, 1),  # noqa: DTZ001
            timezones=st.sampled_from([UTC, NY, ZoneInfo("Asia/Tokyo")]),
        ),
        max_size=20,
    ),
    st.sampled_from(["America/New_York", "Pacific/Auckland", "UTC"]),
)
def test_every_arrival_counts_in_exactly_one_year(arrivals: list[datetime], tz: str) -> None:
    total = sum(conversations_in_year(arrivals, y, tz) for y in range(2023, 2029))
    assert total == len(arrivals)
    for a in arrivals:
        year = calendar_year_of(a, tz)
        local = a.astimezone(ZoneInfo(tz))
        assert local.year == year


# --- the calendar year as a range of UTC instants (for indexed counts) ---------------------------

US = timedelta(microseconds=1)


def test_year_bounds_in_new_york() -> None:
    start, end = calendar_year_bounds(2025, "America/New_York")
    assert start == datetime(2025, 1, 1, 5, tzinfo=UTC)  # midnight in New York
    assert end == datetime(2026, 1, 1, 5, tzinfo=UTC)
    eve = datetime(2025, 12, 31, 23, 30, tzinfo=NY)  # 2026 in UTC, 2025 in New York
    assert end is not None
    assert start <= eve < end
    assert calendar_year_of(start - US, "America/New_York") == 2024
    assert calendar_year_of(end - US, "America/New_York") == 2025
    assert calendar_year_bounds(2025, "UTC") == (
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_year_bounds_agree_with_calendar_year_of_in_every_zone() -> None:
    """From 1945 to 2100 in every zone of the tz database: the bounds are exactly where the
    wall clock's year changes, including where an offset change falls near New Year."""
    for tz in sorted(available_timezones()):
        zone = ZoneInfo(tz)
        for year in range(1945, 2101):
            start, end = calendar_year_bounds(year, tz)
            assert end == calendar_year_bounds(year + 1, tz)[0]
            assert start.astimezone(zone).year == year, (tz, year)
            assert (start - US).astimezone(zone).year == year - 1, (tz, year)
            offsets = {
                (start + timedelta(hours=h)).astimezone(zone).utcoffset()
                for h in range(-48, 49, 12)
            }
            if len(offsets) > 1:
                # A transition near New Year: walk it minute by minute.
                for minutes in range(-48 * 60, 48 * 60):
                    t = start + timedelta(minutes=minutes)
                    assert (t.astimezone(zone).year == year) == (minutes >= 0), (tz, year, t)


def test_year_bounds_where_clocks_went_back_across_midnight() -> None:
    """Phoenix, New Year 1944: 00:01 war time became 23:01 the day before. The year counts from
    the second midnight (documented); the minute before the turn-back counts for 1943."""
    start, _ = calendar_year_bounds(1944, "America/Phoenix")
    assert start == datetime(1944, 1, 1, 7, tzinfo=UTC)
    assert calendar_year_of(start - US, "America/Phoenix") == 1943


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1950, 1, 1),  # noqa: DTZ001 (bounds are naive)
        max_value=datetime(2090, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.sampled_from(
        [
            "America/New_York",
            "Pacific/Auckland",
            "Pacific/Kiritimati",
            "Pacific/Pago_Pago",
            "Asia/Kathmandu",
            "Europe/Dublin",
            "UTC",
        ]
    ),
)
def test_an_instant_is_in_the_range_of_its_own_year_only(instant: datetime, tz: str) -> None:
    year = calendar_year_of(instant, tz)
    for y in (year - 1, year, year + 1):
        start, end = calendar_year_bounds(y, tz)
        assert end is not None
        assert (start <= instant < end) == (y == year)


def test_year_bounds_at_the_ends_of_the_calendar() -> None:
    start, end = calendar_year_bounds(9999, "America/New_York")
    assert start == datetime(9999, 1, 1, 5, tzinfo=UTC)
    assert end is None  # no year 10000 to begin
    assert calendar_year_bounds(1, "Asia/Tokyo")[0] == datetime.min.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("year", "tz", "field"),
    [
        (0, "UTC", "year"),
        (10_000, "UTC", "year"),
        (True, "UTC", "year"),
        ("2025", "UTC", "year"),
        (2025, "Mars/Olympus_Mons", "tz"),
        (2025, None, "tz"),
    ],
)
def test_year_bounds_bad_input_is_refused(year: Any, tz: Any, field: str) -> None:
    with pytest.raises(PolicyError) as err:
        calendar_year_bounds(year, tz)
    assert err.value.field == field
