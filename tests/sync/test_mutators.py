"""Every mutator through the rules engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from agentdesk.models import (
    Contact,
    EventKind,
    Role,
    RunningTimer,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    TimeEntry,
    TimeKind,
    WaitingPeriod,
)
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from agentdesk.policy.entitlements import calendar_year_of, conversations_in_year
from agentdesk.sync.mutators import MutationContext, MutationRejected
from agentdesk.sync.mutators.tickets import _conversations_this_year
from tests.sync.world import World, build_world


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    engine = make_engine(database_url)
    yield build_world(make_session_factory(engine))
    engine.dispose()


def _new_ticket(w: World, requester: str = "ann", org: str = "globex", **kw: object) -> uuid.UUID:
    tid = uuid.uuid4()
    args: dict[str, object] = dict(
        ticket_id=str(tid),
        subject="Checkout is down",
        channel="portal",
        organisation_id=str(w.orgs[org]),
        requester_id=str(w.contacts[requester]),
        stated_urgency=1,
    )
    args.update(kw)
    w.run("agent", "create_ticket", **args)
    return tid


def _ticket(w: World, tid: uuid.UUID) -> Ticket:
    with session_scope(w.sessions) as s:
        return s.get_one(Ticket, tid)


def _events(w: World, tid: uuid.UUID) -> list[TicketEvent]:
    with session_scope(w.sessions) as s:
        return list(
            s.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == tid)
                .order_by(TicketEvent.at, TicketEvent.version, TicketEvent.seq)
            )
        )


def _rejected(w: World, who: str, name: str, **args: object) -> MutationRejected:
    with pytest.raises(MutationRejected) as exc:
        w.run(who, name, **args)
    return exc.value


def test_create_ticket_from_validated_contact(world: World) -> None:
    tid = _new_ticket(world)
    t = _ticket(world, tid)
    assert t.status is TicketStatus.NEW
    assert t.urgency == 1
    assert t.plan_rank == 1  # Standard
    assert t.arrived_at == world.now  # the runner's clock, never the client's
    assert t.version > 0
    assert [e.kind for e in _events(world, tid)] == [EventKind.CREATED]


def test_request_from_unvalidated_contact_is_redirected_and_recorded(world: World) -> None:
    tid = _new_ticket(world, requester="cy")
    t = _ticket(world, tid)
    assert t.status is TicketStatus.REDIRECTED
    kinds = [e.kind for e in _events(world, tid)]
    assert EventKind.REDIRECT in kinds
    assert EventKind.NOTIFICATION in kinds
    redirect = next(e for e in _events(world, tid) if e.kind is EventKind.REDIRECT)
    assert set(redirect.data["notify"]) == {str(world.contacts["ann"]), str(world.contacts["bo"])}


def test_channel_outside_plan_is_recorded_with_the_reason(world: World) -> None:
    tid = _new_ticket(world, channel="phone")
    notes = [e for e in _events(world, tid) if e.kind is EventKind.NOTE]
    assert len(notes) == 1
    assert notes[0].data["entitlement"] == "channel_not_in_plan"
    assert "Enterprise" in notes[0].body or "phone" in notes[0].body.lower()


def test_basic_plan_allowance_is_checked(world: World) -> None:
    for _ in range(5):
        _new_ticket(world, requester="dee", org="initech")
    sixth = _new_ticket(world, requester="dee", org="initech")
    notes = [e for e in _events(world, sixth) if e.kind is EventKind.NOTE]
    assert [n.data["entitlement"] for n in notes] == ["allowance_used_up"]


def test_conversations_are_counted_in_the_teams_calendar_year(world: World) -> None:
    """Seed 000's yearly count, taken as an indexed range COUNT: the team's zone (New York)
    decides the year, and redirected tickets, deleted tickets and the new ticket itself do
    not count. The policy's per-arrival count is the oracle."""
    ny = ZoneInfo("America/New_York")

    def arrive(local: datetime, requester: str = "dee") -> uuid.UUID:
        world.now = local.astimezone(UTC)
        return _new_ticket(world, requester=requester, org="initech")

    arrive(datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=ny))  # 2024; 2025 in UTC
    arrive(datetime(2025, 1, 1, 0, 0, tzinfo=ny))  # the first instant of 2025
    arrive(datetime(2025, 12, 31, 23, 30, tzinfo=ny))  # 2025; already 2026 in UTC
    arrive(datetime(2026, 1, 1, 0, 0, tzinfo=ny))  # 2026
    redirected = arrive(datetime(2025, 6, 1, 12, tzinfo=ny), requester="eve")  # not validated
    deleted = arrive(datetime(2025, 6, 2, 12, tzinfo=ny))
    assert _ticket(world, redirected).status is TicketStatus.REDIRECTED
    with session_scope(world.sessions) as s:
        s.get_one(Ticket, deleted).deleted = True
    with session_scope(world.sessions) as s:
        rows = s.execute(
            select(Ticket.id, Ticket.arrived_at).where(
                Ticket.organisation_id == world.orgs["initech"],
                Ticket.deleted.is_(False),
                Ticket.status != TicketStatus.REDIRECTED,
            )
        ).all()
    counted_ids = {r.id for r in rows}
    assert redirected not in counted_ids
    assert deleted not in counted_ids

    def count(local: datetime, exclude: uuid.UUID | None = None) -> int:
        with session_scope(world.sessions) as s:
            ctx = MutationContext(
                session=s,
                tenant_id=world.tenant,
                actor_id=world.users["agent"],
                actor_role=Role.AGENT,
                now=local.astimezone(UTC),
                client_id=uuid.uuid4(),
                mutation_id=1,
                authoritative=True,
            )
            got = _conversations_this_year(ctx, world.orgs["initech"], exclude or uuid.uuid4())
        kept = [r.arrived_at for r in rows if r.id != exclude]
        year = calendar_year_of(local, "America/New_York")
        assert got == conversations_in_year(kept, year, "America/New_York")
        return got

    assert count(datetime(2024, 12, 31, 23, 59, tzinfo=ny)) == 1
    assert count(datetime(2025, 1, 1, 0, 0, tzinfo=ny)) == 2
    assert count(datetime(2025, 6, 1, tzinfo=ny)) == 2  # not the redirected or deleted one
    assert count(datetime(2025, 12, 31, 23, 59, tzinfo=ny)) == 2
    assert count(datetime(2026, 1, 1, 0, 0, tzinfo=ny)) == 1
    assert (
        count(
            datetime(2026, 1, 1, 0, 0, tzinfo=ny),
            exclude=next(r.id for r in rows if r.arrived_at.astimezone(ny).year == 2026),
        )
        == 0
    )


