"""Every request that reaches the door, checked with the rules engine and kept.

A request is recorded through the same path a desktop's change takes: a ``create_ticket``
mutation pushed by the team's intake account (``sync_service.push``). So the rules are the
mutator's (entitlement, channel, validated contact, seed 003's redirect), the ticket reaches
every online desktop through the usual poke and pull, and the acknowledgement or redirect notices
are queued in the same transaction by the outbox hook. This module only does what a desktop
cannot: find the organisation and contact behind a typed name and email, record an unknown
sender as a non-validated contact (seed 003 needs a contact to redirect), and keep a request
from an unknown organisation under a holding organisation rather than drop it.

What the customer is then told is what was recorded (the ticket's status and its history, as
the batch's transaction wrote them), never decided a second time here.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, func, select
from sqlalchemy.orm import Session

from ...models import (
    Calendar,
    Contact,
    EventKind,
    MutationRecord,
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
from ...policy.calendar import BusinessCalendar
from ...policy.errors import PolicyError
from ...policy.plans import SupportPlan
from ...sync.protocol import Mutation, MutationResult, PushRequest
from ..deps import ServerState
from ..errors import ApiError
from ..sync_service import GroupBounds, push_results

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class _Recorded:
    """What a request's mutation recorded, as its group held it before committing: all the
    answer needs, so a request does not read its ticket back (``_answer``)."""

    status: TicketStatus
    arrived_at: datetime
    organisation: str
    plan: SupportPlan
    calendar: dict[str, object] | None
    #: The entitlement note's code and text (seed 000), if the request was flagged.
    entitlement: tuple[str, str] | None
    #: Seed 003: None if not redirected, else whether validated contacts were asked.
    redirect_asked: bool | None


#: Intake's own group bounds (``sync_service.GroupBounds``): one group per batch. A batch's
#: mutations are all new tickets, so the group locks the counter first and reads every
#: organisation, contact and contact list of the batch in one query each. The time bound is
#: longer than a desktop push's 25 ms, which on a busy machine cut a batch of 8 into 2-3
#: transactions, each paying the lock, counter, records, NOTIFY and commit again; a desktop's
#: push waits for it at most this long (measured: docs/performance.md, "Intake throughput").
INTAKE_GROUPS = GroupBounds(mutations=50, seconds=0.1, preload=50, lock_first=True)


class _Batcher:
    """Group commit for requests: the requests that arrive while a push is being written go
    out together as the next push (one transaction, up to ``MAX_BATCH``).

    Why: every write of a team holds its version-counter row until it commits, so one push per
    request made intake as slow as one transaction's round trips; a desktop's push batches its
    mutations the same way. Each request is still its own mutation: a refusal affects only it.

    The batcher is one sync client for the life of the process (one ``sync_clients`` row, not
    one per push), numbering its mutations on. If a push fails, what its committed groups
    recorded is read back from their mutation records, so a request that was recorded is
    answered as recorded (never refused and then filed again by a retry), and the rest are
    told to try again; the batcher then starts over as a new client.
    """

    MAX_BATCH = INTAKE_GROUPS.mutations

    def __init__(self, state: ServerState, user: User) -> None:
        self.state, self.user = state, user
        self.queue: queue.Queue[_Item] = queue.Queue()
        self.client_id = uuid.uuid4()
        self.last_id = 0
        threading.Thread(target=self._run, name="intake-batcher", daemon=True).start()

    def push(self, args: dict[str, object], client_time: datetime) -> _Done:
        future: Future[_Done] = Future()
        self.queue.put((args, client_time, future))
        try:
            return future.result(timeout=120)
        except FutureTimeout:
            raise _busy() from None

    def _run(self) -> None:
        while True:
            items = [self.queue.get()]
            while len(items) < self.MAX_BATCH:
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self._push(items)

    def _push(self, items: list[_Item]) -> None:
        first = self.last_id + 1
        self.last_id += len(items)
        mutations = [
            Mutation(id=i, name="create_ticket", args=args, client_time=at)
            for i, (args, at, _f) in enumerate(items, first)
        ]
        recorded: dict[int, _Recorded] = {}

        def keep(session: Session, results: Sequence[MutationResult]) -> None:
            try:
                recorded.update(_recorded(session, mutations, first, results))
            except Exception:  # the group stands; its requests read their answers back
                log.exception("intake: could not keep what a group recorded")

        try:
            pushed = push_results(
                self.state,
                self.user,
                PushRequest(client_id=self.client_id, mutations=mutations),
                INTAKE_GROUPS,
                keep,
            )
        except Exception:  # every waiting request is answered, never left hanging
            log.exception("intake: a push of %d request(s) failed", len(items))
            pushed = self._recover(mutations)
            # Start over as a new client: the server's last mutation id for this one is
            # unknown now, and a gap in the numbering would hold up every later push.
            self.client_id, self.last_id = uuid.uuid4(), 0
        results = {r.id: r for r in pushed}
        for mutation, (_a, _t, future) in zip(mutations, items, strict=True):
            result = results.get(mutation.id)
            if result is None:
                future.set_exception(_busy())
            else:
                future.set_result((result, recorded.get(mutation.id)))

    def _recover(self, mutations: list[Mutation]) -> list[MutationResult]:
        """The results of a failed push's mutations that were committed (their records)."""
        try:
            with session_scope(self.state.read_sessions) as s:
                rows = s.scalars(
                    select(MutationRecord).where(
                        MutationRecord.client_id == self.client_id,
                        MutationRecord.mutation_id.in_([m.id for m in mutations]),
                    )
                ).all()
                return [
                    MutationResult(
                        id=r.mutation_id,
                        status="applied" if r.status == "applied" else "rejected",
                        code=r.code,
                        message=r.message,
                        field=r.field,
                    )
                    for r in rows
                ]
        except Exception:
            log.exception("intake: could not read back what the failed push recorded")
            return []


