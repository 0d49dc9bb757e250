"""Whether a customer is entitled to open a new support conversation, and why (not).

Seed 000: basic/free members get 5 support conversations per calendar year, and 5 more if they
keep a trustworthy profile (at least 25 verified reviews and at least 10 reviews in the last 6
months); premium members get unlimited, priority support. Seed 003: the plan decides the channel
(portal for every plan, chat for Premium and Enterprise, phone for Enterprise only).

None of those numbers or channel sets live here: they are :class:`SupportPlan` data, and every
reason shown to an agent is worded from the plan, so a team that renames or re-prices its plans
gets correct sentences without a code change. The reasons are meant to be read to the customer.

"Calendar year" is the support team's calendar year: a request at 23:30 on 31 December in New York
counts towards that year even though it is already 1 January in UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from .errors import PolicyError
from .plans import CHANNELS, SupportPlan
from .zones import zone as _zone

__all__ = [
    "EntitlementCode",
    "EntitlementDecision",
    "calendar_year_bounds",
    "calendar_year_of",
    "check_request",
    "conversation_allowance",
    "conversations_in_year",
    "review_bonus_applies",
]

EntitlementCode = Literal["ok", "channel_not_in_plan", "allowance_used_up"]

#: Reading order for channel lists in messages (cheapest/most common first).
_CHANNEL_ORDER: tuple[str, ...] = ("portal", "email", "chat", "phone")


@dataclass(frozen=True)
class EntitlementDecision:
    """The answer for one new request.

    ``allowance`` is conversations per calendar year (``None``: unlimited). ``used`` is how many
    were already opened this year, not counting this request; ``remaining`` is how many are left
    *before* this one (so ``allowed`` needs ``remaining > 0``), ``None`` when unlimited.
    ``code`` is for machines ("ok", "channel_not_in_plan", "allowance_used_up"); ``reason`` is
    for people. A wrong channel is reported before a used-up allowance: the customer can fix the
    channel at once, and the allowance fields are filled in either way.
    """

    allowed: bool
    code: EntitlementCode
    reason: str
    channel: str
    channel_allowed: bool
    allowance: int | None
    used: int
    remaining: int | None
    bonus_applies: bool


def _count(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise PolicyError(field, f"must be a whole number, got {value!r}")
    if value < 0:
        raise PolicyError(field, f"must not be negative, got {value}")
    return value


def review_bonus_applies(
    plan: SupportPlan, verified_reviews: int, reviews_last_6_months: int
) -> bool:
    """Seed 000's trustworthy-profile bonus: only for limited plans that offer one.

    Recent reviews need not be verified, so no consistency between the two counts is required.
    """
    verified = _count(verified_reviews, "verified_reviews")
    recent = _count(reviews_last_6_months, "reviews_last_6_months")
    return (
        not plan.unlimited
        and plan.review_bonus_conversations > 0
        and verified >= plan.min_verified_reviews
        and recent >= plan.min_recent_reviews
    )


def conversation_allowance(
    plan: SupportPlan, verified_reviews: int, reviews_last_6_months: int
) -> int | None:
    """Support conversations per calendar year for this member, ``None`` for unlimited."""
    bonus = review_bonus_applies(plan, verified_reviews, reviews_last_6_months)
    if plan.conversations_per_year is None:
        return None
    return plan.conversations_per_year + (plan.review_bonus_conversations if bonus else 0)


def _aware(instant: object, field: str) -> datetime:
    if not isinstance(instant, datetime):
        raise PolicyError(field, f"must be a datetime, got {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise PolicyError(field, "must be timezone-aware (a naive time has no calendar year)")
    return instant


def calendar_year_of(instant: datetime, tz: str) -> int:
    """The calendar year ``instant`` falls in, on the wall clock of time zone ``tz``."""
    zone = _zone(tz)
    return _aware(instant, "instant").astimezone(zone).year


def _year(year: object) -> int:
    if not isinstance(year, int) or isinstance(year, bool) or not 1 <= year <= 9999:
        raise PolicyError("year", f"must be a calendar year, got {year!r}")
    return year


def _new_year(year: int, zone: ZoneInfo) -> datetime:
    """The UTC instant at which 1 January of ``year`` begins on ``zone``'s wall clock."""
    midnight = datetime(year, 1, 1, tzinfo=zone)
    try:
        # Where clocks were turned back across midnight, 00:00 came twice and the year holds
        # for good only from the second; where they jumped over midnight, fold=0 gives the
        # jump itself. The later of the two readings is right in both cases.
        return max(midnight.astimezone(UTC), midnight.replace(fold=1).astimezone(UTC))
    except OverflowError:  # year 1 east of Greenwich begins before datetime.min
        return datetime.min.replace(tzinfo=UTC)


def calendar_year_bounds(year: int, tz: str) -> tuple[datetime, datetime | None]:
    """Calendar ``year`` on the wall clock of ``tz`` as a half-open range of UTC instants.

    An instant ``t`` lies in ``[start, end)`` exactly when ``calendar_year_of(t, tz) == year``,
    so a database can count a year's arrivals with an indexed range on a UTC column instead of
    converting every row. ``end`` is ``None`` for year 9999: no later year is representable.

    One historical exception: on a dozen New Year's Eves before 1945 (the last America/Phoenix,
    1944) a zone turned its clocks back across midnight, so 00:00 came twice and the year began,
    briefly ended, and began again. The year is taken to begin at the second midnight, so the
    minutes between the two (at most an hour) count for the old year. The tests check every
    zone from 1945 on.
    """
    zone = _zone(tz)
    year = _year(year)
    return _new_year(year, zone), None if year == 9999 else _new_year(year + 1, zone)


