"""Mutations: one definition each, run optimistically on the desktop replica and
authoritatively on the server, both through the rules engine.

A mutator gets a :class:`MutationContext` (session, tenant, actor, the clock of whoever runs
it) and validated arguments, and either changes rows or raises :class:`MutationRejected` with a
reason an agent can read. Rows a mutator creates get ids derived from ``(client_id,
mutation_id)`` (:meth:`MutationContext.derived_id`), so the desktop's optimistic row and the
server's authoritative row are the same row and a pull simply overwrites one with the other.

Conflict rules (DESIGN.md): assignment is a check-and-set against the assignee the client saw;
ticket fields are last-writer-wins in server order with the overwritten value kept in the
history; status changes go through :mod:`agentdesk.policy.workflow`; time entries are
append-only (a correction voids and replaces); one running timer per person; hour balances are
never written, only computed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import (
    Appointment,
    AppointmentStatus,
    Calendar,
    Contact,
    HourBlock,
    Level,
    Organisation,
    Plan,
    Role,
    RunningTimer,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    TimeEntry,
    TimeKind,
    User,
    WaitingPeriod,
)
from ..models import event_payloads as ev
from ..policy import contacts as contact_rules
from ..policy import entitlements, workflow
from ..policy.billing import cancellation_fee_minutes
from ..policy.errors import PolicyError
from ..policy.plans import SupportPlan

#: How far in the future a client's clock may claim a timer started (clock skew, not time travel).
MAX_CLOCK_SKEW = timedelta(minutes=5)
_DERIVED_NS = uuid.UUID("6f1c7c52-3f8e-4f55-9a55-6a0d5c1e7f00")


class MutationRejected(Exception):
    """The rules refuse the mutation. ``code`` is for machines, ``message`` for people."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass
class MutationContext:
    session: Session
    tenant_id: uuid.UUID
    actor_id: uuid.UUID
    actor_role: Role
    #: The clock of whoever runs the mutation: the server's on the server. Client clocks only
    #: ever arrive as data in the arguments.
    now: datetime
    client_id: uuid.UUID
    mutation_id: int
    authoritative: bool
    #: The creating desktop's clock for this mutation (``client_time``), known to both sides;
    #: it dates the ids of rows the mutation creates. Ordering never depends on it.
    id_time: datetime | None = None
    _derived: int = field(default=0, repr=False)

    @property
    def derived_count(self) -> int:
        return self._derived

    def derived_id(self) -> uuid.UUID:
        """The next id for a row this mutation creates: equal on desktop and server.

        A UUIDv7 like every other id: the 48-bit time is the mutation's client time (so ids
        still sort roughly by creation), the random bits a hash of (client, mutation, n).
        """
        self._derived += 1
        when = self.id_time or self.now
        millis = int(when.timestamp() * 1000) & ((1 << 48) - 1)
        digest = hashlib.sha256(
            f"{_DERIVED_NS}:{self.client_id}:{self.mutation_id}:{self._derived}".encode()
        ).digest()
        raw = bytearray(millis.to_bytes(6, "big") + digest[:10])
        raw[6] = 0x70 | (raw[6] & 0x0F)  # version 7
        raw[8] = 0x80 | (raw[8] & 0x3F)  # RFC 4122 variant
        return uuid.UUID(bytes=bytes(raw))


A = TypeVar("A", bound=BaseModel)


@dataclass(frozen=True)
class Mutator:
    name: str
    args: type[BaseModel]
    roles: frozenset[Role]
    apply: Callable[[MutationContext, Any], None]


MUTATORS: dict[str, Mutator] = {}

ALL_ROLES = frozenset(Role)
TRIAGERS = frozenset({Role.COORDINATOR, Role.LEAD, Role.ADMIN})
TIMEKEEPERS = frozenset({Role.CONSULTANT, Role.LEAD, Role.ADMIN})
BILLING_ADMINS = frozenset({Role.LEAD, Role.ADMIN})


def mutator(
    name: str, args: type[A], roles: frozenset[Role] = ALL_ROLES
) -> Callable[[Callable[[MutationContext, A], None]], Callable[[MutationContext, A], None]]:
    def register(fn: Callable[[MutationContext, A], None]) -> Callable[[MutationContext, A], None]:
        if name in MUTATORS:
            raise RuntimeError(f"mutator {name!r} defined twice")
        MUTATORS[name] = Mutator(name, args, roles, fn)
        return fn

    return register