def test_triage_is_for_coordinators(world: World) -> None:
    tid = _new_ticket(world, stated_urgency=4)
    assert _rejected(world, "agent", "triage_ticket", ticket_id=str(tid), tier=2).code == (
        "forbidden"
    )
    world.run("coordinator", "triage_ticket", ticket_id=str(tid), tier=2, level="L2")
    t = _ticket(world, tid)
    assert (t.status, t.tier, t.urgency, t.level.value) == (TicketStatus.TRIAGED, 2, 2, "L2")


def test_assignment_is_check_and_set(world: World) -> None:
    tid = _new_ticket(world)
    world.run(
        "agent",
        "assign_ticket",
        ticket_id=str(tid),
        assignee_id=str(world.users["agent"]),
        expected_assignee_id=None,
    )
    # agent2 saw the ticket unassigned (offline) and tries to grab it too: one winner.
    err = _rejected(
        world,
        "agent2",
        "assign_ticket",
        ticket_id=str(tid),
        assignee_id=str(world.users["agent2"]),
        expected_assignee_id=None,
    )
    assert err.code == "conflict"
    assert "Agent" in err.message
    assert _ticket(world, tid).assignee_id == world.users["agent"]
    # Agents cannot hand tickets to others; coordinators can.
    err = _rejected(
        world,
        "agent",
        "assign_ticket",
        ticket_id=str(tid),
        assignee_id=str(world.users["agent2"]),
        expected_assignee_id=str(world.users["agent"]),
    )
    assert err.code == "forbidden"
    world.run(
        "coordinator",
        "assign_ticket",
        ticket_id=str(tid),
        assignee_id=str(world.users["agent2"]),
        expected_assignee_id=str(world.users["agent"]),
    )
    assert _ticket(world, tid).assignee_id == world.users["agent2"]


