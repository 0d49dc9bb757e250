"""Work-queue order.

Seed 003 says tickets are "triaged and addressed with the following criteria in mind: urgency,
business hours, support plan, chronological order", with the example that a Standard-plan ticket
requested at 8 a.m. is addressed before a Standard-plan ticket requested at 10 a.m. Seed 002 gives
urgency its scale: severity tiers 1 (production down) to 4 (cosmetic). So the queue sorts by

1. effective tier (1 first),
2. plan rank (higher first; ranks are plan data, :attr:`SupportPlan.rank`, never an enum here),
3. arrival instant (earlier first),
4. ticket id (text comparison; UUIDv7 text sorts by creation, and any total tie-breaker makes the
   order reproducible on every desktop and on the server).

Untriaged tickets. Seed 002's workflow assesses severity only after a coordinator reviews the
request, but a ticket must have a place in the queue from the moment it is submitted. Until then
the customer's stated urgency (same 1-4 scale) stands in, so a "production down" report is not
buried under cosmetic requests while it waits for triage. A ticket with neither sorts as
``untriaged_default`` (tier 4 unless the caller configures otherwise): a customer who did not say
it is urgent is treated as the least urgent, and no guess promotes it over stated emergencies.

At the same effective tier, triaged and untriaged tickets are *not* separated: plan, then arrival,
decide, exactly as the seed lists them. Putting triaged tickets first would let a later request
overtake an earlier one merely because the coordinator reached it first (contradicting the seed's
chronological rule), and would let a workflow state outrank the customer's plan. The assessed tier
replaces the stated urgency once triage happens, so over-stated urgency is corrected there, not
by a penalty in the sort.

Business hours. A ticket that arrives outside business hours is not reordered: it keeps its
arrival instant and simply waits for the next opening; the SLA clock (business time) accounts for
the wait. Reordering by "business arrival" would tie every overnight ticket at the next opening and
lose their real chronological order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from .errors import PolicyError
from .plans import TIERS, SupportPlan

__all__ = [
    "DEFAULT_UNTRIAGED_TIER",
    "QueueKey",
    "arrival_microseconds",
    "effective_tier",
    "queue_key",
]

#: Where a ticket with neither an assessed tier nor a stated urgency sorts (the least urgent tier).
DEFAULT_UNTRIAGED_TIER: int = TIERS[-1]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class QueueKey(NamedTuple):
    """A sort key; ascending order is queue order. A plain tuple underneath (fields for reading).

    ``arrival_us`` is integer microseconds since the Unix epoch (UTC): exact, time-zone free and
    storable in an indexed integer column, so SQL ``ORDER BY`` can reproduce the same order.
    """

    tier: int
    neg_plan_rank: int
    arrival_us: int
    ticket_id: str


def _check_tier(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value not in TIERS:
        raise PolicyError(field, f"must be one of {list(TIERS)}, got {value!r}")
    return value


def effective_tier(
    tier: int | None,
    stated_urgency: int | None,
    *,
    untriaged_default: int = DEFAULT_UNTRIAGED_TIER,
) -> int:
    """The tier a ticket sorts by: the assessed tier, else the stated urgency, else the default.

    Both inputs are validated even when the tier wins, so a corrupt urgency is caught at once
    rather than surfacing if the tier is ever cleared.
    """
    default = _check_tier(untriaged_default, "untriaged_default")
    urgency = None if stated_urgency is None else _check_tier(stated_urgency, "stated_urgency")
    if tier is not None:
        return _check_tier(tier, "tier")
    return urgency if urgency is not None else default


def arrival_microseconds(arrival: datetime) -> int:
    """An aware instant as integer microseconds since the epoch, so zones compare by instant."""
    if not isinstance(arrival, datetime):
        raise PolicyError("arrival", f"must be a datetime, got {type(arrival).__name__}")
    if arrival.tzinfo is None or arrival.utcoffset() is None:
        raise PolicyError("arrival", "must be timezone-aware (a naive time has no instant)")
    return (arrival.astimezone(UTC) - _EPOCH) // _MICROSECOND


def queue_key(
    *,
    tier: int | None,
    stated_urgency: int | None,
    plan_rank: int | SupportPlan,
    arrival: datetime,
    ticket_id: str,
    untriaged_default: int = DEFAULT_UNTRIAGED_TIER,
) -> QueueKey:
    """The queue sort key (seed 003 criteria; see the module docstring for the untriaged rule).

    ``plan_rank`` is the plan's rank or the plan itself; a higher rank is served first.
    """
    rank = plan_rank.rank if isinstance(plan_rank, SupportPlan) else plan_rank
    if not isinstance(rank, int) or isinstance(rank, bool):
        raise PolicyError("plan_rank", f"must be a whole number, got {rank!r}")
    if not isinstance(ticket_id, str) or not ticket_id:
        raise PolicyError("ticket_id", "must be a non-empty string")
    return QueueKey(
        tier=effective_tier(tier, stated_urgency, untriaged_default=untriaged_default),
        neg_plan_rank=-rank,
        arrival_us=arrival_microseconds(arrival),
        ticket_id=ticket_id,
    )