def run_mutation(ctx: MutationContext, name: str, raw_args: Mapping[str, Any]) -> None:
    """Validate and apply one mutation; any refusal is a :class:`MutationRejected`."""
    m = MUTATORS.get(name)
    if m is None:
        raise MutationRejected("unknown_mutation", f"unknown mutation {name!r}", "name")
    if ctx.actor_role not in m.roles:
        roles = ", ".join(sorted(r.value for r in m.roles))
        raise MutationRejected("forbidden", f"{name} needs one of the roles: {roles}")
    try:
        args = m.args.model_validate(dict(raw_args))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "args"
        raise MutationRejected("invalid", f"{where}: {first['msg']}", where) from None
    try:
        m.apply(ctx, args)
    except PolicyError as exc:
        raise MutationRejected("invalid", exc.message, exc.field) from None


# --------------------------------------------------------------------------- argument types


def _no_control(value: str) -> str:
    if any((ord(c) < 32 and c not in "\n\t\r") or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


Line = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_no_control)]
Body = Annotated[str, Field(max_length=100_000), AfterValidator(_no_control)]
Tier = Annotated[int, Field(ge=1, le=4)]


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- lookups


def _get(ctx: MutationContext, model: type[Any], row_id: uuid.UUID, what: str) -> Any:
    row = ctx.session.get(model, row_id)
    if row is None or row.deleted or row.tenant_id != ctx.tenant_id:
        raise MutationRejected("not_found", f"no such {what}", f"{what}_id")
    return row


def _ticket(ctx: MutationContext, ticket_id: uuid.UUID) -> Ticket:
    ticket: Ticket = _get(ctx, Ticket, ticket_id, "ticket")
    return ticket


def _plan_of(ctx: MutationContext, org: Organisation) -> tuple[Plan, SupportPlan]:
    plan: Plan = _get(ctx, Plan, org.plan_id, "plan")
    calendar_name = None
    if plan.calendar_id is not None:
        cal = ctx.session.get(Calendar, plan.calendar_id)
        calendar_name = cal.name if cal is not None else None
    return plan, plan.to_policy(calendar_name)


def _event(
    ctx: MutationContext, ticket: Ticket, payload: ev.Payload, body: str = ""
) -> TicketEvent:
    """Append one history entry; its data is ``payload`` (the one definition of each kind's
    keys, shared with the demo and the ticket view)."""
    event_id = ctx.derived_id()
    event = TicketEvent(
        id=event_id,
        seq=ctx.derived_count,
        tenant_id=ctx.tenant_id,
        ticket_id=ticket.id,
        kind=payload.KIND,
        author_id=ctx.actor_id,
        at=ctx.now,
        body=body,
        data=payload.to_data(),
    )
    ctx.session.add(event)
    ticket.updated_at = ctx.now
    return event


def _policy_contacts(ctx: MutationContext, org_id: uuid.UUID) -> list[contact_rules.Contact]:
    rows = ctx.session.scalars(
        select(Contact)
        .where(Contact.organisation_id == org_id, Contact.deleted.is_(False))
        .order_by(Contact.name, Contact.id)
    )
    return [
        contact_rules.Contact(id=str(c.id), name=c.name, email=c.email, validated=c.validated)
        for c in rows
    ]


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
    _event(ctx, ticket, ev.StatusChange(old=current.value, new=target.value), note)
    if target is TicketStatus.RESOLVED:
        _event(
            ctx,
            ticket,
            ev.Notification(to=(str(ticket.requester_id),), about="resolved"),
            "Customer notified: the request is resolved.",
        )


# --------------------------------------------------------------------------- tickets


class CreateTicket(Args):
    ticket_id: uuid.UUID
    subject: Line
    description: Body = ""
    channel: Literal["portal", "chat", "phone", "email"]
    organisation_id: uuid.UUID
    requester_id: uuid.UUID
    stated_urgency: Tier
    #: When the customer asked, by the submitting desktop's clock: kept as data in the history.
    reported_at: AwareDatetime | None = None


