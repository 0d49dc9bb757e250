"""What the ticket panel shows and allows, computed from the replica and the rules, without Qt.

:func:`load_ticket_view` reads one ticket with everything around it (requester, organisation,
plan and its calendar, waiting periods, history, team) in one short read of the replica: a
handful of indexed lookups, fine on the GUI thread. Everything is copied into frozen
dataclasses, so nothing the panel holds can lazy-load or go stale behind its back.

:func:`action_refusals` says, for each workflow action, why it is not allowed right now (None
when it is). The reasons come from the same rules the mutators apply
(:func:`agentdesk.policy.workflow.transition_refusal`, the mutators' role sets, their messages),
so a disabled button's tooltip and a refusal after clicking read the same. The UI is stricter
than the mutators in a few places where the seeds are: no reply to a redirected requester
(seed 003: not worked), "resume" only for a ticket waiting on the customer, and telling the
customer only once triaged (seed 002 step 2 follows step 1).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...models import (
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
from ...models import event_payloads as ev
from ...policy import contacts as contact_rules
from ...policy import workflow
from ...policy.calendar import BusinessCalendar
from ...policy.errors import PolicyError
from ...policy.plans import SupportPlan
from ...policy.sla import SlaStatus, sla_status
from ...queries.queue import open_counts_by_assignee
from ...sync.mutators import MUTATORS
from ..panel_widgets import money_text, roles_text
from ..sla_display import AT_RISK_SHARE, LOADING, default_team_calendar, target_text

__all__ = [
    "Action",
    "HistoryItem",
    "Me",
    "Person",
    "TicketView",
    "action_refusals",
    "assign_picker_refusal",
    "assignee_choices",
    "describe_event",
    "load_ticket_view",
    "not_helped",
    "redirect_refusal",
    "reopen_target",
    "sla_of",
    "tell_customer_message",
]

Pause = tuple[datetime, datetime | None]


class Action(StrEnum):
    TRIAGE = "triage"
    ASSIGN_ME = "assign_me"
    ASSIGN_OTHER = "assign_other"
    RELEASE = "release"
    TELL = "tell_customer"
    WAIT = "wait_on_customer"
    RESUME = "resume"
    ESCALATE = "escalate"
    CHARGES = "extra_charges"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    REDIRECT = "redirect"
    ASK_TRIAGE = "ask_triage"
    REPLY = "reply"
    NOTE = "note"


@dataclass(frozen=True)
class Me:
    """Who is working: the replica's signed-in user."""

    user_id: uuid.UUID
    role: Role


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    name: str
    role: Role
    active: bool
    #: Open tickets assigned to them (their load, shown when picking an assignee).
    load: int = 0


#: Who works which kind of ticket, best first: general support goes to agents (then the
#: coordinators and leads who also take tickets); 1-on-1 work to consultants. Admins are not
#: offered.
ASSIGNEE_ROLES: Mapping[TicketKind, tuple[Role, ...]] = {
    TicketKind.GENERAL: (Role.AGENT, Role.COORDINATOR, Role.LEAD),
    TicketKind.ONE_ON_ONE: (Role.CONSULTANT, Role.AGENT, Role.LEAD),
}


def assignee_choices(view: TicketView) -> list[Person]:
    """The people offered in the "assign to" list: active, of the roles that work this kind
    of ticket, in that order, then the lightest load first, then by name."""
    roles = ASSIGNEE_ROLES[view.kind]
    return sorted(
        (p for p in view.members if p.active and p.role in roles),
        key=lambda p: (roles.index(p.role), p.load, p.name.casefold()),
    )


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


# --------------------------------------------------------------------------------- rules


def _role_refusal(mutation: str, role: Role, doing: str) -> str | None:
    roles = MUTATORS[mutation].roles
    if role in roles:
        return None
    return f"only {roles_text(roles)} can {doing}"


_TRIAGERS = MUTATORS["triage_ticket"].roles


def assign_picker_refusal(view: TicketView, me: Me) -> str | None:
    """Why ``me`` cannot assign this ticket to someone else at all (whoever is picked)."""
    if me.role not in _TRIAGERS:
        return f"only {roles_text(_TRIAGERS)} assign tickets to someone else"
    if not view.is_open:
        return "only open tickets can be assigned"
    return None


