"""Every request that reaches the door, checked with the rules engine and kept.

A request is recorded through the same path a desktop's change takes: a ``create_ticket``
mutation pushed by the team's intake account (``sync_service.push``). So the rules are the
mutator's (entitlement, channel, validated contact, seed 003's redirect), the ticket reaches
every online desktop through the usual poke and pull, and the acknowledgement or redirect notices
are queued in the same transaction by the outbox hook. This module only does what a desktop
cannot: find the organisation and contact behind a typed name and email, record an unknown
sender as a non-validated contact (seed 003 needs a contact to redirect), and keep a request
from an unknown organisation under a holding organisation rather than drop it.

What the customer is then told is read back from what was recorded (the ticket's status and
its history), never decided a second time here.
"""

from __future__ import annotations

import queue
import threading
import uuid
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, func, select
from sqlalchemy.orm import Session

from ...models import (
    Calendar,
    Contact,
    EventKind,
    Organisation,
    Plan,
    Role,
    Tenant,
    Ticket,
    TicketEvent,
    TicketStatus,
    User,
    new_id,
    utcnow,
)
from ...models.db import session_scope
from ...models.versioning import enable_stamping
from ...policy import intake as words
from ...sync.protocol import Mutation, MutationResult, PushRequest
from ..deps import ServerState
from ..errors import ApiError
from ..sync_service import push_results

#: ``contacts.name``'s length: an address used as the name (no name given) may be longer.
_NAME_TYPE = Contact.__table__.c.name.type
CONTACT_NAME_MAX = (_NAME_TYPE.length or 200) if isinstance(_NAME_TYPE, String) else 200

#: The organisation that holds requests naming an organisation we do not know.
HOLDING_ORGANISATION = "Unmatched requests"
CHANNELS = ("portal", "email", "chat", "phone")


@dataclass(frozen=True)
class IntakeRequest:
    email: str
    name: str
    organisation: str
    subject: str
    description: str
    urgency: int
    channel: str = "portal"


@dataclass(frozen=True)
class Check:
    """One check at the door: its name, whether it passed, and what it means in plain words."""

    name: str
    passed: bool
    words: str


@dataclass(frozen=True)
class IntakeOutcome:
    ticket_id: uuid.UUID
    reference: str
    #: ``accepted``, ``redirected`` (seed 003), ``flagged`` (kept; a coordinator decides).
    status: str
    checks: tuple[Check, ...]
    next_steps: tuple[str, ...]
    hours_notice: str | None
    expectation: str


class _Batcher:
    """Group commit for requests: the requests that arrive while a push is being written go
    out together as the next push (one transaction, up to ``MAX_BATCH``).

    Why: every write of a team holds its version-counter row until it commits, so one push per
    request made intake as slow as one transaction's round trips; a desktop's push batches its
    mutations the same way. Each request is still its own mutation: a refusal affects only it.
    """

    MAX_BATCH = 50

    def __init__(self, state: ServerState, user: User) -> None:
        self.state, self.user = state, user
        self.queue: queue.Queue[tuple[dict[str, object], datetime, Future[MutationResult]]] = (
            queue.Queue()
        )
        threading.Thread(target=self._run, name="intake-batcher", daemon=True).start()

    def push(self, args: dict[str, object], client_time: datetime) -> MutationResult:
        future: Future[MutationResult] = Future()
        self.queue.put((args, client_time, future))
        try:
            return future.result(timeout=120)
        except FutureTimeout:
            raise ApiError(
                503,
                "unavailable",
                "the support desk is too busy to record your "
                "request just now; please try again in a minute",
                headers={"Retry-After": "60"},
            ) from None

    def _run(self) -> None:
        while True:
            items = [self.queue.get()]
            while len(items) < self.MAX_BATCH:
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                pushed = push_results(
                    self.state,
                    self.user,
                    PushRequest(
                        client_id=uuid.uuid4(),
                        mutations=[
                            Mutation(id=i, name="create_ticket", args=args, client_time=at)
                            for i, (args, at, _f) in enumerate(items, 1)
                        ],
                    ),
                )
                results = {r.id: r for r in pushed}
                for i, (_a, _t, future) in enumerate(items, 1):
                    if i in results:
                        future.set_result(results[i])
                    else:
                        future.set_exception(RuntimeError("the request was not processed"))
            except Exception as exc:  # reported to every waiting request, never swallowed
                for _a, _t, future in items:
                    if not future.done():
                        future.set_exception(exc)


#: Per server state and tenant: the intake account and its batcher (read and started once per
#: process). Keyed by the state's id and holding it, so the id cannot be reused.
_BATCHERS: dict[tuple[int, uuid.UUID], tuple[ServerState, _Batcher]] = {}
_BATCHERS_LOCK = threading.Lock()


