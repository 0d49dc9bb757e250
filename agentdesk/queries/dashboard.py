"""The team lead's dashboard: figures over the replica (or the server's database), Qt-free.

Every figure is a SQL aggregate over indexed columns, never a Python loop over every ticket:

* SLA states are range comparisons on the instants each ticket stores (``sla_due_at``,
  ``sla_risk_at``, kept current by the mutators with :func:`agentdesk.policy.sla.
  response_instants`): ``at < risk`` on track, ``risk <= at <= due`` at risk, ``at > due``
  breached, no instant while waiting on the customer (paused).
* Open tickets by tier, level and plan are one ``GROUP BY`` over the open tickets.
* Ageing buckets turn "business days old" into arrival thresholds (found once per refresh on
  the team calendar), so each bucket is an arrival range.
* Loops are bounded by what is shown: first responses inside the chosen range (their business
  time needs the calendar), the ten tickets next to breach, organisations with prepaid hours.

Every figure carries a :class:`TicketFilter`: the exact WHERE clauses that select the tickets
behind it. The desktop's queue applies the same clauses when a figure is clicked, so the rows
it lists are the rows counted, by construction.

The 1-on-1 block (billed hours per week, prepaid hours left, what expires in 30 days) reads
and replays each customer's ledger through :mod:`.balances` and :mod:`.ledger` (the timer's
rule); the allowance figures count conversations with :mod:`.conversations`' grouped form.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import Enum, StrEnum
from math import ceil
from typing import Any, Final, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    case,
    false,
    func,
    select,
    true,
    type_coerce,
)
from sqlalchemy.orm import Session

from ..models import (
    OPEN_STATUS_ORDER,
    Calendar,
    HourBlock,
    Level,
    Organisation,
    Plan,
    Tenant,
    Ticket,
    TicketStatus,
    TimeEntry,
    User,
    open_ticket,
)
from ..policy import billing
from ..policy.calendar import BusinessCalendar
from ..policy.entitlements import calendar_year_bounds, calendar_year_of, conversation_allowance
from ..policy.errors import PolicyError
from ..policy.plans import SupportPlan, seed_calendars
from . import balances, ledger
from .conversations import conversations_in_year_by_organisation
from .raw import Uuids, driver_rows, instant, raw
from .ticket_indexes import ThroughOpenIndex, ThroughOpenOrganisationIndex, through

T = TypeVar("T")

OPEN: tuple[TicketStatus, ...] = OPEN_STATUS_ORDER
#: Ageing buckets of the open queue, in business days of the team calendar.
AGE_EDGES: tuple[int, ...] = (1, 2, 5)
AGE_LABELS: tuple[str, ...] = ("< 1 day", "1-2 days", "2-5 days", "> 5 days")
BREACHING_SOON = 10
#: An organisation is "near" its yearly allowance from this share on (4 of 5, 8 of 10).
NEAR_SHARE = (4, 5)
RESOLUTION_WINDOW = timedelta(days=14)
EXPIRY_WINDOW = timedelta(days=30)
_DAY_SLACK = timedelta(days=2)


class SlaBucket(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    PAUSED = "paused"


SLA_LABELS = {
    SlaBucket.ON_TRACK: "On track",
    SlaBucket.AT_RISK: "At risk",
    SlaBucket.BREACHED: "Breached",
    SlaBucket.PAUSED: "Paused (waiting on customer)",
}


@dataclass(frozen=True)
class TicketFilter:
    """The tickets behind a figure, as WHERE clauses over ``tickets`` (see :meth:`clauses`).

    Instants (``at``, arrival and response ranges) are frozen when the figure was computed, so
    clicking a figure lists exactly what was counted at that instant; ``label`` is what the
    queue shows in its removable filter chip.
    """

    label: str
    open_only: bool = True
    statuses: tuple[TicketStatus, ...] = ()
    tier: int | None = None
    untriaged: bool = False
    #: The urgency the SLA clock runs on (the assessed tier, else the stated urgency).
    urgency: int | None = None
    level: Level | None = None
    plan_id: uuid.UUID | None = None
    organisation_ids: tuple[uuid.UUID, ...] = ()
    assignee_id: uuid.UUID | None = None
    unassigned: bool = False
    sla: SlaBucket | None = None
    at: datetime | None = None
    arrived_from: datetime | None = None
    arrived_before: datetime | None = None
    responded_from: datetime | None = None
    responded_before: datetime | None = None
    met: bool | None = None
    exclude_redirected: bool = False
    ticket_ids: tuple[uuid.UUID, ...] = ()

    def clauses(self) -> list[ColumnElement[bool]]:
        t = Ticket.__table__.c
        out: list[ColumnElement[bool]] = [t.deleted == false()]
        if self.open_only:
            out.append(t.status.in_(OPEN))
        if self.statuses:
            out.append(t.status.in_(self.statuses))
        if self.exclude_redirected:
            out.append(t.status != TicketStatus.REDIRECTED)
        if self.untriaged:
            out.append(t.tier.is_(None))
        elif self.tier is not None:
            out.append(t.tier == self.tier)
        if self.urgency is not None:
            out.append(t.urgency == self.urgency)
        if self.level is not None:
            out.append(t.level == self.level)
        if self.plan_id is not None:
            # Not correlated: the queue's own query may join organisations around it.
            out.append(
                t.organisation_id.in_(
                    select(Organisation.id)
                    .where(Organisation.plan_id == self.plan_id)
                    .correlate(None)
                )
            )
        if self.organisation_ids:
            out.append(t.organisation_id.in_(self.organisation_ids))
        if self.unassigned:
            out.append(t.assignee_id.is_(None))
        elif self.assignee_id is not None:
            out.append(t.assignee_id == self.assignee_id)
        if self.sla is not None:
            out.extend(sla_clauses(self.sla, self.at or datetime.now(UTC)))
        if self.arrived_from is not None:
            out.append(t.arrived_at >= self.arrived_from)
        if self.arrived_before is not None:
            out.append(t.arrived_at < self.arrived_before)
        if self.responded_from is not None:
            out.append(t.first_response_at >= self.responded_from)
        if self.responded_before is not None:
            out.append(t.first_response_at < self.responded_before)
        if self.met is not None:
            out.append(t.sla_due_at.is_not(None))
            met = t.first_response_at <= t.sla_due_at
            out.append(met if self.met else ~met)
        if self.ticket_ids:
            out.append(t.id.in_(self.ticket_ids))
        return out


def sla_clauses(
    bucket: SlaBucket, at: datetime, t: Any = Ticket.__table__.c
) -> list[ColumnElement[bool]]:
    """An SLA state at ``at`` as ranges on the stored instants (unanswered tickets only);
    ``t``: the columns of another FROM for the tickets table."""
    base = [t.first_response_at.is_(None)]
    if bucket is SlaBucket.PAUSED:
        return [*base, t.sla_due_at.is_(None)]
    if bucket is SlaBucket.BREACHED:
        return [*base, t.sla_due_at < at]
    if bucket is SlaBucket.AT_RISK:
        return [*base, t.sla_risk_at <= at, t.sla_due_at >= at]
    return [*base, t.sla_risk_at > at]


@dataclass(frozen=True)
class Count:
    label: str
    value: int
    filter: TicketFilter
    oldest: datetime | None = None


@dataclass(frozen=True)
class OpenTickets:
    total: Count
    by_tier: tuple[Count, ...]  # untriaged first, then tiers 1-4
    by_plan: tuple[Count, ...]
    by_level: tuple[Count, ...]


@dataclass(frozen=True)
class SoonRow:
    ticket_id: uuid.UUID
    subject: str
    organisation: str
    urgency: int
    due: datetime
    business_left: timedelta
    filter: TicketFilter


@dataclass(frozen=True)
class ResponseStats:
    """First responses in the range for one group: business time to respond (nearest-rank
    median and 90th percentile) and how many met their target."""

    label: str
    responded: int
    median: timedelta | None
    p90: timedelta | None
    met: int
    filter: TicketFilter

    @property
    def met_share(self) -> float | None:
        return None if not self.responded else self.met / self.responded


@dataclass(frozen=True)
class FirstResponse:
    start: datetime
    end: datetime
    team: ResponseStats
    by_tier: tuple[ResponseStats, ...]
    by_plan: tuple[ResponseStats, ...]
    by_agent: tuple[ResponseStats, ...]


@dataclass(frozen=True)
class AgentLoad:
    user_id: uuid.UUID
    name: str
    open: Count
    at_risk: Count
    breached: Count


@dataclass(frozen=True)
class Ageing:
    buckets: tuple[Count, ...]
    resolved_last_14_days: int
    #: Open tickets / the daily resolution rate of the last 14 days (None: nothing resolved).
    days_to_clear: float | None


@dataclass(frozen=True)
class AllowanceRow:
    organisation_id: uuid.UUID
    name: str
    plan: str
    used: int
    allowance: int
    over: bool
    filter: TicketFilter


@dataclass(frozen=True)
class OneOnOneRow:
    organisation_id: uuid.UUID
    name: str
    #: (Monday of the week, billed minutes) for every week of the range.
    weekly_billed: tuple[tuple[date, int], ...]
    prepaid_left_minutes: int
    #: (expiry instant, minutes that would be forfeited) within the next 30 days.
    expiring: tuple[tuple[datetime, int], ...]
    filter: TicketFilter


@dataclass(frozen=True)
class Dashboard:
    at: datetime
    start: datetime
    end: datetime
    open: OpenTickets | None = None
    sla: tuple[Count, ...] = ()
    breaching_soon: tuple[SoonRow, ...] = ()
    first_response: FirstResponse | None = None
    load: tuple[AgentLoad, ...] = ()
    unassigned: Count | None = None
    untriaged: Count | None = None
    ageing: Ageing | None = None
    redirected: Count | None = None
    allowances: tuple[AllowanceRow, ...] = ()
    one_on_one: tuple[OneOnOneRow, ...] = ()
    weeks: tuple[date, ...] = field(default=())


class Section(StrEnum):
    """Parts of the dashboard recomputed on their own when a pull touches their tables."""

    TICKETS = "tickets"
    ALLOWANCES = "allowances"
    ONE_ON_ONE = "one_on_one"


#: Which synced tables each section reads (a pull touching none of them leaves it alone).
SECTION_TABLES: dict[Section, frozenset[str]] = {
    Section.TICKETS: frozenset(
        {"tickets", "waiting_periods", "organisations", "plans", "calendars", "users"}
    ),
    Section.ALLOWANCES: frozenset({"tickets", "organisations", "plans"}),
    Section.ONE_ON_ONE: frozenset({"hour_blocks", "time_entries", "organisations"}),
}


# ------------------------------------------------------------------------------- context


@dataclass
class Context:
    session: Session
    at: datetime
    tz: str
    plans: dict[uuid.UUID, tuple[Plan, SupportPlan, BusinessCalendar]]
    team_calendar: BusinessCalendar
    org_plan: dict[uuid.UUID, uuid.UUID]
    org_name: dict[uuid.UUID, str]
    #: (verified reviews, reviews in the last six months) per organisation (seed 000's bonus).
    org_reviews: dict[uuid.UUID, tuple[int, int]]
    #: Driver values of organisation and people ids -> ``uuid.UUID``, each converted once
    #: (kept from one refresh to the next by :mod:`.dashboard_live`).
    uuids: Uuids = field(default_factory=Uuids)

    def plan_of(self, org: Any) -> uuid.UUID | None:
        """The live plan of an organisation whose id is given as the driver returns it (None
        for none, a deleted organisation's, or no organisation)."""
        return None if org is None else self.org_plan.get(self.uuids[org])


def _zone_name(session: Session, tenant_id: uuid.UUID | None) -> str:
    stmt = select(Tenant.timezone)
    if tenant_id is not None:
        stmt = stmt.where(Tenant.id == tenant_id)
    tz = session.scalar(stmt.limit(1)) or "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return tz


def team_calendar() -> BusinessCalendar:
    """Seed 002's office hours: plans without a calendar and the ageing buckets count in it."""
    return BusinessCalendar.from_dict(seed_calendars()["office"][1])


def context(session: Session, at: datetime, tenant_id: uuid.UUID | None) -> Context:
    default = team_calendar()
    calendars: dict[uuid.UUID, BusinessCalendar] = {}
    for row in session.scalars(select(Calendar).where(Calendar.deleted.is_(False))):
        try:
            calendars[row.id] = BusinessCalendar.from_dict(row.data)
        except PolicyError:
            continue
    plans: dict[uuid.UUID, tuple[Plan, SupportPlan, BusinessCalendar]] = {}
    for plan in session.scalars(select(Plan).where(Plan.deleted.is_(False))):
        try:
            policy = plan.to_policy()
        except PolicyError:
            continue
        cal = calendars.get(plan.calendar_id) if plan.calendar_id else None
        plans[plan.id] = (plan, policy, cal or default)
    org_plan: dict[uuid.UUID, uuid.UUID] = {}
    org_name: dict[uuid.UUID, str] = {}
    org_reviews: dict[uuid.UUID, tuple[int, int]] = {}
    o = Organisation
    for oid, pid, name, verified, recent in session.execute(
        select(o.id, o.plan_id, o.name, o.verified_reviews, o.recent_reviews).where(
            o.deleted.is_(False)
        )
    ):
        org_plan[oid], org_name[oid], org_reviews[oid] = pid, name, (verified, recent)
    tz = _zone_name(session, tenant_id)
    return Context(session, at, tz, plans, default, org_plan, org_name, org_reviews)


#: What :func:`context` reads besides the team's zone: a change to any of these rows changes
#: some figure's lookups (every change to a synced row is stamped with a new version).
LOOKUP_MODELS = (Calendar, Plan, Organisation, User)


def lookups_signature(session: Session, tenant_id: uuid.UUID | None) -> tuple[Any, ...]:
    """How many rows :func:`context` and the figures' names read, and their newest version:
    equal signatures, equal lookups (the rows change only by pulls, which stamp versions)."""
    out: list[Any] = [_zone_name(session, tenant_id)]
    for model in LOOKUP_MODELS:
        out += session.execute(select(func.count(), func.max(model.version))).one()
    return tuple(out)


# ------------------------------------------------------------------------------- figures


def compute(
    session: Session,
    at: datetime,
    start: datetime,
    end: datetime,
    *,
    sections: Iterable[Section] = tuple(Section),
    previous: Dashboard | None = None,
    tenant_id: uuid.UUID | None = None,
) -> Dashboard:
    """The dashboard at ``at``, first responses and billed weeks over ``[start, end)``.

    Only ``sections`` are computed; the others are taken from ``previous`` (an incremental
    refresh after a pull that touched only some tables)."""
    wanted = set(sections)
    ctx = context(session, at, tenant_id)
    parts: dict[str, Any] = {}
    if previous is not None:
        parts = {
            name: getattr(previous, name)
            for name in (
                "open",
                "sla",
                "breaching_soon",
                "first_response",
                "load",
                "unassigned",
                "untriaged",
                "ageing",
                "redirected",
                "allowances",
                "one_on_one",
                "weeks",
            )
        }
    if Section.TICKETS in wanted or previous is None:
        groups = response_groups(ctx, response_rows(session, start, end))
        parts.update(ticket_figures(ctx, open_queue(ctx), groups, start, end))
    if Section.ALLOWANCES in wanted or previous is None:
        parts["allowances"] = allowances(ctx)
    if Section.ONE_ON_ONE in wanted or previous is None:
        parts["weeks"], parts["one_on_one"] = one_on_one(ctx, start, end)
    return Dashboard(at=at, start=start, end=end, **parts)


def ticket_figures(
    ctx: Context, queue: OpenQueue, groups: ResponseGroups, start: datetime, end: datetime
) -> dict[str, Any]:
    """The ticket section's figures (:class:`Dashboard` fields) from the open queue's
    aggregates and the range's first responses by group, plus the small reads the section
    makes afresh each time (the next to breach, the resolution rate, redirected requests)."""
    opened = open_tickets(ctx, queue)
    unassigned, untriaged = queue_health(ctx, queue)
    return {
        "open": opened,
        "sla": sla_now(ctx, queue),
        "breaching_soon": breaching_soon(ctx),
        "first_response": first_response_of(ctx, start, end, groups),
        "load": agent_load(ctx, queue),
        "unassigned": unassigned,
        "untriaged": untriaged,
        "ageing": ageing(ctx, opened.total.value, queue),
        "redirected": redirected(ctx),
    }


def count(session: Session, flt: TicketFilter) -> int:
    """How many tickets a filter selects (what a click-through lists)."""
    return int(session.scalar(select(func.count()).select_from(Ticket).where(*flt.clauses())) or 0)


def _base(label: str, **kw: Any) -> TicketFilter:
    return TicketFilter(label=label, **kw)


@dataclass(frozen=True)
class OpenQueue:
    """Every aggregate of the open queue, from one pass over it (see :func:`open_queue`)."""

    at: datetime
    total: int
    by_tier: dict[int | None, int]
    by_level: dict[Level, int]
    by_plan: dict[uuid.UUID | None, int]
    #: In :class:`SlaBucket` order, unanswered tickets only.
    sla: tuple[int, ...]
    #: Per :data:`AGE_LABELS` bucket, and the arrival bounds each bucket counts.
    ages: tuple[int, ...]
    age_bounds: tuple[tuple[datetime | None, datetime | None], ...]
    #: (assignee, open, oldest arrival, at risk, breached), assigned tickets only, by assignee.
    agents: tuple[tuple[uuid.UUID, int, datetime | None, int, int], ...]
    unassigned: tuple[int, datetime | None]
    untriaged: tuple[int, datetime | None]


def _sum_of(cond: ColumnElement[bool]) -> Any:
    """How many rows meet ``cond`` (``COUNT(*) FILTER (WHERE ...)``: SQLite 3.30+ and
    PostgreSQL; cheaper per row than a ``SUM(CASE ...)``)."""
    return func.count().filter(cond)


def age_bounds(ctx: Context) -> tuple[tuple[datetime | None, datetime | None], ...]:
    """Arrival ranges of the ageing buckets: "younger than d business days" is "arrived after
    the latest arrival that is d business days old"."""
    edges = [business_age_threshold(ctx.team_calendar, ctx.at, d) for d in AGE_EDGES]
    # Younger than d days: arrived after edge_d. Bucket i: (edge_{i}, edge_{i-1}] ages.
    bounds: list[tuple[datetime | None, datetime | None]] = []
    newer: datetime | None = None
    for edge in edges:
        bounds.append((edge + timedelta(microseconds=1), newer))  # arrived after edge
        newer = edge + timedelta(microseconds=1)
    bounds.append((None, newer))
    return tuple(bounds)


def _age_conditions(
    bounds: tuple[tuple[datetime | None, datetime | None], ...], t: Any = Ticket.__table__.c
) -> list[ColumnElement[bool]]:
    conds = []
    for lo, hi in bounds:
        parts: list[ColumnElement[bool]] = [true()]
        if lo is not None:
            parts.append(t.arrived_at >= lo)
        if hi is not None:
            parts.append(t.arrived_at < hi)
        conds.append(and_(*parts))
    return conds


#: The columns :func:`open_queue` reads, all in ``ix_tickets_open``.
_QUEUE_COLUMNS = (
    "assignee_id",
    "tier",
    "level",
    "status",
    "arrived_at",
    "first_response_at",
    "sla_due_at",
    "sla_risk_at",
    "deleted",
)
_TIERS: tuple[int | None, ...] = (None, 1, 2, 3, 4)


class _Everyone(Enum):
    EVERYONE = "everyone"


#: :func:`open_queue`'s "every assignee's tickets" (not one assignee's, nor the unassigned).
EVERYONE: Final = _Everyone.EVERYONE
_LEVELS = {lv.value: lv for lv in Level}


def open_queue(
    ctx: Context,
    *,
    bounds: tuple[tuple[datetime | None, datetime | None], ...] | None = None,
    ids: Sequence[Any] | None = None,
    assignee: uuid.UUID | Literal[_Everyone.EVERYONE] | None = EVERYONE,
) -> OpenQueue:
    """The open queue's figures in two index-only scans and no sort.

    ``ix_tickets_open`` in its own order, grouped by (assignee, tier, level): counts, oldest
    arrivals and every per-ticket condition as a filtered count (SLA states at ``ctx.at``, age
    buckets, untriaged); tiers, levels and assignees are the groups' keys. Then
    ``ix_tickets_open_org``, grouped by organisation, each organisation's count added to its
    plan's (``ctx``'s lookups, read in the same snapshot): the plan once per organisation, not
    a join per ticket (a third of the scan's time; docs/performance.md). Tickets by id
    (a thousand at most) are joined to their organisations in the one read.

    ``ids`` (driver values of ticket ids): the same figures over those tickets only, found by
    primary key, which is what an incremental refresh subtracts and adds
    (:mod:`.dashboard_live`). ``assignee``: one assignee's tickets only (a ``uuid.UUID``, or
    None for the unassigned), and no plan figures (``by_plan`` all zero)."""
    at = ctx.at
    t: Any
    if ids is None:
        t = through(ThroughOpenIndex, *_QUEUE_COLUMNS)
        chosen: list[ColumnElement[bool]] = [open_ticket(t)]
    else:
        # The same tickets, but found by primary key: the planner (no statistics) would
        # rather scan the status index, so the status term is kept away from it.
        t = Ticket.__table__
        chosen = [
            t.c.deleted == false(),
            func.coalesce(t.c.status, "").in_(OPEN),
            t.c.id.in_(ids),
        ]
    c = t.c
    if assignee is not EVERYONE:
        chosen.append(c.assignee_id.is_(None) if assignee is None else c.assignee_id == assignee)
    sla_conds = [and_(*sla_clauses(b, at, c)) for b in SlaBucket]
    if bounds is None:
        bounds = age_bounds(ctx)
    age_conds = _age_conditions(bounds, c)
    is_new = c.status == TicketStatus.NEW
    # A few tickets by primary key: their plans come in the same read, an organisation look-up
    # each; the whole queue has its own scan for them (see above).
    plan_ids = list(ctx.plans) if ids is not None else []
    source, plan_conds = t, []
    if plan_ids:
        o = Organisation.__table__
        source = t.join(o, o.c.id == c.organisation_id, isouter=True)
        plan_conds = [and_(o.c.plan_id == pid, o.c.deleted == false()) for pid in plan_ids]
    stmt = (
        select(
            raw(c.assignee_id),
            c.tier,
            type_coerce(c.level, String),
            func.count(),
            type_coerce(func.min(c.arrived_at), String),
            _sum_of(is_new),
            type_coerce(func.min(case((is_new, c.arrived_at), else_=None)), String),
            *(_sum_of(cond) for cond in (*sla_conds, *age_conds, *plan_conds)),
        )
        .select_from(source)
        .where(*chosen)
        .group_by(c.assignee_id, c.tier, c.level)
    )
    n_sla, n_age = len(sla_conds), len(age_conds)
    total = 0
    sums = [0] * (n_sla + n_age + len(plan_conds))
    by_tier: dict[int | None, int] = dict.fromkeys(_TIERS, 0)
    by_level: dict[Level, int] = dict.fromkeys(Level, 0)
    # Per assignee: [open, oldest arrival, at risk, breached]; None is the unassigned.
    people: dict[Any, list[Any]] = {}
    new_count, new_oldest = 0, None
    risk_i, late_i = (
        list(SlaBucket).index(SlaBucket.AT_RISK),
        list(SlaBucket).index(SlaBucket.BREACHED),
    )
    rows = driver_rows(ctx.session, stmt)
    for who, tier, level, n, oldest_raw, n_new, new_raw, *figures in rows:
        total += n
        sums = [a + int(b) for a, b in zip(sums, figures, strict=True)]
        if tier in by_tier:
            by_tier[tier] += n
        if level in _LEVELS:
            by_level[_LEVELS[level]] += n
        oldest = instant(oldest_raw) if oldest_raw is not None else None
        person = people.get(who)
        if person is None:
            people[who] = [n, oldest, int(figures[risk_i]), int(figures[late_i])]
        else:
            person[0] += n
            if oldest is not None and (person[1] is None or oldest < person[1]):
                person[1] = oldest
            person[2] += int(figures[risk_i])
            person[3] += int(figures[late_i])
        new_count += int(n_new)
        if new_raw is not None:
            first_new = instant(new_raw)
            new_oldest = first_new if new_oldest is None else min(new_oldest, first_new)
    users = ctx.uuids
    agents = [(users[k], *v) for k, v in people.items() if k is not None]
    unassigned = people.get(None)
    by_plan: dict[uuid.UUID | None, int]
    if ids is not None:
        by_plan = dict(zip(plan_ids, sums[n_sla + n_age :], strict=True))
    elif assignee is EVERYONE:
        by_plan = _open_by_plan(ctx)
    else:
        by_plan = dict.fromkeys(ctx.plans, 0)  # one assignee's: asked for its groups only
    return OpenQueue(
        at,
        total,
        by_tier,
        by_level,
        by_plan,
        tuple(sums[:n_sla]),
        tuple(sums[n_sla : n_sla + n_age]),
        bounds,
        tuple(sorted(agents)),
        (0, None) if unassigned is None else (unassigned[0], unassigned[1]),
        (new_count, new_oldest),
    )


def _open_by_plan(ctx: Context) -> dict[uuid.UUID | None, int]:
    """Open tickets per live plan, through their organisation (a deleted organisation's, or
    one on a deleted plan, count in none): one pass of ``ix_tickets_open_org`` (see
    :func:`open_queue`)."""
    t = through(ThroughOpenOrganisationIndex, "organisation_id", "status", "deleted")
    stmt = (
        select(raw(t.c.organisation_id), func.count())
        .select_from(t)
        .where(open_ticket(t))
        .group_by(t.c.organisation_id)
    )
    by_plan: dict[uuid.UUID | None, int] = dict.fromkeys(ctx.plans, 0)
    for org, n in driver_rows(ctx.session, stmt):
        if (plan := ctx.plan_of(org)) in by_plan:
            by_plan[plan] += n
    return by_plan


def open_tickets(ctx: Context, queue: OpenQueue | None = None) -> OpenTickets:
    q = queue or open_queue(ctx)
    by_tier = [Count("Untriaged", q.by_tier.get(None, 0), _base("Open, untriaged", untriaged=True))]
    by_tier += [
        Count(f"Tier {k}", q.by_tier.get(k, 0), _base(f"Open, tier {k}", tier=k))
        for k in (1, 2, 3, 4)
    ]
    by_plan = []
    ordered = sorted(ctx.plans.values(), key=lambda p: (-p[0].rank, p[0].name))
    for plan, _policy, _cal in ordered:
        by_plan.append(
            Count(
                plan.name,
                q.by_plan.get(plan.id, 0),
                _base(f"Open, plan {plan.name}", plan_id=plan.id),
            )
        )
    by_level = [
        Count(
            f"Level {lv.value[1]}",
            q.by_level.get(lv, 0),
            _base(f"Open, Level {lv.value[1]}", level=lv),
        )
        for lv in Level
    ]
    return OpenTickets(
        Count("Open", q.total, _base("Open")), tuple(by_tier), tuple(by_plan), tuple(by_level)
    )


def sla_now(ctx: Context, queue: OpenQueue | None = None) -> tuple[Count, ...]:
    """Unanswered open tickets by first-response SLA state at ``ctx.at`` (ranges on the
    stored instants, counted in :func:`open_queue`'s pass)."""
    q = queue or open_queue(ctx)
    return tuple(
        Count(SLA_LABELS[b], n, _base(f"SLA {SLA_LABELS[b].lower()}", sla=b, at=ctx.at))
        for b, n in zip(SlaBucket, q.sla, strict=True)
    )


def breaching_soon(ctx: Context, limit: int = BREACHING_SOON) -> tuple[SoonRow, ...]:
    """The next unanswered tickets to breach, with business time left on their calendar.

    One read per open status: ``ix_tickets_sla`` holds each status's unanswered tickets in
    ``(sla_due_at, id)`` order, so each read stops after ``limit`` entries. A single read with
    ``status IN (...)`` sorted every unanswered ticket due later (thousands) and read each row
    for its subject first."""
    t = Ticket.__table__.c
    found: list[Any] = []
    for status in OPEN:
        found += ctx.session.execute(
            select(t.sla_due_at, t.id, t.subject, t.organisation_id, t.urgency)
            .where(
                t.first_response_at.is_(None),
                t.status == status,
                t.sla_due_at >= ctx.at,
                t.deleted == false(),
            )
            .order_by(t.sla_due_at, t.id)
            .limit(limit)
        ).all()
    found.sort(key=lambda r: (r[0], r[1]))
    out = []
    for due, tid, subject, org_id, urgency in found[:limit]:
        plan = ctx.plans.get(ctx.org_plan.get(org_id) or uuid.UUID(int=0))
        cal = plan[2] if plan else ctx.team_calendar
        out.append(
            SoonRow(
                tid,
                subject,
                ctx.org_name.get(org_id, ""),
                urgency,
                due,
                cal.between(ctx.at, due),
                _base(f"Ticket: {subject[:40]}", ticket_ids=(tid,)),
            )
        )
    return tuple(out)


def as_uuid(text: Any) -> uuid.UUID:
    """A UUID read as text: SQLite stores 32 hex digits, PostgreSQL the canonical form."""
    return text if isinstance(text, uuid.UUID) else uuid.UUID(str(text))


def nearest_rank(values: Sequence[T], share: float) -> T | None:
    """The nearest-rank percentile (the smallest value with ``share`` of values at or below)."""
    if not values:
        return None
    ordered = sorted(values)  # type: ignore[type-var]
    return ordered[max(0, ceil(share * len(ordered)) - 1)]


def _seconds(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


#: Per group of first responses (``("team", None)``, ``("tier", urgency)``, ``("plan", id)``,
#: ``("agent", id)``): the business seconds each response took, sorted, and how many met.
ResponseGroups = dict[tuple[str, Any], tuple[list[int], int]]
#: One response as :func:`response_rows` reads it: business seconds, target met (0/1),
#: urgency, organisation and assignee (driver values), and with ``ids`` the ticket id last.
ResponseRow = tuple[Any, ...]


def response_rows(
    session: Session, start: datetime, end: datetime, ids: Sequence[Any] | None = None
) -> list[ResponseRow]:
    """First responses given in ``[start, end)`` (of ``ids`` only, when given, with each
    ticket's id): a range of ``ix_tickets_sla``, index-only (it holds every column read here,
    migration 0012), read as the driver returns it (a month can hold tens of thousands)."""
    t = Ticket.__table__.c
    columns = [
        t.first_response_business_s,
        type_coerce(t.first_response_at <= t.sla_due_at, Integer),
        t.urgency,
        raw(t.organisation_id),
        raw(t.assignee_id),
    ]
    if ids is not None:
        columns.append(raw(t.id))
    stmt = select(*columns).where(
        t.deleted == false(),
        t.first_response_at >= start,
        t.first_response_at < end,
        t.sla_due_at.is_not(None),
        t.first_response_business_s.is_not(None),
    )
    if ids is not None:
        stmt = stmt.where(t.id.in_(ids))
    return driver_rows(session, stmt)


def response_keys(
    ctx: Context, urgency: int, org: Any, assignee: Any
) -> tuple[tuple[str, Any], ...]:
    """The groups a response counts in (``org`` and ``assignee`` as the driver returns them)."""
    return (
        ("team", None),
        ("tier", urgency),
        ("plan", ctx.plan_of(org)),
        ("agent", None if assignee is None else ctx.uuids[assignee]),
    )


def response_groups(ctx: Context, rows: Iterable[ResponseRow]) -> ResponseGroups:
    """Responses (rows of :func:`response_rows` without ids) by group: by the raw urgency,
    organisation and assignee values first (few distinct ones, one dictionary step per value),
    then each raw group's keys found once."""
    by_tier: dict[Any, list[int]] = defaultdict(list)
    by_org: dict[Any, list[int]] = defaultdict(list)
    by_agent: dict[Any, list[int]] = defaultdict(list)
    met_tier: dict[Any, int] = defaultdict(int)
    met_org: dict[Any, int] = defaultdict(int)
    met_agent: dict[Any, int] = defaultdict(int)
    for took, met, urgency, org, assignee in rows:
        by_tier[urgency].append(took)
        by_org[org].append(took)
        by_agent[assignee].append(took)
        if met:
            met_tier[urgency] += 1
            met_org[org] += 1
            met_agent[assignee] += 1
    took_by = {
        **{(0, k): v for k, v in by_tier.items()},
        **{(1, k): v for k, v in by_org.items()},
        **{(2, k): v for k, v in by_agent.items()},
    }
    met_by = {
        **{(0, k): v for k, v in met_tier.items()},
        **{(1, k): v for k, v in met_org.items()},
        **{(2, k): v for k, v in met_agent.items()},
    }
    merged: dict[tuple[str, Any], list[int]] = defaultdict(list)
    met_of: dict[tuple[str, Any], int] = defaultdict(int)
    for (kind, value), took in took_by.items():
        keys: tuple[tuple[str, Any], ...]
        if kind == 0:
            keys = (("team", None), ("tier", value))
        elif kind == 1:
            keys = (("plan", ctx.plan_of(value)),)
        else:
            keys = (("agent", None if value is None else ctx.uuids[value]),)
        for key in keys:
            merged[key] += took
            met_of[key] += met_by.get((kind, value), 0)
    return {key: (sorted(took), met_of[key]) for key, took in merged.items()}


def first_response(ctx: Context, start: datetime, end: datetime) -> FirstResponse:
    """First responses given in ``[start, end)``: median, 90th percentile and targets met."""
    return first_response_of(
        ctx, start, end, response_groups(ctx, response_rows(ctx.session, start, end))
    )


def first_response_of(
    ctx: Context, start: datetime, end: datetime, groups: ResponseGroups
) -> FirstResponse:
    """The figures of responses already grouped (a full read, or one kept up to date by
    :mod:`.dashboard_live`)."""
    rng = {"responded_from": start, "responded_before": end, "open_only": False}

    def stats(label: str, key: tuple[str, Any], **kw: Any) -> ResponseStats:
        took, met = groups.get(key, ([], 0))  # whole seconds: the same ranks as durations
        return ResponseStats(
            label,
            len(took),
            _seconds(_ranked(took, 0.5)),
            _seconds(_ranked(took, 0.9)),
            met,
            _base(f"First responses: {label}", **rng, **kw),
        )

    team = stats("Team", ("team", None))
    by_tier = tuple(stats(f"Tier {k}", ("tier", k), urgency=k) for k in (1, 2, 3, 4))
    by_plan = tuple(
        stats(p[0].name, ("plan", pid), plan_id=pid)
        for pid, p in sorted(ctx.plans.items(), key=lambda i: -i[1][0].rank)
    )
    names = dict(ctx.session.execute(select(User.id, User.display_name)).all())
    agents = sorted(
        (k[1] for k, (took, _) in groups.items() if k[0] == "agent" and k[1] is not None and took),
        key=lambda u: (names.get(u, ""), u),
    )
    by_agent = tuple(stats(names.get(a, "?"), ("agent", a), assignee_id=a) for a in agents)
    return FirstResponse(start, end, team, by_tier, by_plan, by_agent)


def _ranked(ordered: Sequence[int], share: float) -> int | None:
    """:func:`nearest_rank` of values already in order."""
    if not ordered:
        return None
    return ordered[max(0, ceil(share * len(ordered)) - 1)]


def agent_load(ctx: Context, queue: OpenQueue | None = None) -> tuple[AgentLoad, ...]:
    q = queue or open_queue(ctx)
    at = ctx.at
    names = dict(ctx.session.execute(select(User.id, User.display_name)).all())
    out = []
    for uid, n, oldest, n_risk, n_late in sorted(
        q.agents, key=lambda r: (names.get(r[0], ""), r[0])
    ):
        name = names.get(uid, "?")
        out.append(
            AgentLoad(
                uid,
                name,
                Count("Open", n, _base(f"Open, assigned to {name}", assignee_id=uid), oldest),
                Count(
                    "At risk",
                    n_risk,
                    _base(f"At risk, {name}", assignee_id=uid, sla=SlaBucket.AT_RISK, at=at),
                ),
                Count(
                    "Breached",
                    n_late,
                    _base(f"Breached, {name}", assignee_id=uid, sla=SlaBucket.BREACHED, at=at),
                ),
            )
        )
    return tuple(out)


def _count_oldest(ctx: Context, label: str, flt: TicketFilter) -> Count:
    n, oldest = ctx.session.execute(
        select(func.count(), func.min(Ticket.__table__.c.arrived_at)).where(*flt.clauses())
    ).one()
    return Count(label, int(n), flt, oldest)


def queue_health(ctx: Context, queue: OpenQueue | None = None) -> tuple[Count, Count]:
    q = queue or open_queue(ctx)
    return (
        Count(
            "Unassigned",
            q.unassigned[0],
            _base("Open, unassigned", unassigned=True),
            q.unassigned[1],
        ),
        Count(
            "Untriaged",
            q.untriaged[0],
            _base("Untriaged (new)", statuses=(TicketStatus.NEW,)),
            q.untriaged[1],
        ),
    )


def redirected(ctx: Context) -> Count:
    """Seed 003's redirected requests, waiting for the organisation's validated contacts."""
    return _count_oldest(
        ctx,
        "Redirected, waiting",
        _base(
            "Redirected, waiting for the organisation",
            open_only=False,
            statuses=(TicketStatus.REDIRECTED,),
        ),
    )


def business_age_threshold(cal: BusinessCalendar, at: datetime, days: int) -> datetime:
    """The latest arrival that is at least ``days`` business days old at ``at``
    (``cal.add_days(arrival, days) <= at``), found by bisection: ``add_days`` only moves
    forward as its start does. Tickets older than ``days`` arrived at or before it."""
    lo = at - timedelta(days=7 * days + 40)  # surely old enough, holidays included
    hi = at
    if cal.add_days(lo, days) > at:
        return lo
    step = timedelta(microseconds=1)
    while hi - lo > step:
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=mid.microsecond)
        if cal.add_days(mid, days) <= at:
            lo = mid
        else:
            hi = mid
    return lo


def ageing(ctx: Context, open_total: int, queue: OpenQueue | None = None) -> Ageing:
    """Open tickets by business-day age on the team calendar, and days to clear the queue."""
    t = Ticket.__table__.c
    q = queue or open_queue(ctx)
    buckets = tuple(
        Count(
            label,
            n,
            _base(f"Open, {label} old (business days)", arrived_from=lo, arrived_before=hi),
        )
        for label, n, (lo, hi) in zip(AGE_LABELS, q.ages, q.age_bounds, strict=True)
    )
    resolved = int(
        ctx.session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(
                t.deleted == false(),
                t.resolved_at >= ctx.at - RESOLUTION_WINDOW,
                t.resolved_at < ctx.at,
            )
        )
        or 0
    )
    rate = resolved / RESOLUTION_WINDOW.days
    return Ageing(buckets, resolved, (open_total / rate) if rate else None)


