"""Ticket mutations: create, edit, triage, assign, status, replies and notes, escalation, extra
charges and redirects - each through :mod:`agentdesk.policy.workflow`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Literal

from sqlalchemy import select

from ...models import (
    Contact,
    Level,
    Organisation,
    Ticket,
    TicketKind,
    TicketStatus,
    User,
    WaitingPeriod,
)
from ...models import event_payloads as ev
from ...policy import contacts as contact_rules
from ...policy import entitlements, workflow
from ..bounds import (
    Body,
    Instant,
    Line,
    Money,
    Text,
    Tier,
)
from .core import (
    INVALID,
    TRIAGERS,
    Args,
    ContactRef,
    MutationContext,
    MutationRejected,
    NewTicketId,
    OrganisationRef,
    TicketRef,
    UserRef,
    get_row,
    get_ticket,
    mutator,
    plan_of,
    policy_contacts,
    record_event,
)
from .sla_refresh import refresh_sla

log = logging.getLogger(__name__)


def _set_status(ctx: MutationContext, ticket: Ticket, target: TicketStatus, note: str = "") -> None:
    current = ticket.status
    refusal = workflow.transition_refusal(current.value, target.value)
    if refusal is not None:
        raise MutationRejected("invalid_transition", refusal, "status")
    if current is TicketStatus.WAITING_ON_CUSTOMER:
        for period in ctx.session.scalars(
            select(WaitingPeriod).where(
                WaitingPeriod.ticket_id == ticket.id, WaitingPeriod.ended_at.is_(None)
            )
        ):
            period.ended_at = max(ctx.now, period.started_at)
    if target is TicketStatus.WAITING_ON_CUSTOMER:
        ctx.session.add(
            WaitingPeriod(
                id=ctx.derived_id(),
                tenant_id=ctx.tenant_id,
                ticket_id=ticket.id,
                started_at=ctx.now,
            )
        )
    if target is TicketStatus.RESOLVED:
        ticket.resolved_at = ctx.now
    elif current is TicketStatus.RESOLVED and target is TicketStatus.IN_PROGRESS:
        ticket.resolved_at = None  # reopened: the resolution no longer stands
    ticket.status = target
    refresh_sla(ctx.session, ticket)  # a wait starts or ends, a redirect or its reopening
    record_event(ctx, ticket, ev.StatusChange(old=current.value, new=target.value), note)
    if target is TicketStatus.RESOLVED:
        record_event(
            ctx,
            ticket,
            ev.Notification(to=(str(ticket.requester_id),), about="resolved"),
            "Customer notified: the request is resolved.",
        )


class CreateTicket(Args):
    ticket_id: NewTicketId
    subject: Line
    description: Body = ""
    channel: Literal["portal", "chat", "phone", "email"]
    organisation_id: OrganisationRef
    requester_id: ContactRef
    stated_urgency: Tier
    #: When the customer asked, by the submitting desktop's clock: kept as data in the history.
    reported_at: Instant | None = None


@mutator("create_ticket", CreateTicket, contacts_of="organisation_id")
def create_ticket(ctx: MutationContext, a: CreateTicket) -> None:
    """Record a request. Arrival is the clock of whoever runs the mutation (the server's, for
    the authoritative copy), so queue order never depends on a desktop's clock. Entitlement and
    contact validation are checked and written into the history; a request from a non-validated
    contact is redirected (seed 003), never silently dropped."""
    org: Organisation = get_row(ctx, Organisation, a.organisation_id, "organisation")
    requester: Contact = get_row(ctx, Contact, a.requester_id, "requester")
    if requester.organisation_id != org.id:
        raise MutationRejected(
            "invalid", "the requester is not a contact of this organisation", "requester_id"
        )
    _, plan = plan_of(ctx, org)
    ticket = Ticket(
        id=a.ticket_id,
        tenant_id=ctx.tenant_id,
        subject=a.subject,
        description=a.description,
        channel=a.channel,
        organisation_id=org.id,
        requester_id=requester.id,
        stated_urgency=a.stated_urgency,
        urgency=a.stated_urgency,
        plan_rank=plan.rank,
        arrived_at=ctx.now,
        updated_at=ctx.now,
        # Set on every new ticket, redirected or not, so a push group's new tickets have the
        # same columns and go out as one multi-row INSERT (rows that differ split it).
        status=TicketStatus.NEW,
        first_response_business_s=None,
    )
    ctx.session.add(ticket)
    record_event(
        ctx,
        ticket,
        ev.Created(
            channel=a.channel,
            stated_urgency=a.stated_urgency,
            reported_at=a.reported_at.isoformat() if a.reported_at is not None else None,
            requester_id=str(requester.id),
        ),
        a.description[:500],
    )

    # Counted only where a plan limits conversations (seed 000's basic/free): on an unlimited
    # plan the count changes no decision and no wording, and it is a query per request.
    limited = plan.conversations_per_year is not None
    used = _conversations_this_year(ctx, org.id, exclude=ticket.id) if limited else 0
    decision = entitlements.check_request(
        plan,
        channel=a.channel,
        verified_reviews=org.verified_reviews,
        reviews_last_6_months=org.recent_reviews,
        conversations_this_year=used,
    )
    if not decision.allowed:
        record_event(ctx, ticket, ev.Note(entitlement=decision.code), decision.reason)

    routing = contact_rules.route_request(plan, policy_contacts(ctx, org.id), str(requester.id))
    if not routing.worked:
        ticket.status = TicketStatus.REDIRECTED
        _record_redirect(ctx, ticket, routing)
    refresh_sla(ctx.session, ticket)


def _record_redirect(
    ctx: MutationContext, ticket: Ticket, routing: contact_rules.RequestRouting
) -> None:
    """Seed 003: the ticket records the redirect and whom it asked how to proceed."""
    record_event(
        ctx,
        ticket,
        ev.Redirect(
            code=routing.code,
            notify=tuple(c.id for c in routing.notify),
            requester_id=str(ticket.requester_id),
        ),
        routing.history,
    )
    if routing.notify:
        record_event(
            ctx,
            ticket,
            ev.Notification(to=tuple(c.id for c in routing.notify), about="redirect"),
            routing.requester_notice,
        )


def _conversations_this_year(ctx: MutationContext, org_id: uuid.UUID, exclude: uuid.UUID) -> int:
    """The organisation's conversations in the team's current calendar year (seed 000), not
    counting ``exclude`` (the ticket being opened)."""
    from ...queries.conversations import conversations_this_year

    return conversations_this_year(
        ctx.session, org_id, ctx.now, _team_timezone(ctx), exclude=exclude
    )


def _team_timezone(ctx: MutationContext) -> str:
    from ...models import Tenant

    tenant = ctx.session.get(Tenant, ctx.tenant_id)
    return tenant.timezone if tenant is not None else "UTC"


class UpdateTicket(Args):
    ticket_id: TicketRef
    subject: Line | None = None
    description: Body | None = None
    stated_urgency: Tier | None = None


@mutator("update_ticket", UpdateTicket)
def update_ticket(ctx: MutationContext, a: UpdateTicket) -> None:
    """Last writer wins in server order; the overwritten value is kept in the history."""
    if a.subject is None and a.description is None and a.stated_urgency is None:
        raise MutationRejected(
            INVALID, "nothing to change: give a subject, a description or an urgency", "ticket_id"
        )
    ticket = get_ticket(ctx, a.ticket_id)
    for name in ("subject", "description", "stated_urgency"):
        new = getattr(a, name)
        old = getattr(ticket, name)
        if new is None or new == old:
            continue
        setattr(ticket, name, new)
        record_event(ctx, ticket, ev.FieldChange(field=name, old=old, new=new), f"{name} changed")
    if ticket.tier is None and ticket.urgency != ticket.stated_urgency:
        ticket.urgency = ticket.stated_urgency
        refresh_sla(ctx.session, ticket)


class TriageTicket(Args):
    ticket_id: TicketRef
    tier: Tier
    level: Literal["L1", "L2"] = "L1"


@mutator("triage_ticket", TriageTicket, TRIAGERS)
def triage_ticket(ctx: MutationContext, a: TriageTicket) -> None:
    """Seed 002 step 1: a coordinator reviews the request and assesses its severity. Re-triage
    of an open ticket is allowed (the history keeps the old tier)."""
    ticket = get_ticket(ctx, a.ticket_id)
    old_tier, old_level = ticket.tier, ticket.level
    if ticket.status is TicketStatus.NEW:
        _set_status(ctx, ticket, TicketStatus.TRIAGED)
    elif ticket.status.value not in workflow.OPEN_STATUSES:
        raise MutationRejected(
            "invalid_transition",
            f"a {workflow.label(ticket.status.value)} ticket cannot be triaged",
            "status",
        )
    ticket.tier = a.tier
    ticket.urgency = a.tier
    ticket.level = Level(a.level)
    refresh_sla(ctx.session, ticket)
    record_event(
        ctx,
        ticket,
        ev.Triage(tier=a.tier, level=a.level, old_tier=old_tier, old_level=old_level.value),
        f"Severity tier {a.tier}, Level {a.level[1]}",
    )


class AssignTicket(Args):
    ticket_id: TicketRef
    assignee_id: UserRef | None
    #: The assignee the client saw: the server assigns only if it is still the same (CAS).
    expected_assignee_id: UserRef | None


@mutator("assign_ticket", AssignTicket)
def assign_ticket(ctx: MutationContext, a: AssignTicket) -> None:
    """A check-and-set: two agents grabbing the same ticket offline get one winner and a
    readable rejection for the other. Agents and consultants may only take a ticket for
    themselves or give up their own; coordinators and leads assign anyone."""
    ticket = get_ticket(ctx, a.ticket_id)
    taking = a.assignee_id == ctx.actor_id
    releasing_own = a.assignee_id is None and ticket.assignee_id == ctx.actor_id
    if ctx.actor_role not in TRIAGERS and not (taking or releasing_own):
        raise MutationRejected(
            "forbidden", "only coordinators and leads assign tickets to someone else", "assignee_id"
        )
    if ticket.assignee_id != a.expected_assignee_id:
        holder = ctx.session.get(User, ticket.assignee_id) if ticket.assignee_id else None
        who = holder.display_name if holder is not None else "nobody"
        raise MutationRejected(
            "conflict", f"the ticket is now assigned to {who}; refresh and try again", "assignee_id"
        )
    if ticket.status.value not in workflow.OPEN_STATUSES:
        raise MutationRejected("invalid_transition", "only open tickets can be assigned", "status")
    if a.assignee_id is not None:
        assignee: User = get_row(ctx, User, a.assignee_id, "assignee")
        if not assignee.active:
            raise MutationRejected(
                "invalid", f"{assignee.display_name} is not active", "assignee_id"
            )
    old = ticket.assignee_id
    ticket.assignee_id = a.assignee_id
    record_event(ctx, ticket, ev.Assignment(old=ev.as_id(old), new=ev.as_id(a.assignee_id)))


def _require_validated_requester(ctx: MutationContext, ticket: Ticket, doing: str) -> None:
    """Seed 003: "we are only able to assist Support contacts that your organization has
    validated". Replying, telling the customer and resolving help the requester, so they are
    refused while the requester is not validated (switched out after the ticket arrived); the
    redirect is the way on. Internal notes and triage stay allowed."""
    requester = ctx.session.get(Contact, ticket.requester_id)
    if requester is not None and requester.validated:
        return
    name = requester.name if requester is not None else "the requester"
    raise MutationRejected(
        "not_validated", contact_rules.not_validated_refusal(name, doing), "requester_id"
    )


class ChangeStatus(Args):
    ticket_id: TicketRef
    status: Literal["in_progress", "waiting_on_customer", "resolved", "closed", "new"]
    note: Body = ""


@mutator("change_status", ChangeStatus)
def change_status(ctx: MutationContext, a: ChangeStatus) -> None:
    ticket = get_ticket(ctx, a.ticket_id)
    if a.status == TicketStatus.RESOLVED.value and ticket.status is not TicketStatus.RESOLVED:
        _require_validated_requester(ctx, ticket, "resolve the ticket")
    _set_status(ctx, ticket, TicketStatus(a.status), a.note)


class TellCustomer(Args):
    ticket_id: TicketRef
    message: Text


@mutator("tell_customer", TellCustomer)
def tell_customer(ctx: MutationContext, a: TellCustomer) -> None:
    """Seed 002 step 2: the customer hears from a real human who has the request and what
    happens next. It is the first response (the SLA target is met) and starts the work."""
    ticket = get_ticket(ctx, a.ticket_id)
    if ticket.assignee_id is None:
        raise MutationRejected(
            "invalid",
            "assign the ticket first, so the customer can be told who has it",
            "assignee_id",
        )
    if ticket.status is TicketStatus.NEW:
        raise MutationRejected("invalid_transition", "triage the ticket first", "status")
    _require_validated_requester(ctx, ticket, "tell the customer who has the ticket")
    if ticket.status is TicketStatus.TRIAGED:
        _set_status(ctx, ticket, TicketStatus.IN_PROGRESS)
    _reply(ctx, ticket, a.message, notification="assignment")


def _reply(
    ctx: MutationContext, ticket: Ticket, body: str, notification: str | None = None
) -> None:
    if ticket.first_response_at is None:
        ticket.first_response_at = ctx.now
        refresh_sla(ctx.session, ticket)  # pauses after it no longer count
    to = (str(ticket.requester_id),)
    record_event(ctx, ticket, ev.Reply(notification=notification, to=to), body)


class AddNote(Args):
    ticket_id: TicketRef
    body: Text
    kind: Literal["note", "reply"] = "note"


@mutator("add_note", AddNote)
def add_note(ctx: MutationContext, a: AddNote) -> None:
    """An internal note, or a reply to the customer (the first reply meets the SLA target)."""
    ticket = get_ticket(ctx, a.ticket_id)
    if ticket.status in (TicketStatus.CLOSED,) and a.kind == "reply":
        raise MutationRejected("invalid_transition", "the ticket is closed", "status")
    if a.kind == "reply":
        _require_validated_requester(ctx, ticket, "reply to the customer")
        _reply(ctx, ticket, a.body)
    else:
        record_event(ctx, ticket, ev.Note(), a.body)


class EscalateTicket(Args):
    ticket_id: TicketRef
    note: Body = ""


@mutator("escalate_ticket", EscalateTicket)
def escalate_ticket(ctx: MutationContext, a: EscalateTicket) -> None:
    """Seed 001: general support escalates to 1-on-1; time is billable from this moment on."""
    ticket = get_ticket(ctx, a.ticket_id)
    if ticket.kind is TicketKind.ONE_ON_ONE:
        raise MutationRejected("invalid", "the ticket is already 1-on-1", "kind")
    if ticket.status.value not in workflow.OPEN_STATUSES:
        raise MutationRejected("invalid_transition", "only open tickets can be escalated", "status")
    ticket.kind = TicketKind.ONE_ON_ONE
    ticket.escalated_at = ctx.now
    record_event(
        ctx,
        ticket,
        ev.Escalation(),
        a.note or "Escalated to 1-on-1 tech support; time is billable from now on.",
    )


class SetExtraCharges(Args):
    ticket_id: TicketRef
    applies: bool
    estimate: Money | None = None
    note: Body = ""


@mutator("set_extra_charges", SetExtraCharges)
def set_extra_charges(ctx: MutationContext, a: SetExtraCharges) -> None:
    """Seed 002: extra charges may apply; the customer is told in the response when they do."""
    ticket = get_ticket(ctx, a.ticket_id)
    if not a.applies and a.estimate is not None:
        raise MutationRejected("invalid", "an estimate needs extra charges to apply", "estimate")
    ticket.extra_charges = a.applies
    ticket.extra_charge_estimate = a.estimate if a.applies else None
    estimate = str(a.estimate) if a.applies and a.estimate is not None else None
    record_event(ctx, ticket, ev.ExtraCharges(applies=a.applies, estimate=estimate), a.note)


# --------------------------------------------------------------------------- contacts


class RedirectTicket(Args):
    ticket_id: TicketRef


@mutator("redirect_ticket", RedirectTicket)
def redirect_ticket(ctx: MutationContext, a: RedirectTicket) -> None:
    """Seed 003: a request from a non-validated contact is not worked; the organisation's
    validated contacts are asked how to proceed, and the ticket records both."""
    ticket = get_ticket(ctx, a.ticket_id)
    org: Organisation = get_row(ctx, Organisation, ticket.organisation_id, "organisation")
    _, plan = plan_of(ctx, org)
    routing = contact_rules.route_request(
        plan, policy_contacts(ctx, org.id), str(ticket.requester_id)
    )
    if routing.worked:
        raise MutationRejected(
            "invalid",
            "the requester is a validated contact; work the ticket instead",
            "requester_id",
        )
    _set_status(ctx, ticket, TicketStatus.REDIRECTED, routing.history)
    _record_redirect(ctx, ticket, routing)


# --------------------------------------------------------------------------- time
