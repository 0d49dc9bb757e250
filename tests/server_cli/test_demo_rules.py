"""The full-size demo team obeys the rules engine and the model, row by row.

Everything here reads one 3,000-ticket demo per engine (``demo_db``, tests/plugins/demo_data.py).
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from agentdesk.models import (
    AppointmentStatus,
    EventKind,
    Role,
    TicketKind,
    TicketStatus,
    TimeKind,
)
from agentdesk.policy.billing import WorkKind
from agentdesk.policy.calendar import BusinessCalendar
from agentdesk.policy.contacts import Contact as PolicyContact
from agentdesk.policy.contacts import allotment_usage
from agentdesk.policy.entitlements import (
    calendar_year_of,
    check_request,
    conversation_allowance,
)
from agentdesk.policy.sla import SlaState, sla_status
from agentdesk.queries.statement import read_statement
from agentdesk.queries.ticket_card import describe_event
from agentdesk.queries.timesheet import read_timesheet, week_of
from agentdesk.server.app import create_app
from agentdesk.server.demo import DEMO_TEAM_NAME, DEMO_TIMEZONE, DEMO_USERS, VERSION_BATCH
from agentdesk.server.settings import ServerSettings
from tests.plugins.demo_data import NOW, DemoDatabase, billing_overview

OPEN = {
    TicketStatus.NEW,
    TicketStatus.TRIAGED,
    TicketStatus.IN_PROGRESS,
    TicketStatus.WAITING_ON_CUSTOMER,
}


def _plans(rows: dict[str, list[Any]]) -> dict[uuid.UUID, Any]:
    """Plan id -> its policy form, on its calendar."""
    calendars = {c.id: c for c in rows["calendars"]}
    return {p.id: p.to_policy(calendars[p.calendar_id].name) for p in rows["plans"]}


def test_counts_and_variety(demo_db: DemoDatabase) -> None:
    rows, summary = demo_db.rows, demo_db.summary
    assert summary.created
    assert [t.name for t in rows["tenants"]] == [DEMO_TEAM_NAME]
    assert len(rows["organisations"]) >= 30
    assert len(rows["tickets"]) == 3000
    assert summary.counts["tickets"] == 3000
    assert summary.counts["ticket_events"] == len(rows["ticket_events"]) > 3 * 3000
    statuses = Counter(t.status for t in rows["tickets"])
    assert set(statuses) == set(TicketStatus), statuses
    assert summary.ticket_statuses == {s.value: statuses[s] for s in TicketStatus}
    assert {t.channel for t in rows["tickets"]} == {"portal", "chat", "phone"}
    assert {t.kind for t in rows["tickets"]} == set(TicketKind)
    assert {t.level.value for t in rows["tickets"]} == {"L1", "L2"}
    assert {t.tier for t in rows["tickets"]} == {None, 1, 2, 3, 4}
    assert {e.kind for e in rows["ticket_events"]} == set(EventKind) - {EventKind.FIELD_CHANGE}
    assert rows["waiting_periods"]
    assert {u.role for u in rows["users"]} == set(Role)
    assert sorted(u.username for u in rows["users"]) == sorted(u.username for u in DEMO_USERS)
    assert {p.key for p in rows["plans"]} == {"basic", "standard", "premium", "enterprise"}
    assert {o.plan_id for o in rows["organisations"]} == {p.id for p in rows["plans"]}
    # Arrivals spread over the last four months, mostly in New York business hours.
    arrivals = [t.arrived_at for t in rows["tickets"]]
    assert NOW - timedelta(days=125) < min(arrivals)
    assert max(arrivals) < NOW
    office = next(c for c in rows["calendars"] if c.data.get("holiday_country") == "US")
    in_hours = sum(office.to_policy().is_open(a) for a in arrivals)
    assert 0.5 * len(arrivals) < in_hours < 0.95 * len(arrivals)


def test_plans_reference_the_seed_calendars(demo_db: DemoDatabase) -> None:
    rows = demo_db.rows
    calendars = {c.id: c for c in rows["calendars"]}
    shapes = {}
    for plan in rows["plans"]:
        assert plan.calendar_id in calendars
        policy = BusinessCalendar.from_dict(calendars[plan.calendar_id].data)
        shapes[plan.key] = policy.to_dict()
        plan.to_policy()  # the stored plan is a valid SupportPlan
    office, pacific = shapes["standard"], shapes["premium"]
    assert office["tz"] == "America/New_York"
    assert office.get("holiday_country") == "US"
    assert office["hours"]["mon"] == [["08:00", "17:00"]]
    assert office["hours"]["sat"] == []
    assert pacific["tz"] == "America/Los_Angeles"
    assert pacific["hours"]["fri"] == [["06:00", "17:00"]]
    assert all(day == [["00:00", "24:00"]] for day in shapes["enterprise"]["hours"].values())


def test_validated_contacts_within_allotment_and_review_bonus_mix(demo_db: DemoDatabase) -> None:
    rows = demo_db.rows
    plans = _plans(rows)
    contacts = defaultdict(list)
    for c in rows["contacts"]:
        contacts[c.organisation_id].append(c)
    bonus: Counter[int | None] = Counter()
    for org in rows["organisations"]:
        plan = plans[org.plan_id]
        mine = [
            PolicyContact(id=str(c.id), name=c.name, email=c.email, validated=c.validated)
            for c in contacts[org.id]
        ]
        assert not allotment_usage(plan, mine).over_allotment, org.name
        assert any(not c.validated for c in mine), org.name
        for c in contacts[org.id]:
            assert (c.validated_at is not None) == c.validated == (c.validated_by_id is not None)
        if plan.key == "basic":
            allowance = conversation_allowance(plan, org.verified_reviews, org.recent_reviews)
            bonus[allowance] += 1
    assert bonus[10] >= 2
    assert bonus[5] >= 2


def test_tickets_obey_channels_allowance_and_denormalisation(demo_db: DemoDatabase) -> None:
    rows = demo_db.rows
    plans = _plans(rows)
    orgs = {o.id: o for o in rows["organisations"]}
    contacts = {c.id: c for c in rows["contacts"]}
    per_year: Counter[tuple[uuid.UUID, int]] = Counter()
    for t in sorted(rows["tickets"], key=lambda t: t.arrived_at):
        org = orgs[t.organisation_id]
        plan = plans[org.plan_id]
        assert plan.allows_channel(t.channel), (t.channel, plan.key)
        assert t.urgency == (t.tier if t.tier is not None else t.stated_urgency)
        assert t.plan_rank == plan.rank
        requester = contacts[t.requester_id]
        assert requester.organisation_id == org.id
        assert requester.validated == (t.status is not TicketStatus.REDIRECTED)
        year = calendar_year_of(t.arrived_at, DEMO_TIMEZONE)
        decision = check_request(
            plan,
            channel=t.channel,
            verified_reviews=org.verified_reviews,
            reviews_last_6_months=org.recent_reviews,
            conversations_this_year=per_year[org.id, year],
            year=year,
        )
        assert decision.allowed, decision.reason
        per_year[org.id, year] += 1


def test_workflow_fields_match_each_state(demo_db: DemoDatabase) -> None:
    rows = demo_db.rows
    events = defaultdict(list)
    for e in rows["ticket_events"]:
        events[e.ticket_id].append(e)
    waits = defaultdict(list)
    for w in rows["waiting_periods"]:
        waits[w.ticket_id].append(w)
    for t in rows["tickets"]:
        history = sorted(events[t.id], key=lambda e: e.at)
        kinds = [e.kind for e in history]
        assert kinds[0] is EventKind.CREATED
        assert history[0].at == t.arrived_at
        assert kinds.count(EventKind.CREATED) == 1
        assert history[-1].at <= NOW
        assert t.updated_at == history[-1].at
        s = t.status
        if s in (TicketStatus.NEW, TicketStatus.REDIRECTED):
            assert t.tier is None
            assert t.first_response_at is None
            assert t.assignee_id is None
        else:
            assert t.tier is not None
            assert EventKind.TRIAGE in kinds
        if s is TicketStatus.REDIRECTED:
            assert EventKind.REDIRECT in kinds
            assert EventKind.NOTIFICATION in kinds
        if s is TicketStatus.TRIAGED:
            assert t.first_response_at is None
        if s in (
            TicketStatus.IN_PROGRESS,
            TicketStatus.WAITING_ON_CUSTOMER,
            TicketStatus.RESOLVED,
            TicketStatus.CLOSED,
        ):
            assert t.assignee_id is not None
            assert t.arrived_at < t.first_response_at <= NOW
            assert EventKind.REPLY in kinds
        if s in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
            assert t.first_response_at < t.resolved_at <= NOW
            assert EventKind.NOTIFICATION in kinds
        else:
            assert t.resolved_at is None
        open_waits = [w for w in waits[t.id] if w.ended_at is None]
        assert len(open_waits) == (1 if s is TicketStatus.WAITING_ON_CUSTOMER else 0)
        for w in waits[t.id]:
            assert t.first_response_at is not None
            assert w.started_at > t.first_response_at
            assert w.ended_at is None or w.started_at < w.ended_at <= NOW
        assert (t.kind is TicketKind.ONE_ON_ONE) == (t.escalated_at is not None)
        assert (t.escalated_at is not None) == (EventKind.ESCALATION in kinds)
        assert t.extra_charges == (t.extra_charge_estimate is not None)


def test_redirects_notify_every_validated_contact(demo_db: DemoDatabase) -> None:
    rows = demo_db.rows
    validated = defaultdict(set)
    for c in rows["contacts"]:
        if c.validated:
            validated[c.organisation_id].add(str(c.id))
    notified = defaultdict(set)
    redirect_data = {}
    for e in rows["ticket_events"]:
        if e.kind is EventKind.NOTIFICATION and e.data.get("about") == "redirect":
            notified[e.ticket_id].update(e.data["to"])
        if e.kind is EventKind.REDIRECT:
            redirect_data[e.ticket_id] = e.data
    redirected = [t for t in rows["tickets"] if t.status is TicketStatus.REDIRECTED]
    codes = set()
    for t in redirected:
        data = redirect_data[t.id]
        codes.add(data["code"])
        assert set(data["notify"]) == validated[t.organisation_id]
        assert notified[t.id] == validated[t.organisation_id] | {str(t.requester_id)}
    assert codes == {"redirected", "no_validated_contacts"}


def test_sla_clock_runs_on_every_ticket(demo_db: DemoDatabase) -> None:
    rows = demo_db.rows
    plans = _plans(rows)
    calendars = {c.name: c.to_policy() for c in rows["calendars"]}
    orgs = {o.id: o for o in rows["organisations"]}
    waits = defaultdict(list)
    for w in rows["waiting_periods"]:
        waits[w.ticket_id].append((w.started_at, w.ended_at))
    states: Counter[SlaState] = Counter()
    for t in rows["tickets"]:
        if t.status is TicketStatus.REDIRECTED:
            continue
        plan = plans[orgs[t.organisation_id].plan_id]
        status = sla_status(
            t.arrived_at,
            t.urgency,
            plan,
            calendars[plan.calendar],
            NOW,
            t.first_response_at,
            waits[t.id],
        )
        states[status.state] += 1
    # Mostly met, some late: a believable team, and every dashboard bucket has rows.
    assert states[SlaState.MET] > 4 * states[SlaState.MET_LATE] > 0
    assert states[SlaState.ON_TRACK] > 0
    assert states[SlaState.BREACHED] + states[SlaState.AT_RISK] > 0


def test_billing_ledger_replays_with_expired_and_expiring_hours(demo_db: DemoDatabase) -> None:
    rows = demo_db.rows
    assert {b.minutes for b in rows["hour_blocks"]} == {300, 600, 1200}
    assert all(b.purchased_at <= NOW for b in rows["hour_blocks"])
    overview = billing_overview(rows, NOW)
    assert overview.customers >= 8
    assert overview.expiring_soon >= 1
    assert overview.forfeited >= 1
    assert overview.billed_customers == overview.customers
    assert any(b.purchased_at < NOW - timedelta(days=90) for b in rows["hour_blocks"])


def test_appointments_and_time_entries(demo_db: DemoDatabase) -> None:
    rows = demo_db.rows
    appointments = {a.id: a for a in rows["appointments"]}
    statuses = Counter(a.status for a in appointments.values())
    assert set(statuses) == set(AppointmentStatus)
    assert any(
        a.starts_at > NOW and a.status is AppointmentStatus.SCHEDULED for a in appointments.values()
    )
    entries = rows["time_entries"]
    by_appointment = defaultdict(list)
    for e in entries:
        assert e.started_at <= e.ended_at <= NOW or e.kind is TimeKind.LATE_CANCELLATION
        assert e.created_at <= NOW
        if e.appointment_id is not None:
            by_appointment[e.appointment_id].append(e)
    late = early = 0
    for a in appointments.values():
        kinds = {e.kind for e in by_appointment[a.id]}
        if a.status is AppointmentStatus.HELD:
            assert a.ends_at <= NOW
            assert TimeKind.SCHEDULED_BLOCK in kinds
        if a.status is AppointmentStatus.CANCELLED:
            assert a.cancelled_at is not None
            assert a.cancelled_at <= NOW
            notice = a.starts_at - a.cancelled_at
            if notice < timedelta(hours=24):
                late += 1
                assert kinds == {TimeKind.LATE_CANCELLATION}
            else:
                early += 1
                assert not kinds
    assert late >= 1
    assert early >= 1
    assert any(e.extra_engineer for e in entries)
    assert any(not e.billable for e in entries)  # general support before an escalation
    corrections = [e for e in entries if e.voids_id is not None]
    assert len(corrections) >= 1
    by_id = {e.id: e for e in entries}
    for fix in corrections:
        original = by_id[fix.voids_id]
        assert original.organisation_id == fix.organisation_id
        assert fix.ended_at < original.ended_at
        assert fix.created_at > original.created_at
    # Nobody is in two places at once (voided mistakes aside).
    voided = {e.voids_id for e in corrections}
    spans = defaultdict(list)
    for e in entries:
        if e.id not in voided and e.kind is not TimeKind.LATE_CANCELLATION:
            spans[e.person_id].append((e.started_at, e.ended_at))
    for person, mine in spans.items():
        mine.sort()
        for (_, end), (start, _) in itertools.pairwise(mine):
            assert end <= start, person


def test_an_extra_engineer_is_booked_delivered_and_billed_in_addition(
    demo_db: DemoDatabase,
) -> None:
    """Seed 001: an extra engineer the customer asked for is billed in addition. The demo books
    one on some calls as the app does (the appointment names them; delivering it records a
    scheduled block for each person, the engineer's marked), so the appointment lists, the
    customer's statement and the engineer's timesheet all show one."""
    rows = demo_db.rows
    engineer = next(u.id for u in rows["users"] if u.username == "engineer")
    with_engineer = [a for a in rows["appointments"] if a.extra_engineer_id is not None]
    assert {a.extra_engineer_id for a in with_engineer} == {engineer}
    assert all(a.consultant_id != engineer for a in with_engineer)
    assert any(a.status is AppointmentStatus.SCHEDULED and a.starts_at > NOW for a in with_engineer)
    held = [a for a in with_engineer if a.status is AppointmentStatus.HELD]
    assert held
    blocks = defaultdict(list)
    for e in rows["time_entries"]:
        if e.kind is TimeKind.SCHEDULED_BLOCK:
            blocks[e.appointment_id].append(e)
    for a in held:
        assert sorted((e.person_id == engineer, e.extra_engineer) for e in blocks[a.id]) == [
            (False, False),
            (True, True),
        ]
        assert all((e.started_at, e.ended_at) == (a.starts_at, a.ends_at) for e in blocks[a.id])
    assert not any(
        e.extra_engineer for a, es in blocks.items() for e in es if a not in {h.id for h in held}
    )

    first = min(held, key=lambda a: a.starts_at)
    day = first.starts_at.astimezone(ZoneInfo(DEMO_TIMEZONE)).date()
    with Session(demo_db.engine) as s:
        view = read_statement(s, first.organisation_id, day, day, now=NOW)
        sheet = read_timesheet(s, first.tenant_id, engineer, *week_of(day))
    (billed_day,) = [d for d in view.days if d.day == day]
    minutes = int((first.ends_at - first.starts_at).total_seconds() // 60)
    assert billed_day.extra_engineer_minutes >= minutes
    assert billed_day.scheduled >= 2 * minutes
    assert any(e.extra_engineer and e.kind == "scheduled block" for e in view.entries)
    mine = [e for e in sheet.entries if e.extra_engineer]
    assert mine
    assert all(e.kind is WorkKind.SCHEDULED_BLOCK for e in mine)

    # The engineer's "my week" opens on the demo's current week: a delivered call is in it.
    zone = ZoneInfo(DEMO_TIMEZONE)
    monday, sunday = week_of(NOW.astimezone(zone).date())
    this_week = [
        a
        for a in rows["appointments"]
        if a.status is AppointmentStatus.HELD
        and monday <= a.starts_at.astimezone(zone).date() <= sunday
    ]
    assert any(a.extra_engineer_id == engineer for a in this_week)


def test_rows_are_stamped_for_sync(demo_db: DemoDatabase) -> None:
    rows = demo_db.rows
    (counter,) = rows["tenant_counters"]
    synced = [
        "users",
        "calendars",
        "plans",
        "organisations",
        "contacts",
        "tickets",
        "ticket_events",
        "waiting_periods",
        "hour_blocks",
        "appointments",
        "time_entries",
    ]
    per_version: Counter[int] = Counter()
    for name in synced:
        for row in rows[name]:
            assert 0 < row.version <= counter.version
            assert not row.deleted
            per_version[row.version] += 1
    assert max(per_version.values()) <= VERSION_BATCH
    assert max(per_version) == counter.version
    # Parents come in earlier (or the same) versions than what refers to them, so a pull that
    # pages by version never receives a row before the row it points at.
    tickets = {t.id: t.version for t in rows["tickets"]}
    orgs = {o.id: o.version for o in rows["organisations"]}
    assert all(e.version >= tickets[e.ticket_id] for e in rows["ticket_events"])
    assert all(t.version >= orgs[t.organisation_id] for t in rows["tickets"])
    assert all(c.version >= orgs[c.organisation_id] for c in rows["contacts"])


def test_generation_is_fast(demo_db: DemoDatabase) -> None:
    # A few seconds on a laptop; the bound leaves room for slow CI machines.
    assert demo_db.seconds < 30


def test_demo_users_can_sign_in(demo_db: DemoDatabase) -> None:
    app = create_app(ServerSettings(database_url=demo_db.url))
    try:
        with TestClient(app) as client:
            roles = set()
            # One per role: argon2 verification is deliberately slow, and every demo user is
            # made the same way.
            for user in {u.role: u for u in reversed(DEMO_USERS)}.values():
                response = client.post(
                    "/api/v1/login", json={"username": user.username, "password": user.password}
                )
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["user"]["role"] == user.role.value
                roles.add(body["user"]["role"])
                me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
                assert me.json()["username"] == user.username
            assert roles == {r.value for r in Role}
            wrong = client.post(
                "/api/v1/login", json={"username": "lead", "password": "not-the-password"}
            )
            assert wrong.status_code == 401
    finally:
        app.state.engine.dispose()


def test_every_event_the_demo_writes_reads_right_in_the_history(demo_db: DemoDatabase) -> None:
    """Issue 15: the demo wrote other keys than the ticket view read, so every demo history
    said "Status: ? -> ?", "Unassigned (was nobody)" and "No extra charges" above a charges
    message. Every event, rendered as the ticket panel does, names what happened."""
    rows = demo_db.rows
    names = {u.id: u.display_name for u in rows["users"]}
    contacts = {str(c.id): c.name for c in rows["contacts"]}
    tickets = {t.id: t for t in rows["tickets"]}
    seen: set[EventKind] = set()
    for e in rows["ticket_events"]:
        item = describe_event(e, names, contacts)
        seen.add(e.kind)
        where = f"{e.kind} {e.data}: {item.title!r}"
        assert "?" not in item.title, where
        assert "unknown" not in item.title, where
        assert "someone" not in item.title, where
        assert "a contact" not in item.title, where
        if e.kind is EventKind.ASSIGNMENT:
            assert item.title.startswith(("Assigned to ", "Reassigned from ")), where
        if e.kind is EventKind.EXTRA_CHARGES:
            assert item.title == f"Extra charges apply (estimate {e.data['estimate']})", where
        if e.kind is EventKind.STATUS:
            assert item.title != "Status: unknown → unknown", where
        if e.kind is EventKind.REPLY and e.author_id is None:
            requester = contacts[str(tickets[e.ticket_id].requester_id)]
            assert item.title == f"Reply from {requester}", where
    assert seen == set(EventKind) - {EventKind.FIELD_CHANGE}