@mutator("create_ticket", CreateTicket)
def create_ticket(ctx: MutationContext, a: CreateTicket) -> None:
    """Record a request. Arrival is the clock of whoever runs the mutation (the server's, for
    the authoritative copy), so queue order never depends on a desktop's clock. Entitlement and
    contact validation are checked and written into the history; a request from a non-validated
    contact is redirected (seed 003), never silently dropped."""
    if ctx.session.get(Ticket, a.ticket_id) is not None:
        raise MutationRejected("duplicate", "a ticket with this id already exists", "ticket_id")
    org: Organisation = _get(ctx, Organisation, a.organisation_id, "organisation")
    requester: Contact = _get(ctx, Contact, a.requester_id, "requester")
    if requester.organisation_id != org.id:
        raise MutationRejected(
            "invalid", "the requester is not a contact of this organisation", "requester_id"
        )
    _, plan = _plan_of(ctx, org)
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
    )
    ctx.session.add(ticket)
    _event(
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
        _event(ctx, ticket, ev.Note(entitlement=decision.code), decision.reason)

    routing = contact_rules.route_request(plan, _policy_contacts(ctx, org.id), str(requester.id))
    if not routing.worked:
        ticket.status = TicketStatus.REDIRECTED
        _record_redirect(ctx, ticket, routing)


def _record_redirect(
    ctx: MutationContext, ticket: Ticket, routing: contact_rules.RequestRouting
) -> None:
    """Seed 003: the ticket records the redirect and whom it asked how to proceed."""
    _event(
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
        _event(
            ctx,
            ticket,
            ev.Notification(to=tuple(c.id for c in routing.notify), about="redirect"),
            routing.requester_notice,
        )


def _conversations_this_year(ctx: MutationContext, org_id: uuid.UUID, exclude: uuid.UUID) -> int:
    """The organisation's conversations in the team's current calendar year (seed 000), not
    counting ``exclude``, redirected or deleted tickets: a COUNT over the year's range of UTC
    instants (``ix_tickets_organisation_arrived``), so its cost follows this year's tickets,
    not the organisation's whole history. Same semantics as ``conversations_in_year``."""
    tz = _team_timezone(ctx)
    start, end = entitlements.calendar_year_bounds(entitlements.calendar_year_of(ctx.now, tz), tz)
    stmt = select(func.count()).select_from(Ticket).where(
        Ticket.organisation_id == org_id,
        Ticket.arrived_at >= start,
        Ticket.deleted.is_(False),
        Ticket.id != exclude,
        Ticket.status != TicketStatus.REDIRECTED,
    )
    if end is not None:
        stmt = stmt.where(Ticket.arrived_at < end)
    return int(ctx.session.scalar(stmt) or 0)


def _team_timezone(ctx: MutationContext) -> str:
    from ..models import Tenant

    tenant = ctx.session.get(Tenant, ctx.tenant_id)
    return tenant.timezone if tenant is not None else "UTC"


class UpdateTicket(Args):
    ticket_id: uuid.UUID
    subject: Line | None = None
    description: Body | None = None
    stated_urgency: Tier | None = None


@mutator("update_ticket", UpdateTicket)
def update_ticket(ctx: MutationContext, a: UpdateTicket) -> None:
    """Last writer wins in server order; the overwritten value is kept in the history."""
    ticket = _ticket(ctx, a.ticket_id)
    for name in ("subject", "description", "stated_urgency"):
        new = getattr(a, name)
        old = getattr(ticket, name)
        if new is None or new == old:
            continue
        setattr(ticket, name, new)
        _event(ctx, ticket, ev.FieldChange(field=name, old=old, new=new), f"{name} changed")
    if ticket.tier is None:
        ticket.urgency = ticket.stated_urgency


class TriageTicket(Args):
    ticket_id: uuid.UUID
    tier: Tier
    level: Literal["L1", "L2"] = "L1"


@mutator("triage_ticket", TriageTicket, TRIAGERS)
def triage_ticket(ctx: MutationContext, a: TriageTicket) -> None:
    """Seed 002 step 1: a coordinator reviews the request and assesses its severity. Re-triage
    of an open ticket is allowed (the history keeps the old tier)."""
    ticket = _ticket(ctx, a.ticket_id)
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
    _event(
        ctx,
        ticket,
        ev.Triage(tier=a.tier, level=a.level, old_tier=old_tier, old_level=old_level.value),
        f"Severity tier {a.tier}, Level {a.level[1]}",
    )


class AssignTicket(Args):
    ticket_id: uuid.UUID
    assignee_id: uuid.UUID | None
    #: The assignee the client saw: the server assigns only if it is still the same (CAS).
    expected_assignee_id: uuid.UUID | None


@mutator("assign_ticket", AssignTicket)
def assign_ticket(ctx: MutationContext, a: AssignTicket) -> None:
    """A check-and-set: two agents grabbing the same ticket offline get one winner and a
    readable rejection for the other. Agents and consultants may only take a ticket for
    themselves or give up their own; coordinators and leads assign anyone."""
    ticket = _ticket(ctx, a.ticket_id)
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
        assignee: User = _get(ctx, User, a.assignee_id, "assignee")
        if not assignee.active:
            raise MutationRejected(
                "invalid", f"{assignee.display_name} is not active", "assignee_id"
            )
    old = ticket.assignee_id
    ticket.assignee_id = a.assignee_id
    _event(ctx, ticket, ev.Assignment(old=ev.as_id(old), new=ev.as_id(a.assignee_id)))


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
    ticket_id: uuid.UUID
    status: Literal["in_progress", "waiting_on_customer", "resolved", "closed", "new"]
    note: Body = ""


@mutator("change_status", ChangeStatus)
def change_status(ctx: MutationContext, a: ChangeStatus) -> None:
    ticket = _ticket(ctx, a.ticket_id)
    if a.status == TicketStatus.RESOLVED.value and ticket.status is not TicketStatus.RESOLVED:
        _require_validated_requester(ctx, ticket, "resolve the ticket")
    _set_status(ctx, ticket, TicketStatus(a.status), a.note)


class TellCustomer(Args):
    ticket_id: uuid.UUID
    message: Annotated[str, Field(min_length=1, max_length=100_000), AfterValidator(_no_control)]


@mutator("tell_customer", TellCustomer)
def tell_customer(ctx: MutationContext, a: TellCustomer) -> None:
    """Seed 002 step 2: the customer hears from a real human who has the request and what
    happens next. It is the first response (the SLA target is met) and starts the work."""
    ticket = _ticket(ctx, a.ticket_id)
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
    to = (str(ticket.requester_id),)
    _event(ctx, ticket, ev.Reply(notification=notification, to=to), body)


class AddNote(Args):
    ticket_id: uuid.UUID
    body: Annotated[str, Field(min_length=1, max_length=100_000), AfterValidator(_no_control)]
    kind: Literal["note", "reply"] = "note"


@mutator("add_note", AddNote)
def add_note(ctx: MutationContext, a: AddNote) -> None:
    """An internal note, or a reply to the customer (the first reply meets the SLA target)."""
    ticket = _ticket(ctx, a.ticket_id)
    if ticket.status in (TicketStatus.CLOSED,) and a.kind == "reply":
        raise MutationRejected("invalid_transition", "the ticket is closed", "status")
    if a.kind == "reply":
        _require_validated_requester(ctx, ticket, "reply to the customer")
        _reply(ctx, ticket, a.body)
    else:
        _event(ctx, ticket, ev.Note(), a.body)


class EscalateTicket(Args):
    ticket_id: uuid.UUID
    note: Body = ""


@mutator("escalate_ticket", EscalateTicket)
def escalate_ticket(ctx: MutationContext, a: EscalateTicket) -> None:
    """Seed 001: general support escalates to 1-on-1; time is billable from this moment on."""
    ticket = _ticket(ctx, a.ticket_id)
    if ticket.kind is TicketKind.ONE_ON_ONE:
        raise MutationRejected("invalid", "the ticket is already 1-on-1", "kind")
    if ticket.status.value not in workflow.OPEN_STATUSES:
        raise MutationRejected("invalid_transition", "only open tickets can be escalated", "status")
    ticket.kind = TicketKind.ONE_ON_ONE
    ticket.escalated_at = ctx.now
    _event(
        ctx,
        ticket,
        ev.Escalation(),
        a.note or "Escalated to 1-on-1 tech support; time is billable from now on.",
    )


class SetExtraCharges(Args):
    ticket_id: uuid.UUID
    applies: bool
    estimate: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)] | None = None
    note: Body = ""


