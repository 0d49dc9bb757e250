"""How many support conversations an organisation opened in a calendar year (seed 000).

The one definition of the allowance's count, used by the mutator that opens a ticket, the
server's organisation detail and the desktop's contact panel. The year is the team's calendar
year, bounded by :func:`agentdesk.policy.entitlements.calendar_year_bounds`; the count is an
indexed range read on ``ix_tickets_organisation_arrived``, so its cost follows that year's
tickets, not the organisation's whole history. Deleted tickets and redirected requests (never
worked) use none of the allowance.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from ..models import Ticket, TicketStatus
from ..policy import entitlements

__all__ = [
    "conversations_in_year",
    "conversations_in_year_by_organisation",
    "conversations_this_year",
]


def conversations_in_year(
    session: Session,
    organisation_id: uuid.UUID,
    year: int,
    tz: str,
    *,
    exclude: uuid.UUID | None = None,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> int:
    """Conversations ``organisation_id`` opened in calendar ``year`` of time zone ``tz``.

    ``exclude``: a ticket not to count (the one being opened). ``before``: count only tickets
    that arrived before this ``(arrived_at, id)``, ties broken by id, so two tickets that arrived
    in the same microsecond still get distinct positions in the year's order.
    Raises :class:`~agentdesk.policy.errors.PolicyError` for an unknown zone or a bad year.
    """
    stmt = (
        select(func.count())
        .select_from(Ticket)
        .where(Ticket.organisation_id == organisation_id, *_counted_in_year(year, tz))
    )
    if exclude is not None:
        stmt = stmt.where(Ticket.id != exclude)
    if before is not None:
        at, ticket_id = before
        stmt = stmt.where(
            or_(Ticket.arrived_at < at, and_(Ticket.arrived_at == at, Ticket.id < ticket_id))
        )
    return int(session.scalar(stmt) or 0)


def _counted_in_year(year: int, tz: str) -> list[ColumnElement[bool]]:
    """The tickets that use a year's allowance: the rule both counts below apply."""
    start, end = entitlements.calendar_year_bounds(year, tz)
    clauses = [
        Ticket.deleted.is_(False),
        Ticket.status != TicketStatus.REDIRECTED,
        Ticket.arrived_at >= start,
    ]
    if end is not None:
        clauses.append(Ticket.arrived_at < end)
    return clauses


def conversations_in_year_by_organisation(
    session: Session,
    organisations: Select[Any] | Sequence[uuid.UUID],
    year: int,
    tz: str,
    *,
    tickets: Sequence[uuid.UUID] | None = None,
) -> dict[uuid.UUID, int]:
    """:func:`conversations_in_year` for many organisations in one grouped query (the team
    lead's allowance figures): ``organisations`` is a list of ids or a SELECT of them.
    Organisations that opened none are absent from the answer.

    ``tickets``: count only those (what some changed tickets contribute, for the dashboard's
    incremental refresh); ``organisations`` must then be a list. The read is driven by the
    tickets' primary key and the organisations are picked from its few rows: with an
    organisation term the planner would walk every organisation's year instead."""
    query = select(Ticket.organisation_id, func.count()).where(*_counted_in_year(year, tz))
    if tickets is None:
        query = query.where(Ticket.organisation_id.in_(organisations))
        return {org: int(n) for org, n in session.execute(query.group_by(Ticket.organisation_id))}
    if not isinstance(organisations, Sequence):
        raise TypeError("counting some tickets needs the organisations as a list")
    wanted = set(organisations)
    query = query.where(Ticket.id.in_(tickets)).group_by(Ticket.organisation_id)
    return {org: int(n) for org, n in session.execute(query) if org in wanted}


def conversations_this_year(
    session: Session,
    organisation_id: uuid.UUID,
    now: datetime,
    tz: str,
    *,
    exclude: uuid.UUID | None = None,
) -> int:
    """Conversations in the calendar year that ``now`` falls in on the team's wall clock."""
    year = entitlements.calendar_year_of(now, tz)
    return conversations_in_year(session, organisation_id, year, tz, exclude=exclude)
