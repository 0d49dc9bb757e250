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
import json
import logging
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError
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
from ..policy.calendar import BusinessCalendar
from ..policy.errors import PolicyError
from ..policy.plans import SupportPlan, seed_calendars
from ..policy.sla import response_business_time, response_instants
from .bounds import (
    MAX_SPAN,
    Body,
    Instant,
    Line,
    Money,
    NewRow,
    Ref,
    Text,
    Tier,
    _no_control,
    unbounded_fields,
)

log = logging.getLogger(__name__)

#: How far in the future a client's clock may claim a timer started (clock skew, not time travel).
MAX_CLOCK_SKEW = timedelta(minutes=5)
_DERIVED_NS = uuid.UUID("6f1c7c52-3f8e-4f55-9a55-6a0d5c1e7f00")

#: Rejection codes (``MutationRejected.code``) a client may see. ``INTERNAL_ERROR`` is a mutator
#: failing in a way the rules did not foresee: refused, logged with the mutation id, never a 500
#: (a 500 would leave the mutation at the head of the client's outbox forever).
INVALID = "invalid"
NOT_FOUND = "not_found"
DUPLICATE = "duplicate"
FORBIDDEN = "forbidden"
CONFLICT = "conflict"
TOO_LONG = "too_long"
INTERNAL_ERROR = "internal_error"