@mutator("set_extra_charges", SetExtraCharges)
def set_extra_charges(ctx: MutationContext, a: SetExtraCharges) -> None:
    """Seed 002: extra charges may apply; the customer is told in the response when they do."""
    ticket = _ticket(ctx, a.ticket_id)
    if not a.applies and a.estimate is not None:
        raise MutationRejected("invalid", "an estimate needs extra charges to apply", "estimate")
    ticket.extra_charges = a.applies
    ticket.extra_charge_estimate = a.estimate if a.applies else None
    estimate = str(a.estimate) if a.applies and a.estimate is not None else None
    _event(ctx, ticket, ev.ExtraCharges(applies=a.applies, estimate=estimate), a.note)


# --------------------------------------------------------------------------- contacts


class ContactArgs(Args):
    contact_id: uuid.UUID


class SwapContact(Args):
    out_id: uuid.UUID
    in_id: uuid.UUID


def _apply_contact_result(ctx: MutationContext, result: contact_rules.ContactResult) -> None:
    if isinstance(result, contact_rules.ContactRefused):
        raise MutationRejected(result.code, result.message, "contact_id")
    for cid in result.invalidate:
        contact: Contact = _get(ctx, Contact, uuid.UUID(cid), "contact")
        contact.validated = False
        contact.validated_at = None
        contact.validated_by_id = None
    for cid in result.validate:
        contact = _get(ctx, Contact, uuid.UUID(cid), "contact")
        contact.validated = True
        contact.validated_at = ctx.now
        contact.validated_by_id = ctx.actor_id


