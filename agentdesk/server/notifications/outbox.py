"""The outbox, written in the transaction of the change that owes a message.

Why here and not in the mutators: mutators also run optimistically on every desktop replica,
which must never queue mail. The server's push calls :func:`derive` once per applied mutation
with the rows that mutation added (its ticket events and time entries already say what happened:
a ticket created or redirected, a first assignment, a reply, extra charges, waiting on the
customer, resolved, a late cancellation), and writes the result in the same transaction. Intake
(portal, API) goes through the same push path, so it needs nothing of its own.

Everything is rendered now, with the facts of now (who has the ticket, the plan's target): the
customer gets what was true when the change happened, however late the mail server comes back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, exists, insert, select
from sqlalchemy.orm import Session

from ...models import (
    Calendar,
    Contact,
    DeliveryStatus,
    EventKind,
    Notification,
    NotificationDelivery,
    NotificationKind,
    NotificationTemplate,
    Organisation,
    Plan,
    Role,
    Tenant,
    Ticket,
    TicketEvent,
    TicketStatus,
    TimeEntry,
    TimeKind,
    User,
    new_id,
)
from ...models.billing import Appointment
from ...policy import intake
from ...policy.calendar import BusinessCalendar
from ...policy.plans import SupportPlan
from . import templates

_NOTIFICATIONS = cast(Table, Notification.__table__)
_DELIVERIES = cast(Table, NotificationDelivery.__table__)


@dataclass
class Recipient:
    email: str
    name: str
    contact_id: uuid.UUID | None = None


@dataclass
class Pending:
    """One notification not written yet, and its recipients."""

    kind: NotificationKind
    ticket_id: uuid.UUID | None
    subject: str
    text: str
    html: str
    recipients: list[Recipient]
    cause: str = ""
    id: uuid.UUID = field(default_factory=new_id)
    #: Owed once whatever happens (``Notification.once_key``, unique per team).
    once_key: str | None = None


@dataclass
class _Facts:
    """Rows a mutation's notifications need, read once per mutation."""

    session: Session
    tenant_id: uuid.UUID
    _plans: dict[uuid.UUID, tuple[SupportPlan, BusinessCalendar | None]] = field(
        default_factory=dict
    )

    _pending: dict[tuple[type[Any], uuid.UUID], Any] | None = None

    def get(self, model: type[Any], row_id: uuid.UUID | None) -> Any:
        """The row, flushed or not: a push group writes its rows once, at its end, and
        ``Session.get`` without an autoflush does not see a row that is only pending."""
        if row_id is None:
            return None
        if self._pending is None:
            self._pending = {
                (type(o), o.id): o for o in self.session.new if getattr(o, "id", None) is not None
            }
        found = self._pending.get((model, row_id))
        return found if found is not None else self.session.get(model, row_id)

    def plan(self, org: Organisation) -> tuple[SupportPlan, BusinessCalendar | None]:
        if org.plan_id not in self._plans:
            plan: Plan = self.session.get(Plan, org.plan_id)  # type: ignore[assignment]
            cal = self.get(Calendar, plan.calendar_id)
            self._plans[org.plan_id] = (
                plan.to_policy(cal.name if cal else None),
                cal.to_policy() if cal is not None else None,
            )
        return self._plans[org.plan_id]

    def template(self, kind: NotificationKind) -> templates.Override | None:
        """The team's own template for ``kind``, if a lead wrote one: read once per
        transaction (a push group owes many notifications; its templates do not change)."""
        return team_templates(self.session, self.tenant_id).get(kind)

    def make(
        self,
        kind: NotificationKind,
        ticket_id: uuid.UUID | None,
        recipients: Iterable[Recipient],
        base: dict[str, Any],
    ) -> Pending:
        return make(kind, ticket_id, recipients, base, self.template(kind))

    def team(self) -> str:
        tenant = self.session.get(Tenant, self.tenant_id)
        return tenant.name if tenant is not None else "Support"

    def validated_contacts(self, org_id: uuid.UUID) -> list[Contact]:
        # All contacts, filtered here: rows changed in this push and not flushed yet keep
        # their in-session state (the query would filter on the database's).
        rows = self.session.scalars(
            select(Contact).where(Contact.organisation_id == org_id, Contact.deleted.is_(False))
        ).all()
        return sorted((c for c in rows if c.validated), key=lambda c: (c.name, str(c.id)))


def derive(
    session: Session,
    tenant_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    added: Sequence[object],
    earlier: Sequence[Pending] = (),
) -> list[Pending]:
    """The notifications owed for the rows one mutation added. ``earlier``: this transaction's
    notifications not written yet (so "once, on the first assignment" holds inside a push)."""
    wanted = [
        o
        for o in added
        if (isinstance(o, TicketEvent) and o.kind in _EVENT_KINDS)
        or (isinstance(o, TimeEntry) and o.kind is TimeKind.LATE_CANCELLATION)
    ]
    if not wanted:
        return []
    out: list[Pending] = []
    with session.no_autoflush:  # a push flushes its group once; reading must not flush it
        facts = _Facts(session, tenant_id)
        for row in wanted:
            if isinstance(row, TimeEntry):
                out.extend(_late_cancellation(facts, row))
            else:
                assert isinstance(row, TicketEvent)
                out.extend(_for_event(facts, actor_id, row, [*earlier, *out]))
    return out


