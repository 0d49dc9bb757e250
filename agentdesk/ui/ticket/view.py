"""What the ticket panel allows, from the card (:mod:`agentdesk.queries.ticket_card`) and the
rules, without Qt.

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
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ...models import EventKind, Level, Role, TicketKind, TicketStatus
from ...policy import contacts as contact_rules
from ...policy import workflow
from ...policy.errors import PolicyError
from ...policy.sla import SlaStatus, sla_status
from ...queries.formatting import money_text
from ...queries.ticket_card import Person, TicketView
from ...sync.mutators import MUTATORS
from ..panel_widgets import roles_text
from ..sla_display import AT_RISK_SHARE, target_text

__all__ = [
    "Action",
    "Me",
    "action_refusals",
    "assign_picker_refusal",
    "assignee_choices",
    "not_helped",
    "redirect_refusal",
    "reopen_target",
    "sla_of",
    "tell_customer_message",
]


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