def _limited(ctx: Context) -> dict[uuid.UUID, tuple[Plan, SupportPlan, BusinessCalendar]]:
    return {pid: p for pid, p in ctx.plans.items() if p[1].conversations_per_year is not None}


def allowance_counts(
    ctx: Context, tickets: Sequence[uuid.UUID] | None = None
) -> dict[uuid.UUID, int]:
    """This calendar year's conversations of each organisation on a limited plan (counting
    only ``tickets``, when given); organisations with none are absent."""
    limited = _limited(ctx)
    if not limited:
        return {}
    orgs: Any = select(Organisation.id).where(
        Organisation.plan_id.in_(list(limited)), Organisation.deleted.is_(False)
    )
    if tickets is not None:  # the same organisations, as a list (see the count's notes)
        orgs = [o for o, pid in ctx.org_plan.items() if pid in limited]
    year = calendar_year_of(ctx.at, ctx.tz)
    return conversations_in_year_by_organisation(ctx.session, orgs, year, ctx.tz, tickets=tickets)


def allowances(ctx: Context, used: dict[uuid.UUID, int] | None = None) -> tuple[AllowanceRow, ...]:
    """Organisations on a limited plan (seed 000: 5 a year, 10 with the review bonus) at or
    above :data:`NEAR_SHARE` of this calendar year's allowance (``used``: the counts of
    :func:`allowance_counts`, read when not given)."""
    limited = _limited(ctx)
    if not limited:
        return ()
    if used is None:
        used = allowance_counts(ctx)
    year = calendar_year_of(ctx.at, ctx.tz)
    start, end = calendar_year_bounds(year, ctx.tz)
    out = []
    for oid in used:
        pid = ctx.org_plan.get(oid)
        plan = limited.get(pid) if pid is not None else None
        if plan is None:
            continue
        n = used[oid]
        base = plan[1].conversations_per_year or 0
        if n * NEAR_SHARE[1] < base * NEAR_SHARE[0]:
            continue  # not near even the allowance without the bonus (most organisations)
        name = ctx.org_name[oid]
        verified, recent = ctx.org_reviews[oid]
        allowance = conversation_allowance(plan[1], verified, recent)
        if allowance is None:
            continue
        if n * NEAR_SHARE[1] < allowance * NEAR_SHARE[0]:
            continue
        out.append(
            AllowanceRow(
                oid,
                name,
                plan[0].name,
                n,
                allowance,
                n >= allowance,
                _base(
                    f"{name}: conversations in {year}",
                    open_only=False,
                    organisation_ids=(oid,),
                    arrived_from=start,
                    arrived_before=end,
                    exclude_redirected=True,
                ),
            )
        )
    out.sort(key=lambda r: (-r.used / max(r.allowance, 1), r.name, r.organisation_id))
    return tuple(out)


