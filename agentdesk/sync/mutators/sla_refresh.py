"""Keeping a ticket's stored SLA instants current when what they depend on changes (urgency,
plan, first response, waiting periods), on whichever side runs the mutation.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ...models import (
    Calendar,
    Organisation,
    Plan,
    Ticket,
    TicketStatus,
    WaitingPeriod,
)
from ...policy import workflow
from ...policy.calendar import BusinessCalendar
from ...policy.errors import PolicyError
from ...policy.plans import seed_calendars
from ...policy.sla import response_business_time, response_instants

log = logging.getLogger(__name__)

_CALENDARS: dict[str, BusinessCalendar] = {}


def team_default_calendar() -> BusinessCalendar:
    """Seed 002's office hours: the calendar of a plan that names none (as the desktop's SLA
    column assumes)."""
    return _calendar_from(seed_calendars()["office"][1])


def _calendar_from(data: Mapping[str, Any]) -> BusinessCalendar:
    key = json.dumps(data, sort_keys=True)
    found = _CALENDARS.get(key)
    if found is None:
        if len(_CALENDARS) > 256:
            _CALENDARS.clear()
        found = _CALENDARS[key] = BusinessCalendar.from_dict(data)
    return found


def plan_calendar(session: Session, plan: Plan) -> BusinessCalendar:
    """The business calendar a plan's targets count in (the team default without one, or
    with a deleted or unreadable one: a broken calendar never stops a ticket)."""
    if plan.calendar_id is not None:
        row = session.get(Calendar, plan.calendar_id)
        if row is not None and not row.deleted:
            try:
                return _calendar_from(row.data)
            except PolicyError:
                pass
    return team_default_calendar()


def refresh_sla(session: Session, ticket: Ticket) -> None:
    """Recompute the ticket's stored first-response instants (``sla_due_at``,
    ``sla_risk_at``) from its inputs: arrival, tier (else stated urgency), the organisation's
    plan and its calendar, waiting periods, first response. Every mutator that changes one of
    them calls this; the server's admin routes call it for the tickets a plan or calendar
    change touches. Pending rows count (a push group may not have flushed them yet)."""
    if ticket.status is TicketStatus.REDIRECTED:
        ticket.sla_due_at = ticket.sla_risk_at = None
        return
    org = session.get(Organisation, ticket.organisation_id)
    plan_row = session.get(Plan, org.plan_id) if org is not None else None
    if plan_row is None:
        ticket.sla_due_at = ticket.sla_risk_at = None
        return
    found = [o for o in session.new if isinstance(o, WaitingPeriod) and o.ticket_id == ticket.id]
    if ticket not in session.new:  # a ticket not flushed yet has no stored periods
        with session.no_autoflush:
            found.extend(
                session.scalars(select(WaitingPeriod).where(WaitingPeriod.ticket_id == ticket.id))
            )
    pauses = {w.id: (w.started_at, w.ended_at) for w in found if not w.deleted}
    took = None
    try:
        plan, calendar = plan_row.to_policy(), plan_calendar(session, plan_row)
        instants = response_instants(
            ticket.arrived_at,
            ticket.urgency,
            plan,
            calendar,
            list(pauses.values()),
            ticket.first_response_at,
        )
        if instants is not None and ticket.first_response_at is not None:
            took = int(
                response_business_time(
                    ticket.arrived_at,
                    ticket.first_response_at,
                    instants[0],
                    ticket.urgency,
                    plan,
                    calendar,
                ).total_seconds()
            )
    except PolicyError:
        instants = None  # unreadable plan targets: no promise to count down
    ticket.sla_due_at, ticket.sla_risk_at = instants if instants is not None else (None, None)
    ticket.first_response_business_s = took


def refresh_open_sla(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    organisation_ids: Collection[uuid.UUID] = (),
    plan_ids: Collection[uuid.UUID] = (),
) -> int:
    """After a plan, calendar or organisation change (the server's admin routes): recompute
    the instants of the unanswered open tickets it affects. Answered and closed tickets keep
    the target they were held to when they were answered. Returns how many were recomputed."""
    if not organisation_ids and not plan_ids:
        return 0
    orgs = select(Organisation.id).where(
        Organisation.tenant_id == tenant_id,
        or_(Organisation.id.in_(list(organisation_ids)), Organisation.plan_id.in_(list(plan_ids))),
    )
    tickets = session.scalars(
        select(Ticket).where(
            Ticket.tenant_id == tenant_id,
            Ticket.organisation_id.in_(orgs),
            Ticket.deleted.is_(False),
            Ticket.first_response_at.is_(None),
            Ticket.status.in_([TicketStatus(s) for s in workflow.OPEN_STATUSES]),
        )
    ).all()
    for ticket in tickets:
        refresh_sla(session, ticket)
    return len(tickets)


# --------------------------------------------------------------------------- tickets
