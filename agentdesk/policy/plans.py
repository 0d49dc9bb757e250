"""Support plans as data.

Plans are configured by a team lead, not baked into code: the seeds name Basic/Free, Standard,
Premium and Enterprise, but a team may call them anything and rank them as it likes. Every rule
that depends on the plan (queue rank, response targets, channels, contact allotment,
conversation allowance) reads it from a :class:`SupportPlan`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .errors import PolicyError

#: Channels a request can arrive through (seed 003).
CHANNELS: frozenset[str] = frozenset({"portal", "chat", "phone", "email"})

#: Severity tiers (seed 002): 1 = production down ... 4 = cosmetic.
TIERS: tuple[int, ...] = (1, 2, 3, 4)


@dataclass(frozen=True)
class ResponseTarget:
    """An initial-response target: either business time, or whole business days.

    "30 minutes" and "4 hours" are counted in business time; "1 day" and "2 days" are business
    days (``BusinessCalendar.add_days``), which keep the time of day: a tier-3 request that
    arrives Tuesday 10:00 is due Wednesday 10:00, not nine open hours later.
    """

    business_time: timedelta | None = None
    business_days: int | None = None

    def __post_init__(self) -> None:
        if (self.business_time is None) == (self.business_days is None):
            raise PolicyError("target", "give exactly one of business_time or business_days")
        if self.business_time is not None and self.business_time <= timedelta(0):
            raise PolicyError("target.business_time", "must be positive")
        if self.business_days is not None and self.business_days <= 0:
            raise PolicyError("target.business_days", "must be a positive number of days")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], field_name: str = "target") -> ResponseTarget:
        """``{"minutes": 30}`` or ``{"business_days": 1}``."""
        if not isinstance(d, Mapping):
            raise PolicyError(field_name, "must be an object like {'minutes': 30}")
        unknown = set(d) - {"minutes", "business_days"}
        if unknown:
            raise PolicyError(field_name, f"unknown key(s): {', '.join(sorted(unknown))}")
        minutes, days = d.get("minutes"), d.get("business_days")
        for key, value in (("minutes", minutes), ("business_days", days)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise PolicyError(f"{field_name}.{key}", "must be a whole number")
        try:
            return cls(
                business_time=timedelta(minutes=minutes) if minutes is not None else None,
                business_days=days,
            )
        except PolicyError as exc:
            sub_field = exc.field.removeprefix("target.")
            raise PolicyError(f"{field_name}.{sub_field}", exc.message) from None

    def to_dict(self) -> dict[str, int]:
        if self.business_time is not None:
            return {"minutes": int(self.business_time.total_seconds() // 60)}
        assert self.business_days is not None
        return {"business_days": self.business_days}


#: The seeds' default targets (seed 002): tier 1 30 min, tier 2 4 h, tier 3 1 day, tier 4 2 days.
DEFAULT_TARGETS: Mapping[int, ResponseTarget] = {
    1: ResponseTarget(business_time=timedelta(minutes=30)),
    2: ResponseTarget(business_time=timedelta(hours=4)),
    3: ResponseTarget(business_days=1),
    4: ResponseTarget(business_days=2),
}


@dataclass(frozen=True)
class SupportPlan:
    """One support plan.

    ``rank``: higher is served first among tickets of equal urgency (seed 003 "Support Plan").
    ``calendar``: the name of the business calendar its clock runs on; ``None`` means the team's
    default calendar (a plan may name a 24x7 calendar).
    ``conversations_per_year``: ``None`` is unlimited (premium plans, seed 000).
    ``review_bonus_conversations``: extra conversations for members with a trustworthy review
    profile (seed 000: 5 more at >= 25 verified and >= 10 in the last 6 months).
    ``contact_allotment``: how many validated support contacts the plan includes (seed 003).
    ``response_targets``: per-tier overrides of :data:`DEFAULT_TARGETS` ("each support plan
    provides an initial response time guarantee").
    """

    key: str
    name: str
    rank: int
    channels: frozenset[str] = frozenset({"portal"})
    contact_allotment: int = 1
    conversations_per_year: int | None = None
    review_bonus_conversations: int = 0
    min_verified_reviews: int = 25
    min_recent_reviews: int = 10
    calendar: str | None = None
    response_targets: Mapping[int, ResponseTarget] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.key or not self.key.strip():
            raise PolicyError("key", "must not be empty")
        if not self.name or not self.name.strip():
            raise PolicyError("name", "must not be empty")
        unknown = set(self.channels) - CHANNELS
        if unknown:
            raise PolicyError("channels", f"unknown channel(s): {', '.join(sorted(unknown))}")
        if self.contact_allotment < 0:
            raise PolicyError("contact_allotment", "must not be negative")
        if self.conversations_per_year is not None and self.conversations_per_year < 0:
            raise PolicyError("conversations_per_year", "must not be negative")
        if self.review_bonus_conversations < 0:
            raise PolicyError("review_bonus_conversations", "must not be negative")
        bad_tiers = set(self.response_targets) - set(TIERS)
        if bad_tiers:
            raise PolicyError("response_targets", f"unknown tier(s): {sorted(bad_tiers)}")

    @property
    def unlimited(self) -> bool:
        return self.conversations_per_year is None

    def target_for(self, tier: int) -> ResponseTarget:
        """The plan's response target for a tier, falling back to the seeds' defaults."""
        if tier not in TIERS:
            raise PolicyError("tier", f"must be one of {list(TIERS)}, got {tier!r}")
        return self.response_targets.get(tier, DEFAULT_TARGETS[tier])

    def allows_channel(self, channel: str) -> bool:
        return channel in self.channels

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SupportPlan:
        """Build a plan from its wire/on-disk form, naming any bad field."""
        if not isinstance(d, Mapping):
            raise PolicyError("plan", "must be an object")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise PolicyError("plan", f"unknown field(s): {', '.join(sorted(unknown))}")
        for req in ("key", "name", "rank"):
            if req not in d:
                raise PolicyError(req, "is required")
        for name in (
            "rank",
            "contact_allotment",
            "review_bonus_conversations",
            "min_verified_reviews",
            "min_recent_reviews",
        ):
            if name in d and (not isinstance(d[name], int) or isinstance(d[name], bool)):
                raise PolicyError(name, "must be a whole number")
        cpy = d.get("conversations_per_year")
        if cpy is not None and (not isinstance(cpy, int) or isinstance(cpy, bool)):
            raise PolicyError(
                "conversations_per_year", "must be a whole number or null (unlimited)"
            )
        channels = d.get("channels", ["portal"])
        if isinstance(channels, str) or not isinstance(channels, Iterable):
            raise PolicyError("channels", "must be a list of channel names")
        targets_in = d.get("response_targets", {}) or {}
        if not isinstance(targets_in, Mapping):
            raise PolicyError("response_targets", "must be an object keyed by tier")
        targets: dict[int, ResponseTarget] = {}
        for k, v in targets_in.items():
            try:
                tier = int(k)
            except (TypeError, ValueError):
                raise PolicyError("response_targets", f"tier {k!r} is not a number") from None
            targets[tier] = ResponseTarget.from_dict(v, f"response_targets.{tier}")
        kwargs = {k: v for k, v in d.items() if k not in ("channels", "response_targets")}
        return cls(channels=frozenset(channels), response_targets=targets, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "rank": self.rank,
            "channels": sorted(self.channels),
            "contact_allotment": self.contact_allotment,
            "conversations_per_year": self.conversations_per_year,
            "review_bonus_conversations": self.review_bonus_conversations,
            "min_verified_reviews": self.min_verified_reviews,
            "min_recent_reviews": self.min_recent_reviews,
            "calendar": self.calendar,
            "response_targets": {
                str(t): r.to_dict() for t, r in sorted(self.response_targets.items())
            },
        }


def seed_plans() -> list[SupportPlan]:
    """The four plans the seeds describe, as demo/default data (not used by any rule)."""
    return [
        SupportPlan(
            key="basic",
            name="Basic/Free",
            rank=0,
            channels=frozenset({"portal"}),
            contact_allotment=1,
            conversations_per_year=5,
            review_bonus_conversations=5,
        ),
        SupportPlan(
            key="standard",
            name="Standard",
            rank=1,
            channels=frozenset({"portal"}),
            contact_allotment=2,
            conversations_per_year=None,
        ),
        SupportPlan(
            key="premium",
            name="Premium",
            rank=2,
            channels=frozenset({"portal", "chat"}),
            contact_allotment=4,
            conversations_per_year=None,
            response_targets={
                1: ResponseTarget(business_time=timedelta(minutes=30)),
                2: ResponseTarget(business_time=timedelta(hours=2)),
            },
        ),
        SupportPlan(
            key="enterprise",
            name="Enterprise",
            rank=3,
            channels=frozenset({"portal", "chat", "phone"}),
            contact_allotment=8,
            conversations_per_year=None,
            calendar="24x7",
            response_targets={
                1: ResponseTarget(business_time=timedelta(minutes=15)),
                2: ResponseTarget(business_time=timedelta(hours=1)),
            },
        ),
    ]


def seed_calendars() -> dict[str, tuple[str, dict[str, Any]]]:
    """The seeds' business calendars, in ``BusinessCalendar.from_dict`` form, by key.

    ``office``: Mon-Fri 08:00-17:00 America/New_York with US holidays (seed 002); ``pacific``:
    Mon-Fri 06:00-17:00 America/Los_Angeles (seed 003); ``24x7`` for plans that never close.
    """
    weekdays = ("mon", "tue", "wed", "thu", "fri")
    closed: dict[str, list[list[str]]] = {"sat": [], "sun": []}
    return {
        "office": (
            "New York office hours",
            {
                "tz": "America/New_York",
                "hours": {**{d: [["08:00", "17:00"]] for d in weekdays}, **closed},
                "holidays": [],
                "overrides": {},
                "holiday_country": "US",
            },
        ),
        "pacific": (
            "Pacific support hours",
            {
                "tz": "America/Los_Angeles",
                "hours": {**{d: [["06:00", "17:00"]] for d in weekdays}, **closed},
                "holidays": [],
                "overrides": {},
            },
        ),
        "24x7": (
            "24x7",
            {
                "tz": "UTC",
                "hours": {d: [["00:00", "24:00"]] for d in (*weekdays, "sat", "sun")},
                "holidays": [],
                "overrides": {},
            },
        ),
    }


#: Which seed calendar each seed plan runs on: free and Standard members get the office's
#: hours, Premium seed 003's longer Pacific day, Enterprise the 24x7 calendar.
SEED_PLAN_CALENDARS: Mapping[str, str] = {
    "basic": "office",
    "standard": "office",
    "premium": "pacific",
    "enterprise": "24x7",
}