def _weeks(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[date, ...]:
    first = start.astimezone(zone).date()
    first -= timedelta(days=first.weekday())
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    out = []
    while first <= last:
        out.append(first)
        first += timedelta(days=7)
    return tuple(out)


def one_on_one(
    ctx: Context, start: datetime, end: datetime
) -> tuple[tuple[date, ...], tuple[OneOnOneRow, ...]]:
    """Per organisation with prepaid hours or billed time: billed minutes per week of the
    range, prepaid minutes left at ``at`` and what expires in the next 30 days (seed 001).

    The ledger is read and the balance replayed by :mod:`.balances` (the timer's figure, the
    one rule of which entries count and how far back a balance reaches); only organisations
    that bought hours or worked in the range are read, each with its own indexed reads."""
    zone = ZoneInfo(ctx.tz)
    weeks = _weeks(start, end, zone)
    te = TimeEntry
    # Whole local days either side of the range, so clipping leaves its days' bills alone.
    since, until = start - _DAY_SLACK, end + _DAY_SLACK
    with_blocks = set(
        ctx.session.scalars(
            select(HourBlock.organisation_id).where(HourBlock.deleted.is_(False)).distinct()
        )
    )
    with_work = set(
        ctx.session.scalars(
            ledger.live_clauses(select(te.organisation_id), te, since, until).distinct()
        )
    )
    rows = []
    for oid in sorted(with_blocks | with_work, key=lambda o: ctx.org_name.get(o, "")):
        per_week: dict[date, int] = defaultdict(int)
        if oid in with_work:
            for bill in billing.bill_days(
                ledger.clipped_work(ctx.session, oid, since, until), tz=ctx.tz
            ):
                if start <= bill.day_start.astimezone(UTC) < end:
                    per_week[bill.day - timedelta(days=bill.day.weekday())] += bill.total_minutes
        left, expiring = 0, []
        prepaid = balances.read_prepaid(ctx.session, oid, ctx.at) if oid in with_blocks else None
        bal = (
            balances.prepaid_balance(prepaid, None, "", ctx.tz, ctx.at)
            if prepaid is not None
            else None
        )
        if bal is not None:
            left = bal.total_minutes
            expiring = [
                (b.expires_at, b.remaining_minutes)
                for b in bal.blocks
                if b.remaining_minutes and b.expires_at <= ctx.at + EXPIRY_WINDOW
            ]
        weekly = tuple((w, per_week.get(w, 0)) for w in weeks)
        if not left and not any(m for _, m in weekly) and not expiring:
            continue
        name = ctx.org_name.get(oid, "?")
        rows.append(
            OneOnOneRow(
                oid,
                name,
                weekly,
                left,
                tuple(sorted(expiring)),
                _base(f"{name}: open tickets", organisation_ids=(oid,)),
            )
        )
    return weeks, tuple(rows)