class MutationRejected(Exception):
    """The rules refuse the mutation. ``code`` is for machines, ``message`` for people."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        # A refusal may quote what the client sent (pydantic names the bad character, an
        # unknown argument is its own field name): stored and shown, it must be printable text
        # of a bounded size - PostgreSQL refuses NUL in text, and ``field`` is a String(200).
        message, field = _printable(message, 2000), _printable(field, 200)
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def _printable(text: str | None, limit: int) -> Any:
    if text is None:
        return None
    clean = "".join(c if c in "\n\t" or (ord(c) >= 32 and ord(c) != 127) else repr(c)[1:-1]
                    for c in text[:limit])
    return clean[:limit]


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
    #: The id arguments and what they name (see :func:`resolve_references`).
    references: tuple[tuple[str, Ref | NewRow], ...] = ()


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
        loose = unbounded_fields(args)
        if loose:
            raise TypeError(
                f"mutator {name!r}: arguments {', '.join(loose)} have no bound; declare them"
                " with the types of agentdesk.sync.bounds (or Ref/NewRow for ids)"
            )
        MUTATORS[name] = Mutator(name, args, roles, fn, _references(args))
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
        raise MutationRejected(INVALID, f"{where}: {first['msg']}", where) from None
    except (ValueError, TypeError, ArithmeticError) as exc:  # raised by a type, not a rule
        raise MutationRejected(INVALID, f"invalid arguments: {exc}") from None
    try:
        resolve_references(ctx, m, args)
        m.apply(ctx, args)
    except PolicyError as exc:
        raise MutationRejected(INVALID, exc.message, exc.field) from None
    except (MutationRejected, SQLAlchemyError):
        raise  # a refusal, or the database's word (a constraint, a lost connection): the caller's
    except Exception:
        log.exception(
            "mutation %s/%s (%s) failed unexpectedly; refused", ctx.client_id, ctx.mutation_id, name
        )
        raise MutationRejected(
            INTERNAL_ERROR,
            f"{name} could not be applied (an unexpected error, logged as mutation"
            f" {ctx.mutation_id}); nothing was changed",
        ) from None


# --------------------------------------------------------------------------- argument types


# Bounded types live in .bounds (one place for every limit); these name the references.
TicketRef = Annotated[uuid.UUID, Ref(Ticket, "ticket")]
OrganisationRef = Annotated[uuid.UUID, Ref(Organisation, "organisation")]
ContactRef = Annotated[uuid.UUID, Ref(Contact, "contact")]
UserRef = Annotated[uuid.UUID, Ref(User, "user")]
EntryRef = Annotated[uuid.UUID, Ref(TimeEntry, "time entry")]
TimerRef = Annotated[uuid.UUID, Ref(RunningTimer, "timer")]
AppointmentRef = Annotated[uuid.UUID, Ref(Appointment, "appointment")]
BlockRef = Annotated[uuid.UUID, Ref(HourBlock, "hour block")]
NewTicketId = Annotated[uuid.UUID, NewRow(Ticket)]
NewTimerId = Annotated[uuid.UUID, NewRow(RunningTimer)]
NewEntryId = Annotated[uuid.UUID, NewRow(TimeEntry)]
NewAppointmentId = Annotated[uuid.UUID, NewRow(Appointment)]
NewBlockId = Annotated[uuid.UUID, NewRow(HourBlock)]


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- lookups


def _get(
    ctx: MutationContext, model: type[Any], row_id: uuid.UUID, what: str, where: str | None = None
) -> Any:
    row = ctx.session.get(model, row_id)
    if row is None or row.deleted or row.tenant_id != ctx.tenant_id:
        raise MutationRejected(NOT_FOUND, f"no such {what}", where or f"{what}_id")
    return row


def _references(args: type[BaseModel]) -> tuple[tuple[str, Ref | NewRow], ...]:
    """The fields of ``args`` that name rows, with what they name."""
    found: list[tuple[str, Ref | NewRow]] = []
    for name, info in args.model_fields.items():
        markers = [m for m in info.metadata if isinstance(m, Ref | NewRow)]
        for arg in get_args(info.annotation):  # Optional[Annotated[UUID, Ref]]
            if get_origin(arg) is Annotated:
                markers += [m for m in get_args(arg)[1:] if isinstance(m, Ref | NewRow)]
        if markers:
            found.append((name, markers[0]))
    return tuple(found)


#: ``Session.info`` key: ids of new rows the caller already found unused in this transaction
#: (the server's push group checks the ids a group creates in one query instead of one
#: round trip each), so :func:`resolve_references` need not look them up again. The primary key
#: still refuses a clash at the flush, where the caller's careful replay decides it.
KNOWN_UNUSED_IDS = "agentdesk.known_unused_ids"


def resolve_references(ctx: MutationContext, m: Mutator, args: BaseModel) -> None:
    """Check every id argument in the caller's tenant before the mutator runs: a reference to a
    missing, deleted or other tenant's row is ``not_found`` (the same answer either way, so a
    tenant learns nothing of another's ids); a new row's id already in use anywhere is
    ``duplicate`` with one generic message. The rows stay in the session for the mutator."""
    for name, marker in m.references:
        value = getattr(args, name)
        if value is None:
            continue
        if isinstance(marker, Ref):
            _get(ctx, marker.model, value, marker.what, name)
        elif value in ctx.session.info.get(KNOWN_UNUSED_IDS, ()):
            continue
        elif ctx.session.get(marker.model, value) is not None:
            raise MutationRejected(
                DUPLICATE, "this id is already in use; retry with a new one", name
            )


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
    session = ctx.session
    ordered = select(Contact).order_by(Contact.name, Contact.id)
    if any(isinstance(o, Contact) for o in (*session.new, *session.dirty)):
        # A contact added or changed in this transaction: let the autoflush write it so the
        # database filters and orders it like the others.
        rows = list(session.scalars(
            ordered.where(Contact.organisation_id == org_id, Contact.deleted.is_(False))))
    else:
        # No autoflush: a server push group writes its tickets once, at its end (a flush here
        # cost every request its own INSERTs). Filtered on the rows' session state, which is
        # the database's, since no contact is pending.
        with session.no_autoflush:
            rows = [c for c in session.scalars(ordered.where(Contact.organisation_id == org_id))
                    if not c.deleted]
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
    refresh_sla(ctx.session, ticket)  # a wait starts or ends, a redirect or its reopening
    _event(ctx, ticket, ev.StatusChange(old=current.value, new=target.value), note)
    if target is TicketStatus.RESOLVED:
        _event(
            ctx,
            ticket,
            ev.Notification(to=(str(ticket.requester_id),), about="resolved"),
            "Customer notified: the request is resolved.",
        )


# --------------------------------------------------------------------------- SLA instants

#: Calendars by their stored data: a mutation reads the plan's calendar row, and building a
#: BusinessCalendar (holiday tables, week caches) per mutation would cost more than the rules.
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
            found.extend(session.scalars(
                select(WaitingPeriod).where(WaitingPeriod.ticket_id == ticket.id)))
    pauses = {w.id: (w.started_at, w.ended_at) for w in found if not w.deleted}
    took = None
    try:
        plan, calendar = plan_row.to_policy(), plan_calendar(session, plan_row)
        instants = response_instants(ticket.arrived_at, ticket.urgency, plan, calendar,
                                     list(pauses.values()), ticket.first_response_at)
        if instants is not None and ticket.first_response_at is not None:
            took = int(response_business_time(ticket.arrived_at, ticket.first_response_at,
                                              instants[0], ticket.urgency, plan,
                                              calendar).total_seconds())
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
    tickets = session.scalars(select(Ticket).where(
        Ticket.tenant_id == tenant_id,
        Ticket.organisation_id.in_(orgs),
        Ticket.deleted.is_(False),
        Ticket.first_response_at.is_(None),
        Ticket.status.in_([TicketStatus(s) for s in workflow.OPEN_STATUSES]),
    )).all()
    for ticket in tickets:
        refresh_sla(session, ticket)
    return len(tickets)


# --------------------------------------------------------------------------- tickets


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


@mutator("create_ticket", CreateTicket)
def create_ticket(ctx: MutationContext, a: CreateTicket) -> None:
    """Record a request. Arrival is the clock of whoever runs the mutation (the server's, for
    the authoritative copy), so queue order never depends on a desktop's clock. Entitlement and
    contact validation are checked and written into the history; a request from a non-validated
    contact is redirected (seed 003), never silently dropped."""
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
    refresh_sla(ctx.session, ticket)


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
    counting ``exclude`` (the ticket being opened)."""
    from ..queries.conversations import conversations_this_year

    return conversations_this_year(
        ctx.session, org_id, ctx.now, _team_timezone(ctx), exclude=exclude
    )