def _batcher(state: ServerState, tenant_id: uuid.UUID) -> _Batcher:
    key = (id(state), tenant_id)
    with _BATCHERS_LOCK:
        found = _BATCHERS.get(key)
        if found is None:
            found = _BATCHERS[key] = (state, _Batcher(state, intake_user(state, tenant_id)))
    return found[1]


def intake_user(state: ServerState, tenant_id: uuid.UUID) -> User:
    """The team's intake account: the author of requests that arrive without a desktop. It
    has no password and is inactive, so nobody can sign in as it or assign it work."""
    return _intake_user(state, tenant_id)


def _intake_user(state: ServerState, tenant_id: uuid.UUID) -> User:
    username = f"intake-{tenant_id.hex[:20]}"
    # In this team only, and only the password-less account intake made: a username chosen
    # in another team must never stand in for it.
    mine = (User.username == username, User.tenant_id == tenant_id, User.password_hash.is_(None))
    with session_scope(state.read_sessions) as s:
        user = s.scalar(select(User).where(*mine))
        if user is not None:
            s.expunge(user)
            return user
    with session_scope(state.write_sessions) as s:
        enable_stamping(s, tenant_id)
        s.add(
            User(
                tenant_id=tenant_id,
                username=username,
                display_name="Support portal",
                email=None,
                role=Role.AGENT,
                active=False,
                password_hash=None,
            )
        )
    with session_scope(state.read_sessions) as s:
        user = s.scalar(select(User).where(*mine))
        assert user is not None
        s.expunge(user)
        return user


def default_tenant(state: ServerState) -> uuid.UUID:
    """The team the public portal files into: the first one created on this server."""
    with session_scope(state.read_sessions) as s:
        tenant_id = s.scalar(select(Tenant.id).order_by(Tenant.created_at, Tenant.id).limit(1))
    if tenant_id is None:
        raise ApiError(503, "unavailable", "this server has no support team yet")
    return tenant_id


def _find_or_record(
    state: ServerState, tenant_id: uuid.UUID, req: IntakeRequest
) -> tuple[uuid.UUID, uuid.UUID, bool, bool]:
    """``(organisation id, contact id, organisation known, contact known)``."""
    email = req.email.strip().lower()
    with session_scope(state.read_sessions) as s:
        # One round trip for the usual case: a known organisation and a known contact.
        found = s.execute(
            select(Organisation.id, Contact.id)
            .outerjoin(
                Contact,
                (Contact.organisation_id == Organisation.id)
                & Contact.deleted.is_(False)
                & (func.lower(Contact.email) == email),
            )
            .where(
                Organisation.tenant_id == tenant_id,
                Organisation.deleted.is_(False),
                func.lower(Organisation.name) == req.organisation.strip().lower(),
            )
            .order_by(Organisation.id, Contact.validated.desc(), Contact.id)
            .limit(1)
        ).first()
    org_id, contact_id = (found[0], found[1]) if found is not None else (None, None)
    if org_id is not None and contact_id is not None:
        return org_id, contact_id, True, True
    org_known = org_id is not None
    with session_scope(state.write_sessions) as s:
        enable_stamping(s, tenant_id)
        if org_id is None:
            org_id = _org_by_name(s, tenant_id, HOLDING_ORGANISATION)
            if org_id is None:
                plan_id = s.scalar(
                    select(Plan.id)
                    .where(
                        Plan.tenant_id == tenant_id,
                        Plan.deleted.is_(False),
                    )
                    .order_by(Plan.rank, Plan.key)
                    .limit(1)
                )
                if plan_id is None:
                    raise ApiError(503, "unavailable", "the support team has no plans yet")
                org = Organisation(
                    tenant_id=tenant_id,
                    name=HOLDING_ORGANISATION,
                    plan_id=plan_id,
                    membership="unknown",
                )
                s.add(org)
                s.flush()
                org_id = org.id
            contact_id = _contact_by_email(s, org_id, email)
        if contact_id is None:
            contact = Contact(
                tenant_id=tenant_id,
                organisation_id=org_id,
                name=(req.name.strip() or email)[:CONTACT_NAME_MAX],
                email=email,
                validated=False,
            )
            s.add(contact)
            s.flush()
            contact_id = contact.id
    return org_id, contact_id, org_known, False


def _org_by_name(s: Session, tenant_id: uuid.UUID, name: str) -> uuid.UUID | None:
    return s.scalar(
        select(Organisation.id)
        .where(
            Organisation.tenant_id == tenant_id,
            Organisation.deleted.is_(False),
            func.lower(Organisation.name) == name.strip().lower(),
        )
        .order_by(Organisation.id)
        .limit(1)
    )


def _contact_by_email(s: Session, org_id: uuid.UUID, email: str) -> uuid.UUID | None:
    return s.scalar(
        select(Contact.id)
        .where(
            Contact.organisation_id == org_id,
            Contact.deleted.is_(False),
            func.lower(Contact.email) == email,
        )
        .order_by(Contact.validated.desc(), Contact.id)
        .limit(1)
    )