def _org_plan_contacts(
    ctx: MutationContext, contact_id: uuid.UUID
) -> tuple[SupportPlan, list[contact_rules.Contact]]:
    contact: Contact = _get(ctx, Contact, contact_id, "contact")
    org: Organisation = _get(ctx, Organisation, contact.organisation_id, "organisation")
    _, plan = _plan_of(ctx, org)
    return plan, _policy_contacts(ctx, org.id)


@mutator("validate_contact", ContactArgs)
def validate_contact(ctx: MutationContext, a: ContactArgs) -> None:
    plan, contacts = _org_plan_contacts(ctx, a.contact_id)
    _apply_contact_result(ctx, contact_rules.validate_contact(plan, contacts, str(a.contact_id)))


@mutator("invalidate_contact", ContactArgs)
def invalidate_contact(ctx: MutationContext, a: ContactArgs) -> None:
    plan, contacts = _org_plan_contacts(ctx, a.contact_id)
    _apply_contact_result(ctx, contact_rules.invalidate_contact(plan, contacts, str(a.contact_id)))


@mutator("swap_contact", SwapContact)
def swap_contact(ctx: MutationContext, a: SwapContact) -> None:
    plan, contacts = _org_plan_contacts(ctx, a.out_id)
    incoming: Contact = _get(ctx, Contact, a.in_id, "contact")
    outgoing: Contact = _get(ctx, Contact, a.out_id, "contact")
    if incoming.organisation_id != outgoing.organisation_id:
        raise MutationRejected(
            "invalid", "both contacts must belong to the same organisation", "in_id"
        )
    _apply_contact_result(
        ctx, contact_rules.swap_contact(plan, contacts, str(a.out_id), str(a.in_id))
    )


class RedirectTicket(Args):
    ticket_id: uuid.UUID