def test_the_seed_workflow_end_to_end(world: World) -> None:
    tid = _new_ticket(world)
    err = _rejected(world, "agent", "tell_customer", ticket_id=str(tid), message="On it")
    assert err.field == "assignee_id"
    world.run("coordinator", "triage_ticket", ticket_id=str(tid), tier=1)
    world.run(
        "agent",
        "assign_ticket",
        ticket_id=str(tid),
        assignee_id=str(world.users["agent"]),
        expected_assignee_id=None,
    )
    world.now += timedelta(minutes=10)
    world.run(
        "agent",
        "tell_customer",
        ticket_id=str(tid),
        message="Ann here, I have your ticket; next I will check the payment logs.",
    )
    t = _ticket(world, tid)
    assert t.status is TicketStatus.IN_PROGRESS
    assert t.first_response_at == world.now

    world.run("agent", "change_status", ticket_id=str(tid), status="waiting_on_customer")
    world.now += timedelta(hours=2)
    world.run("agent", "change_status", ticket_id=str(tid), status="in_progress")
    with session_scope(world.sessions) as s:
        periods = list(s.scalars(select(WaitingPeriod).where(WaitingPeriod.ticket_id == tid)))
    assert len(periods) == 1
    assert periods[0].ended_at is not None
    assert periods[0].ended_at - periods[0].started_at == timedelta(hours=2)

    world.run("agent", "change_status", ticket_id=str(tid), status="resolved", note="Fixed")
    t = _ticket(world, tid)
    assert t.status is TicketStatus.RESOLVED
    assert t.resolved_at == world.now
    assert _events(world, tid)[-1].kind is EventKind.NOTIFICATION
    resolved_at = world.now
    world.now += timedelta(days=2)
    world.run("agent", "change_status", ticket_id=str(tid), status="closed")
    assert _ticket(world, tid).resolved_at == resolved_at  # closing keeps the resolution time
    err = _rejected(world, "agent", "change_status", ticket_id=str(tid), status="in_progress")
    assert err.code == "invalid_transition"
    assert "closed" in err.message


def test_reopening_clears_the_resolution(world: World) -> None:
    tid = _new_ticket(world)
    world.run("coordinator", "triage_ticket", ticket_id=str(tid), tier=3)
    world.run("agent", "change_status", ticket_id=str(tid), status="resolved")
    world.run("agent", "change_status", ticket_id=str(tid), status="in_progress")
    t = _ticket(world, tid)
    assert t.status is TicketStatus.IN_PROGRESS
    assert t.resolved_at is None


def test_untriaged_ticket_cannot_be_resolved(world: World) -> None:
    tid = _new_ticket(world)
    err = _rejected(world, "agent", "change_status", ticket_id=str(tid), status="resolved")
    assert err.code == "invalid_transition"
    assert "triaged" in err.message


def test_field_edits_keep_the_overwritten_value(world: World) -> None:
    tid = _new_ticket(world)
    world.run("agent", "update_ticket", ticket_id=str(tid), subject="Checkout down in EU")
    world.run("agent2", "update_ticket", ticket_id=str(tid), subject="Checkout down everywhere")
    assert _ticket(world, tid).subject == "Checkout down everywhere"
    changes = [e.data for e in _events(world, tid) if e.kind is EventKind.FIELD_CHANGE]
    assert [c["old"] for c in changes] == ["Checkout is down", "Checkout down in EU"]