_Done = tuple[MutationResult, "_Recorded | None"]
_Item = tuple[dict[str, object], datetime, "Future[_Done]"]


def _busy() -> ApiError:
    return ApiError(
        503,
        "unavailable",
        "the support desk is too busy to record your request just now; please try again in "
        "a minute",
        headers={"Retry-After": "60"},
    )


def _recorded(
    session: Session, mutations: list[Mutation], first: int, results: Sequence[MutationResult]
) -> dict[int, _Recorded]:
    """What each applied mutation of a group recorded, from the rows the group holds (its
    ticket, history, organisation, plan and calendar are all in the session: no query)."""
    applied = {r.id for r in results if r.status == "applied"}
    tickets = {uuid.UUID(str(mutations[i - first].args["ticket_id"])): i for i in applied}
    events: dict[uuid.UUID, list[TicketEvent]] = {}
    for row in list(session.identity_map.values()):
        if isinstance(row, TicketEvent) and row.ticket_id in tickets:
            events.setdefault(row.ticket_id, []).append(row)
    plans: dict[uuid.UUID, tuple[SupportPlan, dict[str, object] | None]] = {}
    out: dict[int, _Recorded] = {}
    for ticket_id, mutation_id in tickets.items():
        ticket = session.get(Ticket, ticket_id)
        org = session.get(Organisation, ticket.organisation_id) if ticket is not None else None
        if ticket is None or org is None:
            continue  # read back by the request instead
        if org.plan_id not in plans:
            plan = session.get(Plan, org.plan_id)
            cal = session.get(Calendar, plan.calendar_id) if plan and plan.calendar_id else None
            if plan is None:
                continue
            plans[org.plan_id] = (
                plan.to_policy(cal.name if cal else None),
                dict(cal.data) if cal is not None else None,
            )
        plan_policy, calendar = plans[org.plan_id]
        mine = events.get(ticket_id, [])
        note = next(
            (e for e in mine if e.kind is EventKind.NOTE and (e.data or {}).get("entitlement")),
            None,
        )
        redirect = next((e for e in mine if e.kind is EventKind.REDIRECT), None)
        out[mutation_id] = _Recorded(
            status=ticket.status,
            arrived_at=ticket.arrived_at,
            organisation=org.name,
            plan=plan_policy,
            calendar=calendar,
            entitlement=(str((note.data or {})["entitlement"]), note.body) if note else None,
            redirect_asked=None if redirect is None else bool((redirect.data or {}).get("notify")),
        )
    return out


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
    result, recorded = _batcher(state, tenant_id).push(args, client_time or utcnow())
    if result.status != "applied":
        raise ApiError(422, "invalid", result.message or "the request was refused", result.field)
    return _answer(
        recorded or _read_recorded(state, ticket_id), ticket_id, org_known, contact_known, req
    )


def _read_recorded(state: ServerState, ticket_id: uuid.UUID) -> _Recorded:
    """What was recorded for ``ticket_id``, read from the database: for a request whose group
    did not hand it over (its answers could not be kept, or the push failed after committing
    it)."""
    with session_scope(state.read_sessions) as s:
        ticket, org, plan, cal = s.execute(
            select(Ticket, Organisation, Plan, Calendar)
            .join(Organisation, Organisation.id == Ticket.organisation_id)
            .join(Plan, Plan.id == Organisation.plan_id)
            .outerjoin(Calendar, Calendar.id == Plan.calendar_id)
            .where(Ticket.id == ticket_id)
        ).one()
        events = list(s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)))
        note = next(
            (e for e in events if e.kind is EventKind.NOTE and (e.data or {}).get("entitlement")),
            None,
        )
        redirect = next((e for e in events if e.kind is EventKind.REDIRECT), None)
        return _Recorded(
            status=ticket.status,
            arrived_at=ticket.arrived_at,
            organisation=org.name,
            plan=plan.to_policy(cal.name if cal else None),
            calendar=dict(cal.data) if cal is not None else None,
            entitlement=(str((note.data or {})["entitlement"]), note.body) if note else None,
            redirect_asked=None if redirect is None else bool((redirect.data or {}).get("notify")),
        )


def _answer(
    recorded: _Recorded,
    ticket_id: uuid.UUID,
    org_known: bool,
    contact_known: bool,
    req: IntakeRequest,
) -> IntakeOutcome:
    """What the customer is told, from what was recorded (never decided a second time)."""
    plan = recorded.plan
    calendar = None
    if recorded.calendar is not None:
        with suppress(PolicyError):  # an unreadable calendar: no hours notice, never a 500
            calendar = BusinessCalendar.from_dict(recorded.calendar)
    code, flag = recorded.entitlement or (None, "")
    checks = [
        Check(
            "Organisation",
            org_known,
            f"{recorded.organisation} is a customer on the {plan.name} plan."
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
            recorded.redirect_asked is None,
            "You are a validated support contact."
            if recorded.redirect_asked is None
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
            else flag,
        ),
        Check(
            "Conversations left",
            code != "allowance_used_up",
            "Your plan has support conversations left this calendar year."
            if code != "allowance_used_up"
            else flag,
        ),
    ]
    steps: tuple[str, ...]
    if recorded.status is TicketStatus.REDIRECTED:
        status = "redirected"
        steps = (
            "We can only assist support contacts your organisation has validated.",
            "We have asked your organisation's validated support contacts how they would like "
            "to proceed."
            if recorded.redirect_asked
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
        words.hours_notice(calendar, recorded.arrived_at, words.hours_text(calendar))
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