def _team_timezone(ctx: MutationContext) -> str:
    from ..models import Tenant

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
    ticket = _ticket(ctx, a.ticket_id)
    for name in ("subject", "description", "stated_urgency"):
        new = getattr(a, name)
        old = getattr(ticket, name)
        if new is None or new == old:
            continue
        setattr(ticket, name, new)
        _event(ctx, ticket, ev.FieldChange(field=name, old=old, new=new), f"{name} changed")
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
    refresh_sla(ctx.session, ticket)
    _event(
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
    ticket_id: TicketRef
    status: Literal["in_progress", "waiting_on_customer", "resolved", "closed", "new"]
    note: Body = ""


@mutator("change_status", ChangeStatus)
def change_status(ctx: MutationContext, a: ChangeStatus) -> None:
    ticket = _ticket(ctx, a.ticket_id)
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
        refresh_sla(ctx.session, ticket)  # pauses after it no longer count
    to = (str(ticket.requester_id),)
    _event(ctx, ticket, ev.Reply(notification=notification, to=to), body)


class AddNote(Args):
    ticket_id: TicketRef
    body: Text
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
    ticket_id: TicketRef
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
    ticket_id: TicketRef
    applies: bool
    estimate: Money | None = None
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
    contact_id: ContactRef


class SwapContact(Args):
    out_id: ContactRef
    in_id: ContactRef


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
    ticket_id: TicketRef


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
    timer_id: NewTimerId
    organisation_id: OrganisationRef
    ticket_id: TicketRef | None = None
    #: The desktop's clock when the consultant pressed start: billing data, checked for skew.
    started_at: Instant
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
    timer_id: TimerRef
    entry_id: NewEntryId
    ended_at: Instant
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
    if a.ended_at - timer.started_at > MAX_SPAN:
        raise MutationRejected(
            TOO_LONG,
            f"the timer ran longer than {_span_text()}: stop it when the work ended (at most"
            f" {_span_text()} after it started) and record the rest as manual entries, split"
            " into one per day",
            "ended_at",
        )
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
    entry_id: NewEntryId
    organisation_id: OrganisationRef
    person_id: UserRef | None = None
    ticket_id: TicketRef | None = None
    kind: Literal["unscheduled", "scheduled_block"] = "unscheduled"
    started_at: Instant
    ended_at: Instant
    billable: bool = True
    extra_engineer: bool = False
    note: Body = ""
    #: A correction: the entry this one replaces (it is voided, never edited).
    voids_id: EntryRef | None = None


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
    if a.ended_at - a.started_at > MAX_SPAN:
        raise MutationRejected(
            TOO_LONG,
            f"one time entry covers at most {_span_text()}; split longer work into one entry"
            " per day",
            "ended_at",
        )
    if a.ended_at > ctx.now + MAX_CLOCK_SKEW:
        raise MutationRejected("invalid", "time cannot be recorded in the future", "ended_at")
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
        voided: TimeEntry = _get(ctx, TimeEntry, a.voids_id, "voided entry", "voids_id")
        _check_may_void(ctx, voided)
        if voided.organisation_id != a.organisation_id:
            raise MutationRejected(
                INVALID,
                "a correction must be for the same organisation as the entry it replaces",
                "voids_id",
            )
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
    entry_id: NewEntryId
    voids_id: EntryRef
    note: Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_no_control)]