def test_escalation_and_timer_billability(world: World) -> None:
    tid = _new_ticket(world)
    start = world.now - timedelta(minutes=20)
    timer = uuid.uuid4()
    world.run(
        "consultant",
        "start_timer",
        timer_id=str(timer),
        organisation_id=str(world.orgs["globex"]),
        ticket_id=str(tid),
        started_at=start.isoformat(),
    )
    with session_scope(world.sessions) as s:
        assert s.get_one(RunningTimer, timer).billable is False  # general support
    err = _rejected(
        world,
        "consultant",
        "start_timer",
        timer_id=str(uuid.uuid4()),
        organisation_id=str(world.orgs["globex"]),
        started_at=start.isoformat(),
    )
    assert err.code == "conflict"
    entry = uuid.uuid4()
    world.run(
        "consultant",
        "stop_timer",
        timer_id=str(timer),
        entry_id=str(entry),
        ended_at=world.now.isoformat(),
    )
    world.run("agent", "escalate_ticket", ticket_id=str(tid))
    assert _ticket(world, tid).kind is TicketKind.ONE_ON_ONE
    assert _ticket(world, tid).escalated_at == world.now
    timer2 = uuid.uuid4()
    world.run(
        "consultant",
        "start_timer",
        timer_id=str(timer2),
        organisation_id=str(world.orgs["globex"]),
        ticket_id=str(tid),
        started_at=world.now.isoformat(),
    )
    with session_scope(world.sessions) as s:
        assert s.get_one(RunningTimer, timer2).billable is True
        e = s.get_one(TimeEntry, entry)
        assert (e.started_at, e.ended_at, e.billable) == (start, world.now, False)
        assert s.get_one(RunningTimer, timer).deleted is True
    assert _rejected(
        world,
        "consultant2",
        "stop_timer",
        timer_id=str(timer2),
        entry_id=str(uuid.uuid4()),
        ended_at=world.now.isoformat(),
    ).code == ("forbidden")


def test_timer_refuses_future_and_naive_times(world: World) -> None:
    future = world.now + timedelta(hours=1)
    err = _rejected(
        world,
        "consultant",
        "start_timer",
        timer_id=str(uuid.uuid4()),
        organisation_id=str(world.orgs["globex"]),
        started_at=future.isoformat(),
    )
    assert err.field == "started_at"
    err = _rejected(
        world,
        "consultant",
        "start_timer",
        timer_id=str(uuid.uuid4()),
        organisation_id=str(world.orgs["globex"]),
        started_at="2026-03-03T09:00:00",
    )
    assert err.field == "started_at"
    assert "timezone" in err.message.lower() or "time zone" in err.message.lower()


def test_time_corrections_are_append_only(world: World) -> None:
    first, fix, void = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    base = dict(
        organisation_id=str(world.orgs["globex"]),
        started_at=(world.now - timedelta(hours=2)).isoformat(),
    )
    world.run(
        "consultant",
        "add_time_entry",
        entry_id=str(first),
        ended_at=(world.now - timedelta(hours=1)).isoformat(),
        **base,
    )
    world.run(
        "consultant",
        "add_time_entry",
        entry_id=str(fix),
        voids_id=str(first),
        ended_at=(world.now - timedelta(minutes=90)).isoformat(),
        **base,
    )
    err = _rejected(
        world,
        "consultant",
        "void_time_entry",
        entry_id=str(void),
        voids_id=str(first),
        note="duplicate",
    )
    assert err.code == "conflict"
    world.run(
        "consultant",
        "void_time_entry",
        entry_id=str(void),
        voids_id=str(fix),
        note="customer cancelled the work",
    )
    with session_scope(world.sessions) as s:
        entries = {e.id: e for e in s.scalars(select(TimeEntry))}
    assert len(entries) == 3
    assert entries[fix].voids_id == first
    assert entries[void].voids_id == fix
    assert entries[void].ended_at == entries[void].started_at
    # Agents cannot record time for someone else.
    err = _rejected(
        world,
        "agent",
        "add_time_entry",
        entry_id=str(uuid.uuid4()),
        person_id=str(world.users["consultant"]),
        ended_at=world.now.isoformat(),
        **base,
    )
    assert err.field == "person_id"


