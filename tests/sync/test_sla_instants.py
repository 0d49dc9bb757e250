"""The stored SLA instants (``sla_due_at`` / ``sla_risk_at``): every input change recomputes
them through the mutators, admin changes recompute the open tickets they touch, and they travel
on the sync wire like any other column. Each expectation is recomputed from
:func:`agentdesk.policy.sla.sla_status` over the same rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from agentdesk.models import Calendar, Organisation, Plan, Ticket, TicketStatus, WaitingPeriod
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from agentdesk.policy.calendar import BusinessCalendar
from agentdesk.policy.sla import sla_status
from agentdesk.sync.mutators import refresh_open_sla
from agentdesk.sync.rows import row_to_wire, wire_to_values
from tests.sync.world import World, build_world


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    engine = make_engine(database_url)
    yield build_world(make_session_factory(engine))
    engine.dispose()


def _new(w: World, requester: str = "ann", org: str = "globex", urgency: int = 2) -> uuid.UUID:
    tid = uuid.uuid4()
    w.run(
        "agent",
        "create_ticket",
        ticket_id=str(tid),
        subject="Checkout is slow",
        channel="portal",
        organisation_id=str(w.orgs[org]),
        requester_id=str(w.contacts[requester]),
        stated_urgency=urgency,
    )
    return tid


def _expected(w: World, tid: uuid.UUID) -> tuple[Ticket, object]:
    """The ticket and sla_status's due time for it (None while a wait is open)."""
    with session_scope(w.sessions) as s:
        t = s.get_one(Ticket, tid)
        org = s.get_one(Organisation, t.organisation_id)
        plan = s.get_one(Plan, org.plan_id)
        cal = BusinessCalendar.from_dict(s.get_one(Calendar, plan.calendar_id).data)
        waits = [
            (p.started_at, p.ended_at)
            for p in s.scalars(select(WaitingPeriod).where(WaitingPeriod.ticket_id == tid))
        ]
        s.expunge(t)
        if t.status is TicketStatus.REDIRECTED:
            return t, None  # never worked: nothing to count down
        if any(end is None for _, end in waits) and t.first_response_at is None:
            return t, None
        status = sla_status(
            t.arrived_at,
            t.urgency,
            plan.to_policy(),
            cal,
            w.now + timedelta(days=30),
            t.first_response_at,
            waits,
        )
        return t, status.due


def _check(w: World, tid: uuid.UUID) -> Ticket:
    ticket, due = _expected(w, tid)
    assert ticket.sla_due_at == due
    if due is None:
        assert ticket.sla_risk_at is None
    else:
        assert ticket.sla_risk_at is not None
        assert isinstance(due, datetime)
        assert ticket.sla_risk_at <= due
    return ticket


def test_every_input_change_recomputes_the_instants(world: World) -> None:
    tid = _new(world, urgency=4)
    created = _check(world, tid)
    assert created.sla_due_at is not None
    world.run("coordinator", "triage_ticket", ticket_id=str(tid), tier=1)
    triaged = _check(world, tid)
    assert triaged.sla_due_at is not None
    assert triaged.sla_due_at < created.sla_due_at
    world.run(
        "coordinator",
        "assign_ticket",
        ticket_id=str(tid),
        assignee_id=str(world.users["agent"]),
        expected_assignee_id=None,
    )
    world.run("agent", "change_status", ticket_id=str(tid), status="waiting_on_customer")
    assert _check(world, tid).sla_due_at is None  # paused: no fixed instant
    world.now += timedelta(hours=2)
    world.run("agent", "change_status", ticket_id=str(tid), status="in_progress")
    resumed = _check(world, tid)
    assert resumed.sla_due_at is not None
    assert resumed.sla_due_at > triaged.sla_due_at
    world.now += timedelta(minutes=5)
    world.run("agent", "add_note", ticket_id=str(tid), body="On it", kind="reply")
    answered = _check(world, tid)
    assert answered.first_response_at == world.now
    # Answered 2 h 5 min after arrival (Tuesday morning in New York) with a 2 h wait between:
    # the pause does not count, so the response took 5 business minutes.
    assert answered.first_response_business_s == 300


def test_stated_urgency_change_before_triage_and_redirect(world: World) -> None:
    tid = _new(world, urgency=3)
    before = _check(world, tid)
    world.run("agent", "update_ticket", ticket_id=str(tid), stated_urgency=1)
    after = _check(world, tid)
    assert after.sla_due_at is not None
    assert before.sla_due_at is not None
    assert after.sla_due_at < before.sla_due_at
    redirected = _new(world, requester="cy")
    t = _check(world, redirected)
    assert t.status is TicketStatus.REDIRECTED
    assert t.sla_due_at is None


def test_plan_and_calendar_changes_recompute_open_unanswered_tickets(world: World) -> None:
    tid = _new(world, urgency=2)
    answered = _new(world, urgency=2)
    world.run("coordinator", "triage_ticket", ticket_id=str(answered), tier=2)
    world.run(
        "coordinator",
        "assign_ticket",
        ticket_id=str(answered),
        assignee_id=str(world.users["agent"]),
        expected_assignee_id=None,
    )
    world.run("agent", "tell_customer", ticket_id=str(answered), message="Sam has it")
    kept = _ticket_due(world, answered)
    with session_scope(world.sessions) as s:
        cal = s.scalar(select(Calendar))
        assert cal is not None
        cal.data = {
            "tz": "UTC",
            "hours": {
                d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
            },
            "holidays": [],
        }
        s.flush()
        plans = list(s.scalars(select(Plan.id).where(Plan.calendar_id == cal.id)))
        assert refresh_open_sla(s, world.tenant, plan_ids=plans) >= 1
    _check(world, tid)
    assert _ticket_due(world, answered) == kept  # answered: held to the target it had


def _ticket_due(w: World, tid: uuid.UUID) -> object:
    with session_scope(w.sessions) as s:
        return s.get_one(Ticket, tid).sla_due_at


def test_instants_travel_on_the_wire(world: World) -> None:
    tid = _new(world)
    with session_scope(world.sessions) as s:
        t = s.get_one(Ticket, tid)
        wire = row_to_wire(t)
        assert wire["values"]["sla_due_at"] == t.sla_due_at.isoformat()  # type: ignore[union-attr]
        values = wire_to_values("tickets", wire)
        assert values["sla_due_at"] == t.sla_due_at
        assert values["sla_risk_at"] == t.sla_risk_at