_EVENT_KINDS = frozenset(
    {
        EventKind.CREATED,
        EventKind.REDIRECT,
        EventKind.ASSIGNMENT,
        EventKind.REPLY,
        EventKind.EXTRA_CHARGES,
        EventKind.STATUS,
        EventKind.NOTE,
    }
)


def _for_event(
    facts: _Facts, actor_id: uuid.UUID | None, event: TicketEvent, earlier: Sequence[Pending]
) -> list[Pending]:
    ticket: Ticket | None = facts.get(Ticket, event.ticket_id)
    if ticket is None:
        return []
    org: Organisation | None = facts.get(Organisation, ticket.organisation_id)
    requester: Contact | None = facts.get(Contact, ticket.requester_id)
    if org is None or requester is None:
        return []
    plan, calendar = facts.plan(org)
    tier = ticket.tier or ticket.stated_urgency
    base: dict[str, Any] = {
        "ref": intake.reference(str(ticket.id)),
        "subject": ticket.subject,
        "team": facts.team(),
        "organisation": org.name,
        "requester": requester.name,
        "requester_email": requester.email,
        "expectation": intake.expectation(plan, tier),
        "body": event.body,
    }
    to_requester = [Recipient(requester.email, requester.name, requester.id)]
    data = event.data or {}
    kind = event.kind
    if kind is EventKind.CREATED:
        if ticket.status is TicketStatus.REDIRECTED:
            return []  # the redirect event says what the requester is told
        notice = None
        if calendar is not None:
            notice = intake.hours_notice(calendar, ticket.arrived_at, intake.hours_text(calendar))
        return [
            facts.make(
                NotificationKind.ACKNOWLEDGEMENT,
                ticket.id,
                to_requester,
                {**base, "hours_notice": notice, "entitlement": _flag(facts, ticket)},
            )
        ]
    if kind is EventKind.NOTE and data.get("entitlement") == "allowance_used_up":
        coordinators = facts.session.scalars(
            select(User)
            .where(
                User.tenant_id == facts.tenant_id,
                User.role == Role.COORDINATOR,
                User.active.is_(True),
                User.deleted.is_(False),
                User.email.is_not(None),
            )
            .order_by(User.username)
        ).all()
        people = [Recipient(u.email or "", u.display_name) for u in coordinators]
        return [facts.make(NotificationKind.ALLOWANCE_COORDINATORS, ticket.id, people, base)]
    if kind is EventKind.REDIRECT:
        out = []
        notify = [uuid.UUID(c) for c in data.get("notify", [])]
        contacts = [c for c in (facts.get(Contact, cid) for cid in notify) if c is not None]
        if contacts:
            out.append(
                facts.make(
                    NotificationKind.REDIRECT_CONTACTS,
                    ticket.id,
                    [Recipient(c.email, c.name, c.id) for c in contacts],
                    base,
                )
            )
        notice = _requester_notice(facts, ticket)
        out.append(
            facts.make(
                NotificationKind.REDIRECT_REQUESTER,
                ticket.id,
                to_requester,
                {**base, "body": notice},
            )
        )
        return out
    if kind is EventKind.ASSIGNMENT:
        if data.get("new") is None or data.get("old") is not None:
            return []
        if _assigned_before(facts.session, ticket.id, earlier):
            return []
        assignee: User | None = facts.get(User, ticket.assignee_id)
        name = assignee.display_name if assignee is not None else "A member of our team"
        return [
            facts.make(
                NotificationKind.ASSIGNMENT, ticket.id, to_requester, {**base, "assignee": name}
            )
        ]
    if kind is EventKind.REPLY:
        author: User | None = facts.get(User, event.author_id or actor_id)
        return [
            facts.make(
                NotificationKind.REPLY,
                ticket.id,
                to_requester,
                {**base, "author": author.display_name if author else base["team"]},
            )
        ]
    if kind is EventKind.EXTRA_CHARGES:
        if not data.get("applies"):
            return []
        estimate = data.get("estimate")
        return [
            facts.make(
                NotificationKind.EXTRA_CHARGES,
                ticket.id,
                to_requester,
                {**base, "estimate": estimate or ""},
            )
        ]
    if kind is EventKind.STATUS:
        new = data.get("new")
        if new == TicketStatus.WAITING_ON_CUSTOMER.value:
            return [facts.make(NotificationKind.WAITING_ON_CUSTOMER, ticket.id, to_requester, base)]
        if new == TicketStatus.RESOLVED.value:
            return [facts.make(NotificationKind.RESOLUTION, ticket.id, to_requester, base)]
    return []


def _flag(facts: _Facts, ticket: Ticket) -> str:
    """The entitlement check's reason, when the request failed it (written with the ticket)."""
    for obj in facts.session.new:
        if (
            isinstance(obj, TicketEvent)
            and obj.ticket_id == ticket.id
            and obj.kind is EventKind.NOTE
            and (obj.data or {}).get("entitlement")
        ):
            return obj.body
    return ""