@pytest.mark.parametrize(
    ("notice", "fee"), [(timedelta(hours=24), 0), (timedelta(hours=23, minutes=59), 30)]
)
def test_late_cancellation_bills_thirty_minutes(world: World, notice: timedelta, fee: int) -> None:
    appt = uuid.uuid4()
    starts = world.now + notice
    world.run(
        "consultant",
        "schedule_appointment",
        appointment_id=str(appt),
        organisation_id=str(world.orgs["globex"]),
        starts_at=starts.isoformat(),
        ends_at=(starts + timedelta(hours=1)).isoformat(),
    )
    world.run("consultant", "cancel_appointment", appointment_id=str(appt))
    with session_scope(world.sessions) as s:
        fees = list(s.scalars(select(TimeEntry).where(TimeEntry.appointment_id == appt)))
    assert sum((e.ended_at - e.started_at) // timedelta(minutes=1) for e in fees) == fee
    assert all(e.kind is TimeKind.LATE_CANCELLATION for e in fees)
    assert (
        _rejected(world, "consultant", "cancel_appointment", appointment_id=str(appt)).code
        == "invalid"
    )


def test_hour_purchases_are_for_leads(world: World) -> None:
    args = dict(
        block_id=str(uuid.uuid4()),
        organisation_id=str(world.orgs["globex"]),
        minutes=600,
        purchased_at=world.now.isoformat(),
        price="1500.00",
    )
    assert _rejected(world, "consultant", "record_hour_purchase", **args).code == "forbidden"
    world.run("lead", "record_hour_purchase", **args)
    assert _rejected(world, "lead", "record_hour_purchase", **args).code == "duplicate"
    bad = dict(args, block_id=str(uuid.uuid4()), price="12.345")
    assert _rejected(world, "lead", "record_hour_purchase", **bad).field == "price"


def test_contact_allotment_validate_and_swap(world: World) -> None:
    # Standard includes 2 validated contacts: Ann and Bo hold them.
    err = _rejected(world, "agent", "validate_contact", contact_id=str(world.contacts["cy"]))
    assert err.code == "allotment_full"
    assert "Ann" in err.message
    assert "Bo" in err.message
    world.run(
        "agent", "swap_contact", out_id=str(world.contacts["bo"]), in_id=str(world.contacts["cy"])
    )
    with session_scope(world.sessions) as s:
        validated = {
            c.name
            for c in s.scalars(
                select(Contact).where(
                    Contact.organisation_id == world.orgs["globex"], Contact.validated.is_(True)
                )
            )
        }
        cy = s.get_one(Contact, world.contacts["cy"])
    assert validated == {"Ann", "Cy"}
    assert cy.validated_by_id == world.users["agent"]
    assert cy.validated_at == world.now
    err = _rejected(
        world,
        "agent",
        "swap_contact",
        out_id=str(world.contacts["ann"]),
        in_id=str(world.contacts["eve"]),
    )
    assert err.field == "in_id"


def test_redirect_refuses_validated_requesters(world: World) -> None:
    tid = _new_ticket(world)
    assert _rejected(world, "agent", "redirect_ticket", ticket_id=str(tid)).field == (
        "requester_id"
    )


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"subject": ""}, "subject"),
        ({"subject": "x" * 301}, "subject"),
        ({"subject": "bell\x07"}, "subject"),
        ({"stated_urgency": 5}, "stated_urgency"),
        ({"channel": "fax"}, "channel"),
        ({"colour": "red"}, "colour"),
        ({"organisation_id": "not-a-uuid"}, "organisation_id"),
    ],
)
def test_bad_arguments_are_rejected_naming_the_field(
    world: World, args: dict[str, object], field: str
) -> None:
    before = _count_tickets(world)
    full = dict(
        ticket_id=str(uuid.uuid4()),
        subject="ok",
        channel="portal",
        organisation_id=str(world.orgs["globex"]),
        requester_id=str(world.contacts["ann"]),
        stated_urgency=2,
    )
    full.update(args)
    err = _rejected(world, "agent", "create_ticket", **full)
    assert err.code == "invalid"
    assert err.field == field
    assert _count_tickets(world) == before


def test_sql_looking_text_is_stored_verbatim(world: World) -> None:
    subject = "'); DROP TABLE tickets; --"
    tid = _new_ticket(world, subject=subject)
    assert _ticket(world, tid).subject == subject


def test_unknown_mutation_and_cross_tenant_ids(world: World) -> None:
    assert _rejected(world, "agent", "drop_everything").code == "unknown_mutation"
    err = _rejected(world, "agent", "triage_ticket", ticket_id=str(uuid.uuid4()), tier=1)
    assert err.code in ("forbidden", "not_found")
    err = _rejected(world, "coordinator", "triage_ticket", ticket_id=str(uuid.uuid4()), tier=1)
    assert err.code == "not_found"