def reopen_target(status: TicketStatus) -> TicketStatus | None:
    """Where "reopen" takes a ticket: back to work, or (redirected) back to the queue as new
    once the validated contacts said how to proceed (seed 003)."""
    if status is TicketStatus.RESOLVED:
        return TicketStatus.IN_PROGRESS
    if status is TicketStatus.REDIRECTED:
        return TicketStatus.NEW
    return None


def _transition(view: TicketView, target: TicketStatus) -> str | None:
    return workflow.transition_refusal(view.status.value, target.value)


def _not_worked(view: TicketView) -> str | None:
    if view.status is TicketStatus.CLOSED:
        return "the ticket is closed"
    if view.status is TicketStatus.REDIRECTED:
        return (
            "the ticket was redirected: the requester is not a validated contact, so it is "
            "not worked"
        )
    return None


def not_helped(view: TicketView, doing: str) -> str | None:
    """Seed 003: an open ticket whose requester is not (any longer) a validated contact is
    not helped; the refusal names the redirect as the way on. Mirrors the mutators' check.
    While the requester's row has not arrived, it says so instead of judging."""
    if view.is_open and "requester" in view.missing:
        return f"cannot {doing} yet: the requester's details are still loading"
    if view.is_open and not view.requester_validated:
        return contact_rules.not_validated_refusal(view.requester_name, doing)
    return None


def redirect_refusal(view: TicketView) -> str | None:
    """Why the ticket cannot be redirected now (the mutator's and the workflow's rules)."""
    if "requester" in view.missing:
        return "the requester's details are still loading"
    if view.requester_validated:
        return "the requester is a validated contact; work the ticket instead"
    return _transition(view, TicketStatus.REDIRECTED)


def action_refusals(
    view: TicketView, me: Me, *, assign_to: uuid.UUID | None = None
) -> dict[Action, str | None]:
    """Why each action is refused now (None: allowed). ``assign_to`` is the person picked in
    the "assign to someone" list, if any."""
    out: dict[Action, str | None] = {}
    other: str | None
    release: str | None
    closed_for_assignment = None if view.is_open else "only open tickets can be assigned"

    triage = _role_refusal("triage_ticket", me.role, "triage tickets")
    if triage is None and not view.is_open:
        triage = f"a {workflow.label(view.status.value)} ticket cannot be triaged"
    out[Action.TRIAGE] = triage

    if closed_for_assignment:
        out[Action.ASSIGN_ME] = closed_for_assignment
    elif view.assignee_id == me.user_id:
        out[Action.ASSIGN_ME] = "the ticket is already assigned to you"
    else:
        out[Action.ASSIGN_ME] = None

    other = assign_picker_refusal(view, me)
    if other is None:
        if assign_to is None:
            other = "pick the person to assign the ticket to"
        elif assign_to == view.assignee_id:
            other = f"the ticket is already assigned to {view.member_name(assign_to)}"
        elif not any(p.id == assign_to and p.active for p in view.members):
            other = f"{view.member_name(assign_to)} is not active"
    out[Action.ASSIGN_OTHER] = other

    if view.assignee_id is None:
        release = "nobody is assigned"
    elif view.assignee_id != me.user_id and me.role not in _TRIAGERS:
        release = f"only {roles_text(_TRIAGERS)} unassign someone else"
    else:
        release = closed_for_assignment
    out[Action.RELEASE] = release

    tell: list[str] = []
    if view.status is TicketStatus.NEW:
        tell.append("triage the ticket first")
    elif not view.is_open:
        tell.append(_not_worked(view) or f"the ticket is {workflow.label(view.status.value)}")
    if view.assignee_id is None and view.status is not TicketStatus.CLOSED:
        tell.append("assign the ticket first, so the customer can be told who has it")
    helping = not_helped(view, "tell the customer who has the ticket")
    if helping and view.status is not TicketStatus.NEW:
        tell.append(helping)
    out[Action.TELL] = "; ".join(tell) or None

    out[Action.WAIT] = _transition(view, TicketStatus.WAITING_ON_CUSTOMER)
    out[Action.RESUME] = (
        "the ticket is not waiting on the customer"
        if view.status is not TicketStatus.WAITING_ON_CUSTOMER
        else _transition(view, TicketStatus.IN_PROGRESS)
    )

    if view.kind is TicketKind.ONE_ON_ONE:
        out[Action.ESCALATE] = "the ticket is already 1-on-1"
    elif not view.is_open:
        out[Action.ESCALATE] = "only open tickets can be escalated"
    else:
        out[Action.ESCALATE] = None

    out[Action.CHARGES] = _not_worked(view)
    out[Action.RESOLVE] = _transition(view, TicketStatus.RESOLVED) or not_helped(
        view, "resolve the ticket"
    )
    out[Action.CLOSE] = _transition(view, TicketStatus.CLOSED)
    target = reopen_target(view.status)
    if target is None:
        out[Action.REOPEN] = (
            "a closed ticket cannot be reopened"
            if view.status is TicketStatus.CLOSED
            else "the ticket is open: only resolved or redirected tickets are reopened"
        )
    else:
        out[Action.REOPEN] = _transition(view, target)
    out[Action.REPLY] = _not_worked(view) or not_helped(view, "reply to the customer")
    out[Action.NOTE] = None
    out[Action.REDIRECT] = redirect_refusal(view)
    # Seed 002: a coordinator assesses the severity. Whoever may not triage can ask for it:
    # an internal note, and the ticket waits in the coordinators' Triage view.
    if view.status is not TicketStatus.NEW:
        out[Action.ASK_TRIAGE] = "the ticket is triaged already"
    elif me.role in _TRIAGERS:
        out[Action.ASK_TRIAGE] = "you can triage it yourself"
    elif triage_asked(view):
        out[Action.ASK_TRIAGE] = (
            "a coordinator has been asked already; the ticket waits in their Triage view"
        )
    else:
        out[Action.ASK_TRIAGE] = None
    return out