@mutator("redirect_ticket", RedirectTicket)
def redirect_ticket(ctx: MutationContext, a: RedirectTicket) -> None:
    """Seed 003: a request from a non-validated contact is not worked; the organisation's
    validated contacts are asked how to proceed, and the ticket records both."""
    ticket = _ticket(ctx, a.ticket_id)
    org: Organisation = _get(ctx, Organisation, ticket.organisation_id, "organisation")
    _, plan = _plan_of(ctx, org)
    routing = contact_rules.route_request(
        plan, _policy_contacts(ctx, org.id), str(ticket.requester_id)
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


class StartTimer(Args):
    timer_id: uuid.UUID
    organisation_id: uuid.UUID
    ticket_id: uuid.UUID | None = None
    #: The desktop's clock when the consultant pressed start: billing data, checked for skew.
    started_at: AwareDatetime
    billable: bool = True


@mutator("start_timer", StartTimer, TIMEKEEPERS | {Role.AGENT, Role.COORDINATOR})
def start_timer(ctx: MutationContext, a: StartTimer) -> None:
    """One running timer per person, enforced here and by a unique index on the server."""
    if a.started_at > ctx.now + MAX_CLOCK_SKEW:
        raise MutationRejected("invalid", "the timer cannot start in the future", "started_at")
    running = ctx.session.scalar(
        select(RunningTimer).where(
            RunningTimer.person_id == ctx.actor_id, RunningTimer.deleted.is_(False)
        )
    )
    if running is not None:
        raise MutationRejected("conflict", "a timer is already running; stop it first", "timer_id")
    _get(ctx, Organisation, a.organisation_id, "organisation")
    billable = a.billable
    if a.ticket_id is not None:
        ticket = _ticket(ctx, a.ticket_id)
        if ticket.organisation_id != a.organisation_id:
            raise MutationRejected(
                "invalid", "the ticket belongs to another organisation", "ticket_id"
            )
        # Seed 001: general support time is never billable.
        billable = billable and ticket.kind is TicketKind.ONE_ON_ONE
    ctx.session.add(
        RunningTimer(
            id=a.timer_id,
            tenant_id=ctx.tenant_id,
            person_id=ctx.actor_id,
            organisation_id=a.organisation_id,
            ticket_id=a.ticket_id,
            started_at=a.started_at,
            billable=billable,
        )
    )


class StopTimer(Args):
    timer_id: uuid.UUID
    entry_id: uuid.UUID
    ended_at: AwareDatetime
    note: Body = ""


@mutator("stop_timer", StopTimer, TIMEKEEPERS | {Role.AGENT, Role.COORDINATOR})
def stop_timer(ctx: MutationContext, a: StopTimer) -> None:
    """Stopping appends the time entry and tombstones the timer in one transaction: the time
    is recorded exactly once whatever retries happen (the entry id comes from the client)."""
    timer: RunningTimer = _get(ctx, RunningTimer, a.timer_id, "timer")
    if timer.person_id != ctx.actor_id:
        raise MutationRejected(
            "forbidden", "only the person running a timer can stop it", "timer_id"
        )
    if a.ended_at < timer.started_at:
        raise MutationRejected("invalid", "the timer cannot stop before it started", "ended_at")
    if a.ended_at > ctx.now + MAX_CLOCK_SKEW:
        raise MutationRejected("invalid", "the timer cannot stop in the future", "ended_at")
    timer.deleted = True
    ctx.session.add(
        TimeEntry(
            id=a.entry_id,
            tenant_id=ctx.tenant_id,
            organisation_id=timer.organisation_id,
            person_id=timer.person_id,
            ticket_id=timer.ticket_id,
            kind=TimeKind.UNSCHEDULED,
            started_at=timer.started_at,
            ended_at=a.ended_at,
            billable=timer.billable,
            note=a.note,
            source="timer",
            created_at=ctx.now,
        )
    )


class AddTimeEntry(Args):
    entry_id: uuid.UUID
    organisation_id: uuid.UUID
    person_id: uuid.UUID | None = None
    ticket_id: uuid.UUID | None = None
    kind: Literal["unscheduled", "scheduled_block"] = "unscheduled"
    started_at: AwareDatetime
    ended_at: AwareDatetime
    billable: bool = True
    extra_engineer: bool = False
    note: Body = ""
    #: A correction: the entry this one replaces (it is voided, never edited).
    voids_id: uuid.UUID | None = None


@mutator("add_time_entry", AddTimeEntry)
def add_time_entry(ctx: MutationContext, a: AddTimeEntry) -> None:
    """Manual time, or a correction of earlier time (append-only: the old entry is voided by
    reference). Only consultants and leads record time for someone else."""
    person_id = a.person_id or ctx.actor_id
    if person_id != ctx.actor_id and ctx.actor_role not in TIMEKEEPERS:
        raise MutationRejected(
            "forbidden", "only consultants and leads record time for others", "person_id"
        )
    if a.ended_at < a.started_at:
        raise MutationRejected("invalid", "end is before start", "ended_at")
    if a.ended_at > ctx.now + MAX_CLOCK_SKEW:
        raise MutationRejected("invalid", "time cannot be recorded in the future", "ended_at")
    if ctx.session.get(TimeEntry, a.entry_id) is not None:
        raise MutationRejected("duplicate", "a time entry with this id exists", "entry_id")
    _get(ctx, Organisation, a.organisation_id, "organisation")
    _get(ctx, User, person_id, "person")
    billable = a.billable
    if a.ticket_id is not None:
        ticket = _ticket(ctx, a.ticket_id)
        if ticket.organisation_id != a.organisation_id:
            raise MutationRejected(
                "invalid", "the ticket belongs to another organisation", "ticket_id"
            )
        # Seed 001: general support time is never billable (as for the timer).
        billable = billable and ticket.kind is TicketKind.ONE_ON_ONE
    if a.voids_id is not None:
        voided: TimeEntry = _get(ctx, TimeEntry, a.voids_id, "voided entry")
        if _is_voided(ctx, voided.id):
            raise MutationRejected("conflict", "that entry was already corrected", "voids_id")
    ctx.session.add(
        TimeEntry(
            id=a.entry_id,
            tenant_id=ctx.tenant_id,
            organisation_id=a.organisation_id,
            person_id=person_id,
            ticket_id=a.ticket_id,
            kind=TimeKind(a.kind),
            started_at=a.started_at,
            ended_at=a.ended_at,
            billable=billable,
            extra_engineer=a.extra_engineer,
            note=a.note,
            voids_id=a.voids_id,
            source="manual",
            created_at=ctx.now,
        )
    )


class VoidTimeEntry(Args):
    entry_id: uuid.UUID
    voids_id: uuid.UUID
    note: Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_no_control)]