def test_extra_charges(world: World) -> None:
    tid = _new_ticket(world)
    world.run(
        "agent",
        "set_extra_charges",
        ticket_id=str(tid),
        applies=True,
        estimate="250.00",
        note="Custom SSO work is outside the support agreement",
    )
    t = _ticket(world, tid)
    assert t.extra_charges is True
    assert t.extra_charge_estimate == Decimal("250.00")
    assert (
        _rejected(
            world, "agent", "set_extra_charges", ticket_id=str(tid), applies=False, estimate="1.00"
        ).field
        == "estimate"
    )


def test_derived_ids_are_deterministic_uuid7s() -> None:
    """Rows a mutation creates get the same ids wherever it runs (replica and server, each with
    its own clock), and they are UUIDv7s dated by the mutation's client time."""
    from agentdesk.models import Role
    from agentdesk.sync.mutators import MutationContext

    client_time = datetime(2026, 3, 3, 14, 59, 58, tzinfo=UTC)

    def ids(now: datetime) -> list[uuid.UUID]:
        ctx = MutationContext(
            session=None,  # type: ignore[arg-type]  # derived ids touch no database
            tenant_id=uuid.UUID(int=1),
            actor_id=uuid.UUID(int=2),
            actor_role=Role.AGENT,
            now=now,
            client_id=uuid.UUID(int=3),
            mutation_id=41,
            authoritative=False,
            id_time=client_time,
        )
        return [ctx.derived_id() for _ in range(3)]

    on_desktop = ids(client_time + timedelta(seconds=1))
    on_server = ids(client_time + timedelta(minutes=7))
    assert on_desktop == on_server
    assert len(set(on_desktop)) == 3
    assert all(i.version == 7 for i in on_desktop)
    assert all(
        int.from_bytes(i.bytes[:6], "big") == int(client_time.timestamp() * 1000)
        for i in on_desktop
    )


def _count_tickets(w: World) -> int:
    with session_scope(w.sessions) as s:
        return len(list(s.scalars(select(Ticket.id))))


def test_world_clock_is_aware() -> None:
    assert World.__dataclass_fields__["now"].default == datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize("status", ["triaged", "in_progress", "waiting_on_customer"])
def test_a_switched_out_requester_is_not_helped_and_can_be_redirected(
    world: World, status: str
) -> None:
    """Seed 003 (issue 15): once the requester is no longer validated, replying, telling the
    customer and resolving are refused with the reason and the way on (the redirect), which
    works from every open status."""
    tid = _new_ticket(world)
    world.run("coordinator", "triage_ticket", ticket_id=str(tid), tier=2)
    world.run(
        "coordinator",
        "assign_ticket",
        ticket_id=str(tid),
        assignee_id=str(world.users["agent"]),
        expected_assignee_id=None,
    )
    if status != "triaged":
        world.run("agent", "tell_customer", ticket_id=str(tid), message="Olga has it.")
    if status == "waiting_on_customer":
        world.run("agent", "change_status", ticket_id=str(tid), status=status)
    world.run("lead", "invalidate_contact", contact_id=str(world.contacts["ann"]))
    before = len(_events(world, tid))

    for name, args, doing in (
        ("add_note", {"body": "Try this.", "kind": "reply"}, "reply to the customer"),
        ("tell_customer", {"message": "Olga has it."}, "tell the customer who has the ticket"),
        ("change_status", {"status": "resolved"}, "resolve the ticket"),
    ):
        if name == "tell_customer" and status != "triaged":
            continue
        exc = _rejected(world, "agent", name, ticket_id=str(tid), **args)
        assert exc.code == "not_validated"
        assert exc.field == "requester_id"
        assert exc.message.startswith(f"cannot {doing}: Ann is not a validated support contact")
        assert "Redirect the ticket to the organisation's validated contacts" in exc.message
    assert _ticket(world, tid).status.value == status
    assert len(_events(world, tid)) == before, "a refusal changes nothing"

    world.run("agent", "add_note", ticket_id=str(tid), body="Ann was switched out.")
    world.run("agent", "redirect_ticket", ticket_id=str(tid))
    assert _ticket(world, tid).status is TicketStatus.REDIRECTED
    kinds = [e.kind for e in _events(world, tid)]
    assert kinds[-3:] == [EventKind.STATUS, EventKind.REDIRECT, EventKind.NOTIFICATION]
