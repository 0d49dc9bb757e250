"""The mutation registry and what every mutator shares: the context a mutation runs in, argument
models with bounded fields, reference checks, refusal codes and the ticket history writer.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import event, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from ...models import (
    Appointment,
    Calendar,
    Contact,
    HourBlock,
    Organisation,
    Plan,
    Role,
    RunningTimer,
    Ticket,
    TicketEvent,
    TimeEntry,
    User,
)
from ...models import event_payloads as ev
from ...policy import contacts as contact_rules
from ...policy.errors import PolicyError
from ...policy.plans import SupportPlan
from ..bounds import (
    NewRow,
    Ref,
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
    clean = "".join(
        c if c in "\n\t" or (ord(c) >= 32 and ord(c) != 127) else repr(c)[1:-1]
        for c in text[:limit]
    )
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
    #: The argument naming the organisation whose contacts the mutator reads through
    #: :func:`policy_contacts`, for a push group to load them with its other rows.
    contacts_of: str | None = None


MUTATORS: dict[str, Mutator] = {}

ALL_ROLES = frozenset(Role)
TRIAGERS = frozenset({Role.COORDINATOR, Role.LEAD, Role.ADMIN})
TIMEKEEPERS = frozenset({Role.CONSULTANT, Role.LEAD, Role.ADMIN})
BILLING_ADMINS = frozenset({Role.LEAD, Role.ADMIN})


def mutator(
    name: str,
    args: type[A],
    roles: frozenset[Role] = ALL_ROLES,
    *,
    contacts_of: str | None = None,
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
        if contacts_of is not None and contacts_of not in args.model_fields:
            raise TypeError(f"mutator {name!r}: contacts_of names no argument {contacts_of!r}")
        MUTATORS[name] = Mutator(name, args, roles, fn, _references(args), contacts_of)
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


def get_row(
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
            get_row(ctx, marker.model, value, marker.what, name)
        elif value in ctx.session.info.get(KNOWN_UNUSED_IDS, ()):
            continue
        elif ctx.session.get(marker.model, value) is not None:
            raise MutationRejected(
                DUPLICATE, "this id is already in use; retry with a new one", name
            )


def get_ticket(ctx: MutationContext, ticket_id: uuid.UUID) -> Ticket:
    ticket: Ticket = get_row(ctx, Ticket, ticket_id, "ticket")
    return ticket


def plan_of(ctx: MutationContext, org: Organisation) -> tuple[Plan, SupportPlan]:
    plan: Plan = get_row(ctx, Plan, org.plan_id, "plan")
    calendar_name = None
    if plan.calendar_id is not None:
        cal = ctx.session.get(Calendar, plan.calendar_id)
        calendar_name = cal.name if cal is not None else None
    return plan, plan.to_policy(calendar_name)


def preload_plans(session: Session, tenant_id: uuid.UUID, org_ids: set[uuid.UUID]) -> None:
    """Load the plans and calendars of the organisations in ``org_ids`` (as the session holds
    them) that the session does not hold yet, in one query each: what :func:`plan_of` reads.
    For a push group, which preloads its rows so that reading one does not flush the rest
    (``Session.get`` autoflushes when it has to query)."""
    orgs = [session.identity_map.get(identity_key(Organisation, i)) for i in org_ids]
    plan_ids = {o.plan_id for o in orgs if isinstance(o, Organisation)}
    with session.no_autoflush:
        _load_missing(session, Plan, tenant_id, plan_ids)
        plans = [session.identity_map.get(identity_key(Plan, i)) for i in plan_ids]
        calendar_ids = {p.calendar_id for p in plans if isinstance(p, Plan) and p.calendar_id}
        _load_missing(session, Calendar, tenant_id, calendar_ids)


def _load_missing(
    session: Session, model: type[Any], tenant_id: uuid.UUID, ids: set[uuid.UUID]
) -> None:
    missing = {i for i in ids if not held(session, model, i)}
    if missing:
        session.scalars(
            select(model).where(model.id.in_(missing), model.tenant_id == tenant_id)
        ).all()


def held(session: Session, model: type[Any], row_id: uuid.UUID) -> bool:
    """Whether the session holds the row loaded, so ``Session.get`` would not query."""
    row = session.identity_map.get(identity_key(model, row_id))
    return row is not None and not inspect(row).expired_attributes


def record_event(
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


def policy_contacts(ctx: MutationContext, org_id: uuid.UUID) -> list[contact_rules.Contact]:
    session = ctx.session
    ordered = select(Contact).order_by(Contact.name, Contact.id)
    known: dict[uuid.UUID, list[Contact]] = session.info.get(ORG_CONTACTS) or {}
    if any(isinstance(o, Contact) for o in (*session.new, *session.dirty)):
        # A contact added or changed in this transaction: let the autoflush write it so the
        # database filters and orders it like the others.
        rows = list(
            session.scalars(
                ordered.where(Contact.organisation_id == org_id, Contact.deleted.is_(False))
            )
        )
    elif org_id in known:
        # Loaded with the group's other rows (preload_org_contacts) and no contact changed
        # since: the same rows, in the same order, as the query below would give.
        rows = [c for c in known[org_id] if not c.deleted and c.organisation_id == org_id]
    else:
        # No autoflush: a server push group writes its tickets once, at its end (a flush here
        # cost every request its own INSERTs). Filtered on the rows' session state, which is
        # the database's, since no contact is pending.
        with session.no_autoflush:
            rows = [
                c
                for c in session.scalars(ordered.where(Contact.organisation_id == org_id))
                if not c.deleted
            ]
    return [
        contact_rules.Contact(id=str(c.id), name=c.name, email=c.email, validated=c.validated)
        for c in rows
    ]


#: ``Session.info`` key: organisation id -> all its contacts (deleted too), in the order
#: :func:`policy_contacts` reads them, loaded for many organisations in one query by
#: :func:`preload_org_contacts`. Dropped as soon as a contact is written or a rollback may have
#: undone one, since a list cannot tell that a contact joined or left the organisation.
ORG_CONTACTS = "agentdesk.org_contacts"


def preload_org_contacts(session: Session, tenant_id: uuid.UUID, org_ids: set[uuid.UUID]) -> None:
    """Load the contacts of ``org_ids`` in one query for :func:`policy_contacts` (a server push
    group of new tickets read them one query per request).

    Only for a caller that holds the tenant's counter lock until it commits (the push group's
    ``_preload``): no other writer can change a contact meanwhile, so the lists stay the
    database's except for this transaction's own changes, which drop them. The rows are held by
    the caller (the session's identity map holds them only weakly)."""
    if not org_ids or any(isinstance(o, Contact) for o in (*session.new, *session.dirty)):
        return
    known: dict[uuid.UUID, list[Contact]] = session.info.setdefault(ORG_CONTACTS, {})
    with session.no_autoflush:
        rows = session.scalars(
            select(Contact)
            .where(Contact.organisation_id.in_(org_ids), Contact.tenant_id == tenant_id)
            .order_by(Contact.name, Contact.id)
        ).all()
    for org_id in org_ids:
        known[org_id] = []
    for c in rows:
        known[c.organisation_id].append(c)


@event.listens_for(Session, "before_flush")
def _drop_org_contacts(session: Session, _context: Any, _instances: Any) -> None:
    if ORG_CONTACTS in session.info and any(
        isinstance(o, Contact) for o in (*session.new, *session.dirty, *session.deleted)
    ):
        del session.info[ORG_CONTACTS]


@event.listens_for(Session, "after_soft_rollback")
def _forget_org_contacts(session: Session, _transaction: Any) -> None:
    session.info.pop(ORG_CONTACTS, None)


# --------------------------------------------------------------------------- SLA instants

#: Calendars by their stored data: a mutation reads the plan's calendar row, and building a
#: BusinessCalendar (holiday tables, week caches) per mutation would cost more than the rules.
