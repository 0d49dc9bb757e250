"""Tickets from before the stored SLA instants existed get them: after a schema upgrade the
server performs, and from ``agentdesk server backfill-sla``; versions are stamped so desktops
pull the values, and a second run changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from agentdesk.cli import main
from agentdesk.models import (
    Calendar,
    Organisation,
    Plan,
    Ticket,
    TicketStatus,
    WaitingPeriod,
)
from agentdesk.models.db import make_engine
from agentdesk.models.migrate import downgrade
from agentdesk.policy.calendar import BusinessCalendar
from agentdesk.policy.plans import seed_calendars
from agentdesk.policy.sla import response_business_time, response_instants
from agentdesk.server.app import create_app
from agentdesk.server.demo import generate_demo
from agentdesk.server.settings import ServerSettings

Stored = dict[uuid.UUID, tuple[datetime | None, datetime | None, int | None]]


def _stored(engine: Engine) -> tuple[Stored, dict[uuid.UUID, int]]:
    with Session(engine) as s:
        rows = s.execute(
            select(
                Ticket.id,
                Ticket.sla_due_at,
                Ticket.sla_risk_at,
                Ticket.first_response_business_s,
                Ticket.version,
            )
        ).all()
    return (
        {r.id: (r.sla_due_at, r.sla_risk_at, r.first_response_business_s) for r in rows},
        {r.id: r.version for r in rows},
    )


def _reference(engine: Engine) -> Stored:
    """Each ticket's instants recomputed straight from the rules, from its stored inputs."""
    out: Stored = {}
    with Session(engine) as s:
        for ticket in s.scalars(select(Ticket)):
            if ticket.status is TicketStatus.REDIRECTED:
                out[ticket.id] = (None, None, None)
                continue
            plan_row = s.get_one(Plan, s.get_one(Organisation, ticket.organisation_id).plan_id)
            calendar: BusinessCalendar = (
                s.get_one(Calendar, plan_row.calendar_id).to_policy()
                if plan_row.calendar_id is not None
                else BusinessCalendar.from_dict(seed_calendars()["office"][1])
            )  # seed 002
            pauses = [
                (w.started_at, w.ended_at)
                for w in s.scalars(
                    select(WaitingPeriod).where(
                        WaitingPeriod.ticket_id == ticket.id, WaitingPeriod.deleted.is_(False)
                    )
                )
            ]
            plan = plan_row.to_policy()
            found = response_instants(
                ticket.arrived_at, ticket.urgency, plan, calendar, pauses, ticket.first_response_at
            )
            if found is None:
                out[ticket.id] = (None, None, None)
                continue
            took = (
                None
                if ticket.first_response_at is None
                else int(
                    response_business_time(
                        ticket.arrived_at,
                        ticket.first_response_at,
                        found[0],
                        ticket.urgency,
                        plan,
                        calendar,
                    ).total_seconds()
                )
            )
            out[ticket.id] = (found[0], found[1], took)
    return out


def _forget(engine: Engine) -> None:
    """What a database upgraded from before the columns holds: NULL everywhere."""
    with engine.begin() as conn:
        conn.execute(
            update(Ticket).values(sla_due_at=None, sla_risk_at=None, first_response_business_s=None)
        )


@pytest.fixture
def demo(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    generate_demo(engine, tickets=150, seed=7)
    yield engine
    engine.dispose()


def test_backfill_command_computes_what_the_rules_say_once(
    demo: Engine,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reference = _reference(demo)
    computed = {k: v for k, v in reference.items() if v != (None, None, None)}
    assert len(computed) > 100  # the demo answers, pauses and redirects some of them
    assert any(v[2] is None for v in computed.values())  # some still unanswered
    _forget(demo)
    _, versions_before = _stored(demo)
    assert main(["server", "backfill-sla", "--database-url", database_url]) == 0
    assert f"computed for {len(computed)} ticket(s)" in capsys.readouterr().out
    stored, versions = _stored(demo)
    assert stored == reference
    top = max(versions_before.values())
    assert all(versions[t] > top for t in computed)  # desktops pull them
    assert all(versions[t] == versions_before[t] for t in reference if t not in computed)
    # Again: nothing to do, nothing stamped.
    assert main(["server", "backfill-sla", "--database-url", database_url]) == 0
    assert "computed for 0 ticket(s)" in capsys.readouterr().out
    assert _stored(demo) == (stored, versions)


def test_the_server_backfills_after_a_schema_upgrade(demo: Engine, database_url: str) -> None:
    reference = _reference(demo)
    _forget(demo)
    downgrade(demo, "-1")  # any upgrade to come; the columns stay
    app = create_app(ServerSettings(database_url=database_url))  # migrates on start
    app.state.engine.dispose()
    assert _stored(demo)[0] == reference
    # A start with nothing to upgrade does not look at the tickets.
    _forget(demo)
    app = create_app(ServerSettings(database_url=database_url))
    app.state.engine.dispose()
    with Session(demo) as s:
        assert s.scalar(select(func.count()).where(Ticket.sla_due_at.is_not(None))) == 0
