"""What a customer is told at the door, in the seeds' own words (seed 002): the urgency tiers,
the response target per tier, a request's reference, and the business-hours notice.

Pure: shared by the portal, the intake API, the notification templates and the desktop's
"New ticket" dialog, so every place says the same thing.
"""

from __future__ import annotations

from datetime import datetime

from .calendar import BusinessCalendar
from .plans import ResponseTarget, SupportPlan

#: Seed 002's tiers, as a customer would pick one: what is happening, not a number.
TIER_WORDS: dict[int, tuple[str, str]] = {
    1: (
        "Production down",
        "The production website has significant issues that critically impact business "
        "operations or sales.",
    ),
    2: (
        "Production impaired",
        "The production website has issues that impact its performance but do not dramatically "
        "impact business operations or sales.",
    ),
    3: (
        "Known bug, low impact",
        "Known bugs or malfunctions in a low-impact area of the website (for example how-to "
        "questions).",
    ),
    4: (
        "Cosmetic",
        "A purely cosmetic or grammatical error, or a request not related to the live website.",
    ),
}


def target_words(target: ResponseTarget) -> str:
    """``30-minute response``, ``4-hour response``, ``1 business day`` ... as seed 002 says it."""
    if target.business_days is not None:
        days = target.business_days
        return f"{days} business day{'s' if days != 1 else ''}"
    assert target.business_time is not None
    minutes = int(target.business_time.total_seconds() // 60)
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} business hour{'s' if hours != 1 else ''}"
    return f"{minutes} business minutes"


def expectation(plan: SupportPlan, tier: int) -> str:
    """What the customer can expect for ``tier`` on ``plan``: the response target, never a
    resolution promise (seed 002: resolution time varies)."""
    label = TIER_WORDS[tier][0]
    return (
        f"For a tier {tier} request ({label.lower()}) on the {plan.name} plan, our goal is a "
        f"first response within {target_words(plan.target_for(tier))}. Resolution time "
        f"depends on the request; we will keep you posted."
    )


def reference(ticket_id: str) -> str:
    """A short reference a customer can quote: the random tail of the ticket's UUIDv7 (its head
    is a timestamp, shared by requests made in the same millisecond)."""
    tail = ticket_id.replace("-", "").upper()[-8:]
    return f"AD-{tail[:4]}-{tail[4:]}"


def hours_notice(calendar: BusinessCalendar, at: datetime, hours_text: str) -> str | None:
    """Seed 002: outside business hours no response is guaranteed until they resume. ``None``
    while the team is open."""
    if calendar.is_open(at):
        return None
    resumes = calendar.next_open(at).astimezone(calendar.zone)
    return (
        f"Your request arrived outside our support hours ({hours_text}). We can not "
        f"guarantee a response until business hours resume on "
        f"{resumes:%A %d %B at %H:%M} ({calendar.tz}), unless your agreement says otherwise."
    )


def hours_text(calendar: BusinessCalendar) -> str:
    """``Mon-Fri 08:00-17:00 America/New_York`` style summary of a calendar's weekly hours."""
    data = calendar.to_dict()
    hours: dict[str, list[list[str]]] = data.get("hours", {})
    days = [d for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun") if hours.get(d)]
    if not days:
        return f"closed ({calendar.tz})"
    spans = {tuple(tuple(w) for w in hours[d]) for d in days}
    window = ", ".join(f"{a}-{b}" for a, b in hours[days[0]]) if len(spans) == 1 else "varies"
    names = [d.capitalize() for d in days]
    span = f"{names[0]}-{names[-1]}" if len(names) > 2 else " and ".join(names)
    return f"{span} {window} {calendar.tz}"
