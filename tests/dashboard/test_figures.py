"""Every dashboard figure against a straightforward recomputation with ``agentdesk.policy`` over
the same replica rows (written here, ticket by ticket), and every figure's filter selects exactly
the tickets it counts."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from math import ceil
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from agentdesk.models import (
    Calendar,
    Contact,
    HourBlock,
    Organisation,
    Plan,
    Tenant,
    Ticket,
    TicketStatus,
    TimeEntry,
    WaitingPeriod,
)
from agentdesk.policy import billing
from agentdesk.policy.calendar import BusinessCalendar
from agentdesk.policy.entitlements import (
    calendar_year_of,
    conversation_allowance,
    conversations_in_year,
)
from agentdesk.policy.plans import SupportPlan, seed_calendars
from agentdesk.policy.sla import SlaState, sla_status
from agentdesk.policy.workflow import OPEN_STATUSES
from agentdesk.queries import dashboard as dash
from agentdesk.queries.dashboard import Count, SlaBucket, TicketFilter
from tests.dashboard.conftest import LeadDesk

OFFICE = BusinessCalendar.from_dict(seed_calendars()["office"][1])


@dataclass
class World:
    """The replica's rows, read plainly."""

    tickets: list[Ticket]
    plans: dict[uuid.UUID, tuple[Plan, SupportPlan, BusinessCalendar]]
    orgs: dict[uuid.UUID, Organisation]
    pauses: dict[uuid.UUID, list[tuple[datetime, datetime | None]]]
    tz: str

    def plan_of(self, t: Ticket) -> tuple[Plan, SupportPlan, BusinessCalendar]:
        return self.plans[self.orgs[t.organisation_id].plan_id]

    def open(self) -> list[Ticket]:
        return [t for t in self.tickets if t.status.value in OPEN_STATUSES]


