"""One person's day at a glance: what they handled, their first responses, what is at risk.

The workstation's status bar shows it (issue 15: "the way a good workstation tells a person how
their day is going"). Three indexed reads, no loop over tickets:

* **Handled today**: the distinct tickets the person changed since the start of their day (a
  reply, a note, a status change, a triage...): ``ix_ticket_events_author_at``.
* **First responses today, and how many in time**: tickets assigned to the person whose first
  response was given since the start of the day, compared with the due instant the mutators
  store beside it (the dashboard's "met" rule). The ticket does not record who answered, so
  the assignee stands for it: the person whose queue the ticket is in.
* **At risk and overdue in my queue**: the person's unanswered open tickets, by the same range
  comparisons as the dashboard's SLA states (:func:`agentdesk.queries.dashboard.sla_clauses`).

"The start of the day" is the caller's: the person's own midnight, on the clock they chose.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, false, func, select
from sqlalchemy.orm import Session

from ..models import Ticket, TicketEvent
from .dashboard import OPEN, SlaBucket, sla_clauses

__all__ = ["AgentStats", "agent_stats"]


@dataclass(frozen=True)
class AgentStats:
    handled_today: int
    responses_today: int
    responses_met: int
    at_risk: int
    overdue: int

    def text(self) -> str:
        """The status bar's words: "Today: 4 handled · 3/3 first responses in time · 1 at risk"."""
        parts = [f"Today: {self.handled_today} handled"]
        if self.responses_today:
            parts.append(f"{self.responses_met}/{self.responses_today} first responses in time")
        if self.at_risk:
            parts.append(f"{self.at_risk} at risk")
        if self.overdue:
            parts.append(f"{self.overdue} overdue")
        if not (self.at_risk or self.overdue):
            parts.append("nothing at risk in my queue")
        return " · ".join(parts)


def agent_stats(
    session: Session, user_id: uuid.UUID, now: datetime, day_start: datetime
) -> AgentStats:
    """``user_id``'s figures from ``day_start`` to ``now`` (aware instants)."""
    e = TicketEvent.__table__.c
    handled = (
        session.scalar(
            select(func.count(func.distinct(e.ticket_id))).where(
                e.author_id == user_id, e.at >= day_start, e.at <= now, e.deleted == false()
            )
        )
        or 0
    )
    t = Ticket.__table__.c
    mine = and_(t.assignee_id == user_id, t.deleted == false())
    met = case((t.first_response_at <= t.sla_due_at, 1), else_=0)
    responses, in_time = session.execute(
        select(func.count(), func.coalesce(func.sum(met), 0)).where(
            mine,
            t.first_response_at >= day_start,
            t.first_response_at <= now,
            t.sla_due_at.is_not(None),
        )
    ).one()
    # One pass over the person's open tickets counts both states.
    risk = case((and_(*sla_clauses(SlaBucket.AT_RISK, now)), 1), else_=0)
    late = case((and_(*sla_clauses(SlaBucket.BREACHED, now)), 1), else_=0)
    at_risk, overdue = session.execute(
        select(func.coalesce(func.sum(risk), 0), func.coalesce(func.sum(late), 0)).where(
            mine, t.status.in_(OPEN), t.first_response_at.is_(None)
        )
    ).one()
    return AgentStats(int(handled), int(responses), int(in_time), int(at_risk), int(overdue))