def conversations_in_year(arrivals: Iterable[datetime], year: int, tz: str) -> int:
    """How many of ``arrivals`` fall in calendar ``year`` in time zone ``tz`` (seed 000 count)."""
    zone = _zone(tz)
    year = _year(year)
    return sum(
        1
        for i, arrival in enumerate(arrivals)
        if _aware(arrival, f"arrivals[{i}]").astimezone(zone).year == year
    )


def _plural(n: int, noun: str) -> str:
    if n == 0:
        return f"no {noun}s"
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def _ordered_channels(channels: Iterable[str]) -> list[str]:
    chans = set(channels)
    return [c for c in _CHANNEL_ORDER if c in chans] + sorted(chans - set(_CHANNEL_ORDER))


def _channel_refusal(plan: SupportPlan, channel: str, catalogue: list[SupportPlan]) -> str:
    mine = _ordered_channels(plan.channels)
    includes = (
        f"your {plan.name} plan includes: {', '.join(mine)}."
        if mine
        else f"your {plan.name} plan includes no support channels."
    )
    label = channel.capitalize()
    if not catalogue:
        return f"{label} support is not included in your {plan.name} plan; {includes}"
    offering = [
        p.name
        for p in sorted(catalogue, key=lambda p: (p.rank, p.name))
        if p.allows_channel(channel) and p.key != plan.key
    ]
    if not offering:
        return f"{label} support is not offered in any plan; {includes}"
    plans = "plan" if len(offering) == 1 else "plans"
    return f"{label} support is included in the {_join(offering)} {plans} only; {includes}"


def _bonus_hint(plan: SupportPlan, verified: int, recent: int) -> str:
    return (
        f" You would qualify for {plan.review_bonus_conversations} more with at least "
        f"{plan.min_verified_reviews} verified reviews and {plan.min_recent_reviews} in the last "
        f"6 months (you have {verified} and {recent})."
    )


def _unlimited_hint(plan: SupportPlan, catalogue: list[SupportPlan]) -> str:
    names = [
        p.name
        for p in sorted(catalogue, key=lambda p: (p.rank, p.name))
        if p.unlimited and p.key != plan.key
    ]
    if not names:
        return ""
    plans = "plan" if len(names) == 1 else "plans"
    return f" Unlimited support conversations are included in the {_join(names)} {plans}."


def _allowance_words(plan: SupportPlan, bonus: bool) -> str:
    base = plan.conversations_per_year or 0
    words = f"{_plural(base, 'support conversation')} per calendar year"
    if bonus:
        words += f", plus {plan.review_bonus_conversations} more for a trustworthy review profile"
    return words


def check_request(
    plan: SupportPlan,
    *,
    channel: str,
    verified_reviews: int,
    reviews_last_6_months: int,
    conversations_this_year: int,
    year: int | None = None,
    catalogue: Iterable[SupportPlan] = (),
) -> EntitlementDecision:
    """Decide whether a new request on ``channel`` is entitled under ``plan``.

    ``conversations_this_year`` counts conversations already opened in the team's current calendar
    year (see :func:`conversations_in_year`). ``year`` only improves the wording ("in 2026"
    instead of "this calendar year"). ``catalogue`` (all the team's plans) lets a refusal name the
    plans that do include the channel or unlimited conversations; without it the reason still
    names this plan's own channels and allowance.
    """
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise PolicyError("channel", f"must be one of {sorted(CHANNELS)}, got {channel!r}")
    verified = _count(verified_reviews, "verified_reviews")
    recent = _count(reviews_last_6_months, "reviews_last_6_months")
    used = _count(conversations_this_year, "conversations_this_year")
    if year is not None and (
        not isinstance(year, int) or isinstance(year, bool) or not 1 <= year <= 9999
    ):
        raise PolicyError("year", f"must be a calendar year, got {year!r}")
    plans = list(catalogue)
    when = f"in {year}" if year is not None else "this calendar year"

    bonus = review_bonus_applies(plan, verified, recent)
    allowance = conversation_allowance(plan, verified, recent)
    remaining = None if allowance is None else max(allowance - used, 0)
    channel_ok = plan.allows_channel(channel)
    has_room = remaining is None or remaining > 0

    def decide(allowed: bool, code: EntitlementCode, reason: str) -> EntitlementDecision:
        return EntitlementDecision(
            allowed=allowed,
            code=code,
            reason=reason,
            channel=channel,
            channel_allowed=channel_ok,
            allowance=allowance,
            used=used,
            remaining=remaining,
            bonus_applies=bonus,
        )

    if not channel_ok:
        return decide(False, "channel_not_in_plan", _channel_refusal(plan, channel, plans))

    if not has_room:
        assert allowance is not None
        if allowance == 0:
            reason = f"Your {plan.name} plan includes no support conversations."
        else:
            every = "it has" if allowance == 1 else f"all {allowance} have"
            extra = f" ({used} recorded)" if used > allowance else ""
            reason = (
                f"Your {plan.name} plan includes {_allowance_words(plan, bonus)}, and "
                f"{every} been used {when}{extra}."
            )
        if plan.review_bonus_conversations > 0 and not bonus:
            reason += _bonus_hint(plan, verified, recent)
        reason += _unlimited_hint(plan, plans)
        return decide(False, "allowance_used_up", reason)

    label = channel.capitalize()
    if allowance is None:
        reason = (
            f"{label} support is included in your {plan.name} plan, with unlimited "
            f"support conversations."
        )
    else:
        assert remaining is not None
        reason = (
            f"{label} support is included in your {plan.name} plan; this request is "
            f"support conversation {used + 1} of {allowance} {when} "
            f"({_allowance_words(plan, bonus)}), leaving {remaining - 1}."
        )
    return decide(True, "ok", reason)