def _requester_notice(facts: _Facts, ticket: Ticket) -> str:
    """The redirect's words for the requester, as the contact rules wrote them."""
    for obj in facts.session.new:
        if (
            isinstance(obj, TicketEvent)
            and obj.ticket_id == ticket.id
            and obj.kind is EventKind.NOTIFICATION
            and obj.body
        ):
            return obj.body
    return (
        "We can only assist support contacts your organisation has validated. Please ask "
        "your organisation's validated support contacts to get in touch with us."
    )


def _assigned_before(session: Session, ticket_id: uuid.UUID, earlier: Sequence[Pending]) -> bool:
    if any(p.kind is NotificationKind.ASSIGNMENT and p.ticket_id == ticket_id for p in earlier):
        return True
    stmt = select(
        exists().where(
            _NOTIFICATIONS.c.ticket_id == ticket_id,
            _NOTIFICATIONS.c.kind == NotificationKind.ASSIGNMENT.value,
        )
    )
    return bool(session.execute(stmt).scalar())


def _late_cancellation(facts: _Facts, entry: TimeEntry) -> list[Pending]:
    appt: Appointment | None = facts.get(Appointment, entry.appointment_id)
    org: Organisation | None = facts.get(Organisation, entry.organisation_id)
    if org is None:
        return []
    tenant = facts.session.get(Tenant, facts.tenant_id)
    zone = tenant.timezone if tenant is not None else "UTC"
    from zoneinfo import ZoneInfo

    start = (appt.starts_at if appt is not None else entry.started_at).astimezone(ZoneInfo(zone))
    contacts = facts.validated_contacts(org.id)
    if not contacts:
        return []
    context = {
        "team": facts.team(),
        "starts": f"{start:%A %d %B %Y at %H:%M} ({zone})",
        "ref": org.name,
    }
    return [
        facts.make(
            NotificationKind.LATE_CANCELLATION,
            entry.ticket_id,
            [Recipient(c.email, c.name, c.id) for c in contacts],
            context,
        )
    ]


_TEMPLATES_KEY = "agentdesk.notification_templates"


def team_templates(
    session: Session, tenant_id: uuid.UUID
) -> dict[NotificationKind, templates.Override]:
    """The team's own templates by kind, cached in the session for its transaction."""
    cache: dict[uuid.UUID, dict[NotificationKind, templates.Override]] = session.info.setdefault(
        _TEMPLATES_KEY, {}
    )
    if tenant_id not in cache:
        with session.no_autoflush:
            rows = session.execute(
                select(
                    NotificationTemplate.kind,
                    NotificationTemplate.subject,
                    NotificationTemplate.body_text,
                    NotificationTemplate.body_html,
                ).where(NotificationTemplate.tenant_id == tenant_id)
            ).all()
        cache[tenant_id] = {kind: (subject, text, html) for kind, subject, text, html in rows}
    return cache[tenant_id]


def make(
    kind: NotificationKind,
    ticket_id: uuid.UUID | None,
    recipients: Iterable[Recipient],
    base: dict[str, Any],
    override: templates.Override | None = None,
) -> Pending:
    unique: dict[str, Recipient] = {}
    for r in recipients:
        if r.email and r.email.lower() not in unique:
            unique[r.email.lower()] = r
    # One rendering per notification: the greeting names the first recipient when it goes to
    # one person, and stays general when it goes to several.
    people = list(unique.values())
    name = people[0].name if len(people) == 1 else "there"
    subject, text, html = templates.render(kind, {**base, "name": name}, override)
    return Pending(kind, ticket_id, subject, text, html, people)


def write(
    session: Session,
    tenant_id: uuid.UUID,
    pending: Sequence[Pending],
    now: Any,
    domain: str,
    cause: str = "",
) -> None:
    """Insert ``pending`` and one delivery per recipient, in the caller's transaction;
    ``domain`` is the right-hand side of their Message-IDs (``config.mail_domain``)."""
    notes = [p for p in pending if p.recipients]
    if not notes:
        return
    conn = session.connection()
    conn.execute(
        insert(_NOTIFICATIONS),
        [
            {
                "id": p.id,
                "tenant_id": tenant_id,
                "kind": p.kind,
                "ticket_id": p.ticket_id,
                "subject": p.subject,
                "body_text": p.text,
                "body_html": p.html,
                "created_at": now,
                "cause": p.cause or cause,
                "once_key": p.once_key,
            }
            for p in notes
        ],
    )
    rows = []
    for p in notes:
        for r in p.recipients:
            delivery_id = new_id()
            rows.append(
                {
                    "id": delivery_id,
                    "notification_id": p.id,
                    "tenant_id": tenant_id,
                    "email": r.email,
                    "name": r.name,
                    "contact_id": r.contact_id,
                    "message_id": f"<{delivery_id.hex}@{domain}>",
                    "status": DeliveryStatus.QUEUED,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "last_error": "",
                    "sent_at": None,
                }
            )
    conn.execute(insert(_DELIVERIES), rows)