@mutator("void_time_entry", VoidTimeEntry)
def void_time_entry(ctx: MutationContext, a: VoidTimeEntry) -> None:
    """Cancel an entry without replacing it: a zero-length voiding entry keeps the ledger
    append-only and says who removed the time and why."""
    voided: TimeEntry = _get(ctx, TimeEntry, a.voids_id, "voided entry", "voids_id")
    _check_may_void(ctx, voided)
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


def _check_may_void(ctx: MutationContext, entry: TimeEntry) -> None:
    """The one rule for voiding or correcting recorded time (``void_time_entry`` and
    ``add_time_entry``'s ``voids_id`` alike): the entry's owner, or a lead or admin."""
    if entry.person_id != ctx.actor_id and ctx.actor_role not in BILLING_ADMINS:
        raise MutationRejected(
            FORBIDDEN, "only the person who recorded the time, or a lead, can void it", "voids_id"
        )


def _span_text() -> str:
    return f"{int(MAX_SPAN.total_seconds() // 3600)} hours"


def _is_voided(ctx: MutationContext, entry_id: uuid.UUID) -> bool:
    count = ctx.session.scalar(
        select(func.count())
        .select_from(TimeEntry)
        .where(TimeEntry.voids_id == entry_id, TimeEntry.deleted.is_(False))
    )
    return bool(count)


class ScheduleAppointment(Args):
    appointment_id: NewAppointmentId
    organisation_id: OrganisationRef
    consultant_id: UserRef | None = None
    ticket_id: TicketRef | None = None
    starts_at: Instant
    ends_at: Instant
    note: Body = ""
    #: Rescheduling: the appointment this booking replaces (cancelled right after), which the
    #: new slot may overlap.
    replaces_id: AppointmentRef | None = None


@mutator("schedule_appointment", ScheduleAppointment, TIMEKEEPERS | TRIAGERS)
def schedule_appointment(ctx: MutationContext, a: ScheduleAppointment) -> None:
    if a.ends_at <= a.starts_at:
        raise MutationRejected("invalid", "the appointment must end after it starts", "ends_at")
    if a.ends_at - a.starts_at > MAX_SPAN:
        raise MutationRejected(
            TOO_LONG,
            f"an appointment lasts at most {_span_text()}; book longer work as one appointment"
            " per day",
            "ends_at",
        )
    _get(ctx, Organisation, a.organisation_id, "organisation")
    if a.consultant_id is not None:
        _get(ctx, User, a.consultant_id, "consultant")
    if a.ticket_id is not None:
        ticket = _ticket(ctx, a.ticket_id)
        if ticket.organisation_id != a.organisation_id:
            raise MutationRejected(
                INVALID, "the ticket belongs to another organisation", "ticket_id"
            )
    clash = ctx.session.scalar(
        select(Appointment.starts_at).where(
            Appointment.tenant_id == ctx.tenant_id,
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
    appointment_id: AppointmentRef
    #: When the customer cancelled (they may have phoned before the desktop recorded it).
    cancelled_at: Instant | None = None


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
    block_id: NewBlockId
    organisation_id: OrganisationRef
    minutes: Annotated[int, Field(gt=0, le=100_000 * 60)]
    purchased_at: Instant
    price: Money | None = None
    note: Body = ""


@mutator("record_hour_purchase", RecordHourPurchase, BILLING_ADMINS)
def record_hour_purchase(ctx: MutationContext, a: RecordHourPurchase) -> None:
    if a.purchased_at > ctx.now + MAX_CLOCK_SKEW:
        raise MutationRejected("invalid", "a purchase cannot be in the future", "purchased_at")
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