def read_world(s: Session) -> World:
    cals = {c.id: BusinessCalendar.from_dict(c.data) for c in s.scalars(select(Calendar))}
    plans = {
        p.id: (p, p.to_policy(), cals.get(p.calendar_id, OFFICE) if p.calendar_id else OFFICE)
        for p in s.scalars(select(Plan))
    }
    pauses: dict[uuid.UUID, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for w in s.scalars(select(WaitingPeriod).where(WaitingPeriod.deleted.is_(False))):
        pauses[w.ticket_id].append((w.started_at, w.ended_at))
    tz = s.scalar(select(Tenant.timezone)) or "UTC"
    return World(
        [t for t in s.scalars(select(Ticket)) if not t.deleted],
        plans,
        {o.id: o for o in s.scalars(select(Organisation))},
        pauses,
        tz,
    )


def reference_sla(w: World, t: Ticket, now: datetime) -> SlaBucket:
    if any(end is None for _, end in w.pauses[t.id]):
        return SlaBucket.PAUSED
    _, plan, cal = w.plan_of(t)
    state = sla_status(t.arrived_at, t.urgency, plan, cal, now, None, w.pauses[t.id]).state
    return {
        SlaState.ON_TRACK: SlaBucket.ON_TRACK,
        SlaState.AT_RISK: SlaBucket.AT_RISK,
        SlaState.BREACHED: SlaBucket.BREACHED,
    }[state]


def ids_of(s: Session, flt: TicketFilter) -> set[uuid.UUID]:
    return set(s.scalars(select(Ticket.id).where(*flt.clauses())))


def check(s: Session, figure: Count, expected: set[uuid.UUID]) -> None:
    """The figure's number is the reference count and its filter selects exactly those."""
    assert figure.value == len(expected), figure.label
    assert ids_of(s, figure.filter) == expected, figure.label


def nearest(values: list[timedelta], share: float) -> timedelta | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[ceil(share * len(ordered)) - 1]


def fill_allowance(desk: LeadDesk) -> uuid.UUID:
    """Bring one basic/free organisation to its yearly allowance (seed 000) with requests
    made on the desk and pushed through the server, so the figure has something to show."""
    with desk.replica.session() as s:
        w = read_world(s)
        at = datetime.now(UTC)
        year = calendar_year_of(at, w.tz)
        for org in w.orgs.values():
            allowance = conversation_allowance(
                w.plans[org.plan_id][1], org.verified_reviews, org.recent_reviews
            )
            contact = s.scalar(
                select(Contact).where(
                    Contact.organisation_id == org.id, Contact.validated.is_(True)
                )
            )
            if allowance is not None and contact is not None:
                break
        else:
            raise AssertionError("the demo has no basic/free organisation with a contact")
        used = conversations_in_year(
            [
                t.arrived_at
                for t in w.tickets
                if t.organisation_id == org.id and t.status is not TicketStatus.REDIRECTED
            ],
            year,
            w.tz,
        )
        org_id, contact_id = org.id, contact.id
    for _ in range(max(0, allowance - used)):
        desk.replica.mutate(
            "create_ticket",
            {
                "ticket_id": str(uuid.uuid4()),
                "subject": "Another question",
                "channel": "portal",
                "organisation_id": str(org_id),
                "requester_id": str(contact_id),
                "stated_urgency": 3,
            },
        )
    desk.sync()
    return org_id


@pytest.fixture(scope="module")
def figures(shared_lead: LeadDesk) -> Iterator[tuple[dash.Dashboard, World, Session, datetime]]:
    fill_allowance(shared_lead)
    at = datetime.now(UTC).replace(microsecond=0)
    with shared_lead.replica.session() as s:
        d = dash.compute(s, at, at - timedelta(days=30), at)
        w = read_world(s)
        yield d, w, s, at


def test_demo_tickets_store_the_instants_the_mutators_would(shared_lead: LeadDesk) -> None:
    from agentdesk.sync.mutators import refresh_sla

    with shared_lead.replica.session() as s:
        tickets = list(s.scalars(select(Ticket)))
        stored = {t.id: (t.sla_due_at, t.sla_risk_at) for t in tickets}
        with s.no_autoflush:
            for t in tickets:
                refresh_sla(s, t)
                assert (t.sla_due_at, t.sla_risk_at) == stored[t.id], t.id
        s.rollback()
    assert any(due is not None for due, _ in stored.values())


def test_open_tickets_by_tier_plan_and_level(figures: Any) -> None:
    d, w, s, _ = figures
    opened = w.open()
    check(s, d.open.total, {t.id for t in opened})
    tiers = {c.label: c for c in d.open.by_tier}
    check(s, tiers["Untriaged"], {t.id for t in opened if t.tier is None})
    for k in (1, 2, 3, 4):
        check(s, tiers[f"Tier {k}"], {t.id for t in opened if t.tier == k})
    for c in d.open.by_plan:
        plan_id = c.filter.plan_id
        check(s, c, {t.id for t in opened if w.orgs[t.organisation_id].plan_id == plan_id})
    for c in d.open.by_level:
        check(s, c, {t.id for t in opened if t.level == c.filter.level})
    assert sum(c.value for c in d.open.by_tier) == d.open.total.value


def test_sla_now_matches_sla_status_ticket_by_ticket(figures: Any) -> None:
    d, w, s, at = figures
    expected: dict[SlaBucket, set[uuid.UUID]] = defaultdict(set)
    for t in w.open():
        if t.first_response_at is None:
            expected[reference_sla(w, t, at)].add(t.id)
    for figure in d.sla:
        check(s, figure, expected[figure.filter.sla])
    assert sum(f.value for f in d.sla) > 0


def test_breaching_soon_lists_the_next_due_with_business_time_left(figures: Any) -> None:
    d, w, _, at = figures
    live = []
    for t in w.open():
        if t.first_response_at is None and reference_sla(w, t, at) is not SlaBucket.PAUSED:
            _, plan, cal = w.plan_of(t)
            st = sla_status(t.arrived_at, t.urgency, plan, cal, at, None, w.pauses[t.id])
            if st.state is not SlaState.BREACHED:
                live.append((st.due.astimezone(UTC), t.id, st.business_left))
    live.sort()
    expected = live[: dash.BREACHING_SOON]
    assert [(r.ticket_id, r.business_left) for r in d.breaching_soon] == [
        (tid, left) for _, tid, left in expected
    ]


def test_first_response_against_target(figures: Any) -> None:
    d, w, s, at = figures
    start = at - timedelta(days=30)
    groups: dict[tuple[str, Any], list[tuple[timedelta, bool]]] = defaultdict(list)
    for t in w.tickets:
        if t.first_response_at is None or not start <= t.first_response_at < at:
            continue
        _, plan, cal = w.plan_of(t)
        st = sla_status(t.arrived_at, t.urgency, plan, cal, at, t.first_response_at, w.pauses[t.id])
        took = st.business_total - st.business_left  # stored in whole seconds
        item = (timedelta(seconds=int(took.total_seconds())), st.state is SlaState.MET)
        for key in (
            ("team", None),
            ("tier", t.urgency),
            ("agent", t.assignee_id),
            ("plan", w.orgs[t.organisation_id].plan_id),
        ):
            groups[key].append(item)
    fr = d.first_response
    pairs = [(fr.team, ("team", None))]
    pairs += [(x, ("tier", x.filter.urgency)) for x in fr.by_tier]
    pairs += [(x, ("plan", x.filter.plan_id)) for x in fr.by_plan]
    pairs += [(x, ("agent", x.filter.assignee_id)) for x in fr.by_agent]
    assert fr.team.responded > 0
    for stats, key in pairs:
        items = groups.get(key, [])
        durations = [x for x, _ in items]
        assert stats.responded == len(items), stats.label
        assert stats.median == nearest(durations, 0.5), stats.label
        assert stats.p90 == nearest(durations, 0.9), stats.label
        assert stats.met == sum(ok for _, ok in items), stats.label
        assert len(ids_of(s, stats.filter)) == stats.responded, stats.label


def test_load_per_agent_unassigned_untriaged_and_redirected(figures: Any) -> None:
    d, w, s, at = figures
    opened = w.open()
    by_agent: dict[uuid.UUID, list[Ticket]] = defaultdict(list)
    for t in opened:
        if t.assignee_id is not None:
            by_agent[t.assignee_id].append(t)
    assert {a.user_id for a in d.load} == set(by_agent)
    for a in d.load:
        mine = by_agent[a.user_id]
        check(s, a.open, {t.id for t in mine})
        assert a.open.oldest == min(t.arrived_at for t in mine)
        unanswered = [t for t in mine if t.first_response_at is None]
        check(
            s, a.at_risk, {t.id for t in unanswered if reference_sla(w, t, at) is SlaBucket.AT_RISK}
        )
        check(
            s,
            a.breached,
            {t.id for t in unanswered if reference_sla(w, t, at) is SlaBucket.BREACHED},
        )
    unassigned = [t for t in opened if t.assignee_id is None]
    check(s, d.unassigned, {t.id for t in unassigned})
    assert d.unassigned.oldest == min((t.arrived_at for t in unassigned), default=None)
    new = [t for t in opened if t.status is TicketStatus.NEW]
    check(s, d.untriaged, {t.id for t in new})
    redirected = [t for t in w.tickets if t.status is TicketStatus.REDIRECTED]
    check(s, d.redirected, {t.id for t in redirected})
    assert d.redirected.value > 0


def test_ageing_buckets_and_days_to_clear(figures: Any) -> None:
    d, w, s, at = figures
    buckets: list[set[uuid.UUID]] = [set(), set(), set(), set()]
    for t in w.open():
        older = [OFFICE.add_days(t.arrived_at, n) <= at for n in dash.AGE_EDGES]
        buckets[sum(older)].add(t.id)
    for figure, expected in zip(d.ageing.buckets, buckets, strict=True):
        check(s, figure, expected)
    resolved = [
        t
        for t in w.tickets
        if t.resolved_at is not None and at - timedelta(days=14) <= t.resolved_at < at
    ]
    assert d.ageing.resolved_last_14_days == len(resolved)
    assert d.ageing.days_to_clear == pytest.approx(len(w.open()) / (len(resolved) / 14))


def test_organisations_near_or_over_their_allowance(figures: Any) -> None:
    d, w, s, at = figures
    year = calendar_year_of(at, w.tz)
    expected = {}
    for org in w.orgs.values():
        plan = w.plans[org.plan_id][1]
        allowance = conversation_allowance(plan, org.verified_reviews, org.recent_reviews)
        if allowance is None:
            continue
        used = conversations_in_year(
            [
                t.arrived_at
                for t in w.tickets
                if t.organisation_id == org.id and t.status is not TicketStatus.REDIRECTED
            ],
            year,
            w.tz,
        )
        if used * 5 >= allowance * 4:
            expected[org.id] = (used, allowance)
    assert {r.organisation_id: (r.used, r.allowance) for r in d.allowances} == expected
    assert expected, "the demo has organisations at their allowance"
    for r in d.allowances:
        assert r.over == (r.used >= r.allowance)
        assert len(ids_of(s, r.filter)) == r.used


def test_one_on_one_hours(figures: Any) -> None:
    d, w, s, at = figures
    blocks: dict[uuid.UUID, list[billing.HourBlock]] = defaultdict(list)
    for b in s.scalars(select(HourBlock)):
        blocks[b.organisation_id].append(
            billing.HourBlock(
                id=str(b.id),
                customer_id=str(b.organisation_id),
                purchased_at=b.purchased_at,
                minutes=b.minutes,
            )
        )
    entries = list(s.scalars(select(TimeEntry).where(TimeEntry.deleted.is_(False))))
    voided = {e.voids_id for e in entries}
    items: dict[uuid.UUID, list[billing.WorkItem]] = defaultdict(list)
    for e in entries:
        if e.id not in voided and e.source != "void":
            items[e.organisation_id].append(
                billing.WorkItem(
                    customer_id=str(e.organisation_id),
                    person=str(e.person_id),
                    kind=billing.WorkKind(e.kind.value),
                    start=e.started_at,
                    end=e.ended_at,
                    billable=e.billable,
                    extra_engineer=e.extra_engineer,
                    id=str(e.id),
                )
            )
    rows = {r.organisation_id: r for r in d.one_on_one}
    assert rows, "the demo sells 1-on-1 hours"
    start = at - timedelta(days=30)
    for oid in set(blocks) | set(items):
        bills = billing.bill_days(items[oid], tz=w.tz)
        weekly: Counter[Any] = Counter()
        for bill in bills:
            if start <= bill.day_start < at:
                weekly[bill.day - timedelta(days=bill.day.weekday())] += bill.total_minutes
        left, expiring = 0, []
        if blocks[oid]:
            bal = billing.balance(
                [b for b in blocks[oid] if b.purchased_at <= at],
                [b for b in bills if b.day_start <= at],
                at,
            )
            left = bal.total_minutes
            expiring = sorted(
                (b.expires_at, b.remaining_minutes)
                for b in bal.blocks
                if b.remaining_minutes and b.expires_at <= at + timedelta(days=30)
            )
        if not left and not sum(weekly.values()) and not expiring:
            assert oid not in rows
            continue
        row = rows[oid]
        assert row.prepaid_left_minutes == left, row.name
        assert list(row.expiring) == expiring, row.name
        assert {wk: m for wk, m in row.weekly_billed if m} == dict(weekly), row.name


def _statements(desk: LeadDesk, sections: set[dash.Section]) -> list[tuple[str, Any]]:
    """The SQL a full computation of ``sections`` sends, with its parameters."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        seen.append((statement, params))

    engine = desk.replica.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        at = datetime.now(UTC).replace(microsecond=0)
        with desk.replica.session() as s:
            board = dash.compute(s, at, at - timedelta(days=30), at, sections=sections)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert board.open is not None
    assert board.open.total.value > 0
    return seen


def _plan(desk: LeadDesk, statement: str, params: Any) -> list[str]:
    with desk.replica.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        return [row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {statement}", params)]


def test_the_open_queue_is_read_in_two_passes(shared_lead: LeadDesk) -> None:
    """Every figure over the open queue (tiers, levels, SLA states, ages, load per agent,
    unassigned, untriaged) comes from one scan of the open tickets, and the per-plan counts
    from a second one in organisation order (migration 0013), not one scan per figure: at
    100,000 open tickets each scan cost about as much as the target for the whole dashboard.
    The figures themselves are checked against the reference by the tests above."""
    open_filter = "tickets.status IN (" + ", ".join(f"'{s.value}'" for s in dash.OPEN) + ")"
    scans = [
        st
        for st, _ in _statements(shared_lead, {dash.Section.TICKETS})
        if "FROM tickets" in st and open_filter in st and " LIMIT " not in st
    ]
    assert len(scans) == 2, scans
    assert {"INDEXED BY ix_tickets_open " in st for st in scans} == {True, False}, scans
    assert {"INDEXED BY ix_tickets_open_org " in st for st in scans} == {True, False}, scans


def test_the_dashboard_reads_indexes_only(shared_lead: LeadDesk) -> None:
    """The big reads never touch a ticket row nor sort (migration 0011): the open queue is one
    scan of the partial ``ix_tickets_open`` in (assignee, tier, level) order and one of
    ``ix_tickets_open_org`` in organisation order (no temporary B-tree for either GROUP BY,
    migration 0013), the month's first responses and the year's conversation counts are ranges of
    covering indexes, and the next tickets to breach come out of ``ix_tickets_sla`` in order."""
    plans = {
        " ".join(st.split()): _plan(shared_lead, st, params)
        for st, params in _statements(shared_lead, {dash.Section.TICKETS, dash.Section.ALLOWANCES})
        if "FROM tickets" in st
    }

    def plan_of(*fragments: str) -> list[str]:
        found = [p for st, p in plans.items() if all(f in st for f in fragments)]
        assert len(found) >= 1, (fragments, list(plans))
        return found[0]

    queue = plan_of("INDEXED BY ix_tickets_open ", "GROUP BY tickets.assignee_id")
    assert queue == ["SCAN tickets USING COVERING INDEX ix_tickets_open"], queue
    by_org = plan_of("INDEXED BY ix_tickets_open_org ", "GROUP BY tickets.organisation_id")
    assert by_org == ["SCAN tickets USING COVERING INDEX ix_tickets_open_org"], by_org
    responses = plan_of("tickets.first_response_business_s", "tickets.first_response_at >=")
    assert responses[0].startswith("SEARCH tickets USING COVERING INDEX ix_tickets_sla"), responses
    counts = plan_of("tickets.organisation_id, count(*)")
    assert any("COVERING INDEX ix_tickets_organisation_arrived" in s for s in counts), counts
    soon = plan_of("ORDER BY tickets.sla_due_at, tickets.id")
    assert soon[0].startswith("SEARCH tickets USING INDEX ix_tickets_sla"), soon
    assert not any("TEMP B-TREE" in step for step in soon), soon