#: The words of the note that asks a coordinator to triage (the panel writes it, and
#: :func:`triage_asked` finds it again: asking twice must not add a second request).
TRIAGE_REQUEST = "asks a coordinator to triage this ticket"


def triage_asked(view: TicketView) -> bool:
    """Whether a request for triage is open: a note asking for it since the ticket last
    became new (a ticket reopened as new needs asking again)."""
    for item in reversed(view.history):
        if item.kind is EventKind.NOTE and TRIAGE_REQUEST in item.body:
            return True
        if item.kind in (EventKind.STATUS, EventKind.TRIAGE, EventKind.CREATED):
            return False
    return False


# --------------------------------------------------------------------------------- words

#: Seed 002's tier descriptions, for the customer.
_TIER_MEANING = {
    1: "critical: it is impacting your business operations or sales",
    2: "it is affecting your production site, but not critically",
    3: "a known problem in a low-impact area, or a how-to question",
    4: "cosmetic, or not about the live site",
}


def tell_customer_message(view: TicketView, assignee_name: str | None = None) -> str:
    """Seed 002 step 2's update, pre-filled for the agent to edit: who has the request and
    what happens next, with the extra charges when they apply. It promises a response, never
    a resolution time (seeds 002 and 003)."""
    who = assignee_name or view.assignee_name or "our support team"
    first = view.requester_name.split()[0] if view.requester_name.strip() else "there"
    tier = view.effective_tier
    level = "Level 2" if view.level is Level.L2 else "Level 1"
    lines = [
        f"Hello {first},",
        "",
        f'Thank you for your request "{view.subject}". A support coordinator has reviewed it '
        f"and assessed it as tier {tier} ({_TIER_MEANING.get(tier, 'assessed')}).",
        "",
        f"{who} from our {level} support team has it and is your contact from now on.",
        "",
        f"What happens next: {who} is looking into it and will reply here with findings or "
        "any questions for you. We will keep you updated until it is resolved.",
    ]
    if view.extra_charges:
        estimate = (
            f" (estimate: {money_text(view.extra_charge_estimate)})"
            if view.extra_charge_estimate is not None
            else ""
        )
        lines += [
            "",
            f"Please note that extra charges apply to resolve this request{estimate}; we will "
            "confirm the plan with you before any chargeable work starts.",
        ]
    return "\n".join(lines)


def sla_of(view: TicketView, now: datetime) -> SlaStatus | None:
    """The initial-response clock (agentdesk.policy.sla) on the plan's calendar; None when
    the plan is not known on this desktop yet or its data is refused."""
    if view.plan is None:
        return None
    try:
        return sla_status(
            view.arrived_at,
            view.effective_tier,
            view.plan,
            view.calendar,
            now,
            first_response=view.first_response_at,
            paused=view.pauses,
            at_risk_share=AT_RISK_SHARE,
        )
    except PolicyError:
        return None


def target_words(view: TicketView) -> str:
    if view.plan is None:
        return "unknown plan"
    return target_text(view.plan.target_for(view.effective_tier))
