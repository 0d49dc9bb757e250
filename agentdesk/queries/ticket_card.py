"""The ticket card: one ticket with everything around it, read from the replica.

:func:`load_ticket_view` reads one ticket with everything around it (requester, organisation,
plan and its calendar, waiting periods, history, team) in one short read of the replica: a
handful of indexed lookups. The ticket panel reads it on a worker (its background read), or
inline where a caller asks for the card at once. Everything is copied into frozen
dataclasses, so nothing a caller holds can lazy-load or go stale behind its back.
:func:`describe_event` words one history entry.

What the panel allows on the card (the refusals) is in :mod:`agentdesk.ui.ticket.view`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import (
    Calendar,
    Contact,
    EventKind,
    Level,
    Organisation,
    Plan,
    Role,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    User,
    WaitingPeriod,
)
from ..models import event_payloads as ev
from ..policy import workflow
from ..policy.calendar import BusinessCalendar
from ..policy.errors import PolicyError
from ..policy.plans import SupportPlan
from .formatting import money_text
from .queue import open_counts_by_assignee
from .sla_clock import LOADING, default_team_calendar

__all__ = [
    "HistoryItem",
    "Pause",
    "Person",
    "TicketView",
    "describe_event",
    "load_ticket_view",
]

Pause = tuple[datetime, datetime | None]


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    name: str
    role: Role
    active: bool
    #: Open tickets assigned to them (their load, shown when picking an assignee).
    load: int = 0


@dataclass(frozen=True)
class HistoryItem:
    """One readable line of the history. ``style``: "reply" (the customer sees it), "note"
    (internal), "notification" (sent on the agent's behalf) or "event" (a change)."""

    event_id: uuid.UUID
    kind: EventKind
    style: str
    who: str
    at: datetime
    title: str
    body: str


@dataclass(frozen=True)
class TicketView:
    id: uuid.UUID
    subject: str
    description: str
    channel: str
    status: TicketStatus
    kind: TicketKind
    level: Level
    tier: int | None
    stated_urgency: int
    assignee_id: uuid.UUID | None
    assignee_name: str | None
    requester_id: uuid.UUID
    requester_name: str
    requester_email: str
    requester_validated: bool
    organisation_id: uuid.UUID
    organisation_name: str
    plan_name: str | None
    plan: SupportPlan | None
    calendar: BusinessCalendar
    arrived_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    escalated_at: datetime | None
    extra_charges: bool
    extra_charge_estimate: Decimal | None
    pauses: tuple[Pause, ...] = ()
    history: tuple[HistoryItem, ...] = ()
    members: tuple[Person, ...] = ()
    #: Rows the ticket names that have not arrived yet ("requester", "organisation", "plan"):
    #: shown as loading, and no rule is asserted on them.
    missing: frozenset[str] = frozenset()

    @property
    def effective_tier(self) -> int:
        """The assessed tier, or the customer's stated urgency until triage (seed 003)."""
        return self.tier if self.tier is not None else self.stated_urgency

    @property
    def is_open(self) -> bool:
        return self.status.value in workflow.OPEN_STATUSES

    def member_name(self, user_id: uuid.UUID | None) -> str:
        for p in self.members:
            if p.id == user_id:
                return p.name
        return "nobody" if user_id is None else "someone"


# --------------------------------------------------------------------------------- loading


def load_ticket_view(session: Session, ticket_id: uuid.UUID) -> TicketView | None:
    """The ticket and its surroundings, or None when the replica does not have it (yet)."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or ticket.deleted:
        return None
    requester = session.get(Contact, ticket.requester_id)
    org = session.get(Organisation, ticket.organisation_id)
    plan_row = session.get(Plan, org.plan_id) if org is not None else None
    plan, calendar = _plan_and_calendar(session, plan_row)
    users = list(session.scalars(select(User).where(User.deleted.is_(False))))
    loads = open_counts_by_assignee(session)
    members = tuple(
        Person(u.id, u.display_name, u.role, u.active, loads.get(u.id, 0))
        for u in sorted(users, key=lambda u: (u.display_name.casefold(), u.id))
    )
    names = {u.id: u.display_name for u in users}
    contacts = {
        str(c.id): c.name
        for c in session.scalars(
            select(Contact).where(Contact.organisation_id == ticket.organisation_id)
        )
    }
    pauses = tuple(
        (w.started_at, w.ended_at)
        for w in session.scalars(
            select(WaitingPeriod)
            .where(WaitingPeriod.ticket_id == ticket.id, WaitingPeriod.deleted.is_(False))
            .order_by(WaitingPeriod.started_at)
        )
    )
    events = session.scalars(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.deleted.is_(False))
        .order_by(TicketEvent.at, TicketEvent.version, TicketEvent.seq, TicketEvent.id)
    )
    history = tuple(describe_event(e, names, contacts) for e in events)
    return TicketView(
        id=ticket.id,
        subject=ticket.subject,
        description=ticket.description,
        channel=ticket.channel,
        status=ticket.status,
        kind=ticket.kind,
        level=ticket.level,
        tier=ticket.tier,
        stated_urgency=ticket.stated_urgency,
        assignee_id=ticket.assignee_id,
        assignee_name=names.get(ticket.assignee_id) if ticket.assignee_id else None,
        requester_id=ticket.requester_id,
        requester_name=requester.name if requester is not None else LOADING,
        requester_email=requester.email if requester is not None else "",
        requester_validated=bool(requester is not None and requester.validated),
        organisation_id=ticket.organisation_id,
        organisation_name=org.name if org is not None else LOADING,
        plan_name=plan_row.name if plan_row is not None else None,
        plan=plan,
        calendar=calendar,
        arrived_at=ticket.arrived_at,
        first_response_at=ticket.first_response_at,
        resolved_at=ticket.resolved_at,
        escalated_at=ticket.escalated_at,
        extra_charges=ticket.extra_charges,
        extra_charge_estimate=ticket.extra_charge_estimate,
        pauses=pauses,
        history=history,
        members=members,
        missing=frozenset(
            what
            for what, row in (("requester", requester), ("organisation", org), ("plan", plan_row))
            if row is None
        ),
    )


def _plan_and_calendar(
    session: Session, plan_row: Plan | None
) -> tuple[SupportPlan | None, BusinessCalendar]:
    """The plan as the rules see it and the calendar its clock runs on (the team's default
    hours when the plan names none, as the queue does)."""
    calendar = default_team_calendar()
    if plan_row is None:
        return None, calendar
    if plan_row.calendar_id is not None:
        cal = session.get(Calendar, plan_row.calendar_id)
        if cal is not None and not cal.deleted:
            # A broken calendar falls back to the team's hours, as in the queue.
            with suppress(PolicyError):
                calendar = BusinessCalendar.from_dict(cal.data, name=cal.name)
    try:
        return plan_row.to_policy(calendar.name), calendar
    except PolicyError:
        return None, calendar


# --------------------------------------------------------------------------------- history


def _name_list(raw: Any, contacts: Mapping[str, str]) -> str:
    """Contact ids in words ("Ann, Bo and Cy"); "requester" is the ticket's requester."""
    names = [
        "the requester" if i == "requester" else contacts.get(i, "a contact") for i in ev.ids(raw)
    ]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _user(raw: Any, names: Mapping[uuid.UUID, str]) -> str:
    if raw in (None, ""):
        return "nobody"
    try:
        return names.get(uuid.UUID(str(raw)), "someone")
    except ValueError:
        return "someone"


def _tier_text(tier: Any) -> str:
    return f"tier {tier}" if tier is not None else "untriaged"


def describe_event(
    event: TicketEvent, names: Mapping[uuid.UUID, str], contacts: Mapping[str, str]
) -> HistoryItem:
    """One history entry in words: who, when, what changed (old -> new where it applies).

    The data is read through :mod:`agentdesk.models.event_payloads`, the definition the
    mutators and the demo write with, so a renamed key cannot turn into a "?" here.
    """
    p = ev.payload_of(event.kind, event.data)
    who = names.get(event.author_id, "someone") if event.author_id is not None else "System"
    body = event.body or ""
    style = "event"
    if isinstance(p, ev.Created):
        title = f"Request submitted via {p.channel or 'an unknown channel'}"
        if p.stated_urgency is not None:
            title += f", stated urgency {p.stated_urgency}"
    elif isinstance(p, ev.Note):
        style = "note"
        if p.delivery_failed:
            title = f"Email not delivered to {p.delivery_failed}"
        else:
            title = "Entitlement check" if p.entitlement else "Internal note"
    elif isinstance(p, ev.Reply):
        style = "reply"
        if p.from_contact is not None:
            title = f"Reply from {_name_list(p.from_contact, contacts) or 'the customer'}"
            if event.author_id is None:
                who = "Customer"
        elif p.notification == "assignment":
            title = "Customer told who has it and what is next"
        else:
            title = "Reply to customer"
    elif isinstance(p, ev.StatusChange):
        old = workflow.label(p.old) if p.old else "unknown"
        new = workflow.label(p.new) if p.new else "unknown"
        title = f"Status: {old} → {new}"
    elif isinstance(p, ev.Triage):
        level = f", Level {p.level[-1]}" if p.level else ""
        title = f"Triaged: {_tier_text(p.old_tier)} → {_tier_text(p.tier)}{level}"
        if p.old_level and p.level and p.old_level != p.level:
            title += f" (was Level {p.old_level[-1]})"
        body = ""
    elif isinstance(p, ev.Assignment):
        if p.new is None:
            title = f"Unassigned (was {_user(p.old, names)})"
        elif p.old is None:
            title = f"Assigned to {_user(p.new, names)}"
        else:
            title = f"Reassigned from {_user(p.old, names)} to {_user(p.new, names)}"
    elif isinstance(p, ev.FieldChange):
        field = (p.field or "field").replace("_", " ")
        title = f"Changed {field}: {p.old!s} → {p.new!s}"
        body = ""
    elif isinstance(p, ev.Redirect):
        notified = _name_list(p.notify, contacts)
        title = (
            f"Redirected; validated contacts notified: {notified}"
            if notified
            else "Redirected; no validated contacts to notify"
        )
    elif isinstance(p, ev.Escalation):
        title = "Escalated to 1-on-1 tech support: time is billable from here on"
    elif isinstance(p, ev.Notification):
        style = "notification"
        if p.delivery == "sent" and p.email:
            # The mail sender's record: the address the mail server accepted it for.
            title = f"Email sent to {f'{p.name} <{p.email}>' if p.name else p.email}"
            body = p.subject or body
        else:
            target = _name_list(p.to, contacts)
            # Written when the change is made: the mail is queued then, and whether it went out
            # is the sender's own line ("Email sent to ..." / "Email not delivered to ...").
            title = f"Email to {target} queued" if target else "Customer notification queued"
    elif isinstance(p, ev.ExtraCharges):
        if p.applies:
            estimate = _money(p.estimate)
            title = (
                f"Extra charges apply (estimate {estimate})"
                if estimate
                else "Extra charges apply (no estimate yet)"
            )
        else:
            title = "No extra charges"
    else:  # pragma: no cover - every EventKind has a payload class
        title = event.kind.value
    return HistoryItem(event.id, event.kind, style, who, event.at, title, body)


def _money(raw: Any) -> str:
    if raw in (None, ""):
        return ""
    try:
        return money_text(Decimal(str(raw)))
    except InvalidOperation:
        return str(raw)