@mutator("void_time_entry", VoidTimeEntry)
def void_time_entry(ctx: MutationContext, a: VoidTimeEntry) -> None:
    """Cancel an entry without replacing it: a zero-length voiding entry keeps the ledger
    append-only and says who removed the time and why."""
    voided: TimeEntry = _get(ctx, TimeEntry, a.voids_id, "voided entry")
    if voided.person_id != ctx.actor_id and ctx.actor_role not in TIMEKEEPERS:
        raise MutationRejected(
            "forbidden", "only consultants and leads void others' time", "voids_id"
        )
    if _is_voided(ctx, voided.id):
        raise MutationRejected("conflict", "that entry was already corrected", "voids_id")
    ctx.session.add(
        TimeEntry(
            id=a.entry_id,
            tenant_id=ctx.tenant_id,
            organisation_id=voided.organisation_id,
            person_id=voided.person_id,
            ticket_id=voided.ticket_id,
            kind=voided.kind,
            started_at=voided.started_at,
            ended_at=voided.started_at,
            billable=False,
            note=a.note,
            voids_id=voided.id,
            source="void",
            created_at=ctx.now,
        )
    )


def _is_voided(ctx: MutationContext, entry_id: uuid.UUID) -> bool:
    count = ctx.session.scalar(
        select(func.count())
        .select_from(TimeEntry)
        .where(TimeEntry.voids_id == entry_id, TimeEntry.deleted.is_(False))
    )
    return bool(count)


class ScheduleAppointment(Args):
    appointment_id: uuid.UUID
    organisation_id: uuid.UUID
    consultant_id: uuid.UUID | None = None
    ticket_id: uuid.UUID | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    note: Body = ""
    #: Rescheduling: the appointment this booking replaces (cancelled right after), which the
    #: new slot may overlap.
    replaces_id: uuid.UUID | None = None