def submit(
    state: ServerState,
    tenant_id: uuid.UUID,
    req: IntakeRequest,
    *,
    client_time: datetime | None = None,
) -> IntakeOutcome:
    """Record ``req`` (already validated for shape) and say what happens next."""
    org_id, contact_id, org_known, contact_known = _find_or_record(state, tenant_id, req)
    ticket_id = new_id()
    subject = (
        req.subject
        if org_known
        else f"{req.subject} [organisation given: {req.organisation.strip()}]"[:300]
    )
    args = {
        "ticket_id": str(ticket_id),
        "subject": subject[:300],
        "description": req.description,
        "channel": req.channel,
        "organisation_id": str(org_id),
        "requester_id": str(contact_id),
        "stated_urgency": req.urgency,
    }
    result = _batcher(state, tenant_id).push(args, client_time or utcnow())
    if result.status != "applied":
        raise ApiError(422, "invalid", result.message or "the request was refused", result.field)
    return _outcome(state, ticket_id, org_known, contact_known, req)


def _outcome(
    state: ServerState,
    ticket_id: uuid.UUID,
    org_known: bool,
    contact_known: bool,
    req: IntakeRequest,
) -> IntakeOutcome:
    with session_scope(state.read_sessions) as s:
        # Two round trips, not five: the ticket with its organisation, plan and calendar in one.
        found = s.execute(
            select(Ticket, Organisation, Plan, Calendar)
            .join(Organisation, Organisation.id == Ticket.organisation_id)
            .join(Plan, Plan.id == Organisation.plan_id)
            .outerjoin(Calendar, Calendar.id == Plan.calendar_id)
            .where(Ticket.id == ticket_id)
        ).one()
        ticket, org, plan_row, cal = found
        events = list(s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)))
        plan = plan_row.to_policy(cal.name if cal else None)
        calendar = cal.to_policy() if cal is not None else None
    entitlement = next(
        (e for e in events if e.kind is EventKind.NOTE and (e.data or {}).get("entitlement")), None
    )
    redirect = next((e for e in events if e.kind is EventKind.REDIRECT), None)
    code = (entitlement.data or {}).get("entitlement") if entitlement else None
    checks = [
        Check(
            "Organisation",
            org_known,
            f"{org.name} is a customer on the {plan.name} plan."
            if org_known
            else f'We could not find an organisation called "{req.organisation.strip()}"; a '
            f"coordinator will match your request to the right customer.",
        ),
        Check(
            "Contact",
            contact_known,
            "You are a known contact of your organisation."
            if contact_known
            else "This is the first request from this email address; we recorded you as a "
            "contact of your organisation.",
        ),
        Check(
            "Validated contact",
            redirect is None,
            "You are a validated support contact."
            if redirect is None
            # Never the internal history line: it names the validated contacts and their
            # email addresses, which a public form must not hand to whoever types a name.
            else "You are not one of your organisation's validated support contacts yet, so we "
            "cannot work on this request until one of them confirms it.",
        ),
        Check(
            "Channel",
            code != "channel_not_in_plan",
            f"{req.channel.capitalize()} support is included in the plan."
            if code != "channel_not_in_plan"
            else entitlement.body
            if entitlement
            else "",
        ),
        Check(
            "Conversations left",
            code != "allowance_used_up",
            "Your plan has support conversations left this calendar year."
            if code != "allowance_used_up"
            else entitlement.body
            if entitlement
            else "",
        ),
    ]
    steps: tuple[str, ...]
    if ticket.status is TicketStatus.REDIRECTED:
        status = "redirected"
        steps = (
            "We can only assist support contacts your organisation has validated.",
            "We have asked your organisation's validated support contacts how they would like "
            "to proceed."
            if (redirect and (redirect.data or {}).get("notify"))
            else "Your organisation has no validated support contacts yet: please ask it to "
            "validate one.",
        )
    elif not all(c.passed for c in checks):
        status = "flagged"
        steps = (
            "A Support Coordinator reviews your request together with the note above and "
            "gets back to you about how it can be handled.",
        )
    else:
        status = "accepted"
        steps = (
            "A Support Coordinator reviews your request and assesses its severity.",
            "A real person tells you who it has been assigned to and what to expect, with "
            "clear next steps.",
            "Your request is completed, and you are notified.",
        )
    notice = (
        words.hours_notice(calendar, ticket.arrived_at, words.hours_text(calendar))
        if calendar is not None
        else None
    )
    return IntakeOutcome(
        ticket_id=ticket_id,
        reference=words.reference(str(ticket_id)),
        status=status,
        checks=tuple(checks),
        next_steps=steps,
        hours_notice=notice,
        expectation=words.expectation(plan, req.urgency),
    )