@mutator("schedule_appointment", ScheduleAppointment, TIMEKEEPERS | TRIAGERS)
def schedule_appointment(ctx: MutationContext, a: ScheduleAppointment) -> None:
    if a.ends_at <= a.starts_at:
        raise MutationRejected("invalid", "the appointment must end after it starts", "ends_at")
    if ctx.session.get(Appointment, a.appointment_id) is not None:
        raise MutationRejected("duplicate", "an appointment with this id exists", "appointment_id")
    _get(ctx, Organisation, a.organisation_id, "organisation")
    if a.consultant_id is not None:
        _get(ctx, User, a.consultant_id, "consultant")
    clash = ctx.session.scalar(
        select(Appointment.starts_at).where(
            Appointment.consultant_id == (a.consultant_id or ctx.actor_id),
            Appointment.deleted.is_(False),
            Appointment.status == AppointmentStatus.SCHEDULED,
            Appointment.starts_at < a.ends_at,
            Appointment.ends_at > a.starts_at,
            Appointment.id != (a.replaces_id or a.appointment_id),
        ).limit(1)
    )
    if clash is not None:
        raise MutationRejected(
            "conflict", "the consultant already has an appointment overlapping this time "
            f"(starting {clash:%Y-%m-%d %H:%M} UTC)", "starts_at")
    ctx.session.add(
        Appointment(
            id=a.appointment_id,
            tenant_id=ctx.tenant_id,
            organisation_id=a.organisation_id,
            consultant_id=a.consultant_id or ctx.actor_id,
            ticket_id=a.ticket_id,
            starts_at=a.starts_at,
            ends_at=a.ends_at,
            note=a.note,
        )
    )


class CancelAppointment(Args):
    appointment_id: uuid.UUID
    #: When the customer cancelled (they may have phoned before the desktop recorded it).
    cancelled_at: AwareDatetime | None = None


@mutator("cancel_appointment", CancelAppointment, TIMEKEEPERS | TRIAGERS)
def cancel_appointment(ctx: MutationContext, a: CancelAppointment) -> None:
    """Seed 001: cancelled less than 24 hours before the start bills 30 minutes."""
    appt: Appointment = _get(ctx, Appointment, a.appointment_id, "appointment")
    if appt.status is not AppointmentStatus.SCHEDULED:
        raise MutationRejected(
            "invalid", f"the appointment is already {appt.status.value}", "appointment_id"
        )
    cancelled_at = a.cancelled_at or ctx.now
    if cancelled_at > ctx.now + MAX_CLOCK_SKEW:
        raise MutationRejected("invalid", "a cancellation cannot be in the future", "cancelled_at")
    appt.status = AppointmentStatus.CANCELLED
    appt.cancelled_at = cancelled_at
    fee = cancellation_fee_minutes(appt.starts_at, cancelled_at)
    if fee:
        ctx.session.add(
            TimeEntry(
                id=ctx.derived_id(),
                tenant_id=ctx.tenant_id,
                organisation_id=appt.organisation_id,
                person_id=appt.consultant_id or ctx.actor_id,
                ticket_id=appt.ticket_id,
                appointment_id=appt.id,
                kind=TimeKind.LATE_CANCELLATION,
                started_at=appt.starts_at,
                ended_at=appt.starts_at + timedelta(minutes=fee),
                billable=True,
                note="Cancelled less than 24 hours before the appointment",
                source="cancellation",
                created_at=ctx.now,
            )
        )


class RecordHourPurchase(Args):
    block_id: uuid.UUID
    organisation_id: uuid.UUID
    minutes: Annotated[int, Field(gt=0, le=100_000 * 60)]
    purchased_at: AwareDatetime
    price: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)] | None = None
    note: Body = ""


@mutator("record_hour_purchase", RecordHourPurchase, BILLING_ADMINS)
def record_hour_purchase(ctx: MutationContext, a: RecordHourPurchase) -> None:
    if a.purchased_at > ctx.now + MAX_CLOCK_SKEW:
        raise MutationRejected("invalid", "a purchase cannot be in the future", "purchased_at")
    if ctx.session.get(HourBlock, a.block_id) is not None:
        raise MutationRejected("duplicate", "an hour block with this id exists", "block_id")
    _get(ctx, Organisation, a.organisation_id, "organisation")
    ctx.session.add(
        HourBlock(
            id=a.block_id,
            tenant_id=ctx.tenant_id,
            organisation_id=a.organisation_id,
            purchased_at=a.purchased_at,
            minutes=a.minutes,
            price=a.price,
            recorded_by_id=ctx.actor_id,
            note=a.note,
        )
    )
