"""Leads' view of the outbox: what was queued, sent or failed, to whom and why, and a retry;
and the team's notification templates, edited and previewed by leads.

Delivery state lives on the server only (desktop replicas never hold mail), so this is a plain
API for leads; ``delivery`` says whether this server sends at all (no SMTP configured: local
mode keeps everything queued).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Security
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, and_, not_, or_, select
from sqlalchemy.orm import Session

from ...models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationKind,
    NotificationTemplate,
    Tenant,
    utcnow,
)
from ..deps import ReadSession, StateDep, WriteSession
from ..errors import ApiError
from ..routes._common import Lead, bearer_scheme
from ..schemas import ERROR_RESPONSES
from ..schemas import Request as Body
from . import templates

router = APIRouter(
    tags=["notifications"], responses=ERROR_RESPONSES, dependencies=[Security(bearer_scheme)]
)


class DeliveryOut(BaseModel):
    id: uuid.UUID
    notification_id: uuid.UUID
    kind: str
    ticket_id: uuid.UUID | None
    subject: str
    email: str
    name: str
    status: Literal["queued", "sending", "sent", "failed"]
    attempts: int
    next_attempt_at: str
    last_error: str
    sent_at: str | None
    created_at: str


class OutboxOut(BaseModel):
    #: False when this server has no SMTP configured: messages stay queued, unsent.
    delivery: bool
    deliveries: list[DeliveryOut]
    #: Pass as ``before`` for the next page; None when there is nothing after this page
    #: (within ``through``, when given).
    next: str | None = None


def _out(d: NotificationDelivery, n: Notification) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        notification_id=n.id,
        kind=n.kind.value,
        ticket_id=n.ticket_id,
        subject=n.subject,
        email=d.email,
        name=d.name,
        status=d.status.value,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at.isoformat(),
        last_error=d.last_error,
        sent_at=d.sent_at.isoformat() if d.sent_at else None,
        created_at=n.created_at.isoformat(),
    )


# The outbox's order, newest first: (notification's created_at desc, email, delivery id). The
# id makes it total, so a page boundary (a cursor: the last row's three values) is exact however
# many rows share a time; each key is fixed once a delivery is written, so a row never moves.
_ORDER = (Notification.created_at.desc(), NotificationDelivery.email, NotificationDelivery.id)


@dataclass(frozen=True)
class _Cursor:
    created_at: datetime
    email: str
    id: uuid.UUID

    def encode(self) -> str:
        raw = json.dumps([self.created_at.isoformat(), self.email, str(self.id)])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, field: str) -> _Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            created, email, delivery_id = json.loads(raw)
            at = datetime.fromisoformat(created)
            if at.tzinfo is None or not isinstance(email, str):
                raise ValueError("not a cursor")
            return cls(at, email, uuid.UUID(delivery_id))
        except (ValueError, TypeError, binascii.Error):
            raise ApiError(
                422,
                "invalid",
                f"{field} is not a position this server gave (use the outbox's 'next')",
                field,
            ) from None

    def after(self) -> ColumnElement[bool]:
        """Rows after this position in :data:`_ORDER`."""
        created = Notification.created_at
        email, ident = NotificationDelivery.email, NotificationDelivery.id
        return or_(
            created < self.created_at,
            and_(
                created == self.created_at,
                or_(email > self.email, and_(email == self.email, ident > self.id)),
            ),
        )


@router.get(
    "/notifications",
    response_model=OutboxOut,
    summary="The outbox: queued, sent and failed deliveries, newest first, a page at a time",
    description="``limit`` rows from the newest, or from after ``before`` (the ``next`` of the "
    "previous page); ``through`` (a ``next`` given earlier) stops at that position, so a "
    "client can re-read exactly the range it holds. A cursor this server did not give is "
    "refused with 422 naming the parameter.",
)
def list_deliveries(
    user: Lead,
    session: ReadSession,
    state: StateDep,
    status: Annotated[Literal["queued", "sending", "sent", "failed"] | None, Query()] = None,
    ticket_id: Annotated[uuid.UUID | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[str | None, Query(max_length=1000)] = None,
    through: Annotated[str | None, Query(max_length=1000)] = None,
) -> OutboxOut:
    stmt = (
        select(NotificationDelivery, Notification)
        .join(Notification, Notification.id == NotificationDelivery.notification_id)
        # The notification's tenant: read along ix_notifications_tenant_created, newest first.
        .where(
            Notification.tenant_id == user.tenant_id,
            NotificationDelivery.tenant_id == user.tenant_id,
        )
        .order_by(*_ORDER)
        .limit(limit + 1)  # one more: is there a next page?
    )
    if status is not None:
        stmt = stmt.where(NotificationDelivery.status == DeliveryStatus(status))
    if ticket_id is not None:
        stmt = stmt.where(Notification.ticket_id == ticket_id)
    if before is not None:
        stmt = stmt.where(_Cursor.decode(before, "before").after())
    if through is not None:
        stmt = stmt.where(not_(_Cursor.decode(through, "through").after()))
    rows = session.execute(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    following = (
        _Cursor(last[1].created_at, last[0].email, last[0].id).encode()
        if more and last is not None
        else None
    )
    return OutboxOut(
        delivery=state.settings.smtp is not None,
        deliveries=[_out(d, n) for d, n in rows],
        next=following,
    )


@router.post(
    "/notifications/deliveries/{delivery_id}/retry",
    response_model=DeliveryOut,
    summary="Queue a failed delivery again (same Message-ID, same recipient only)",
)
def retry_delivery(delivery_id: uuid.UUID, user: Lead, session: WriteSession) -> DeliveryOut:
    row = session.execute(
        select(NotificationDelivery, Notification)
        .join(Notification, Notification.id == NotificationDelivery.notification_id)
        .where(
            NotificationDelivery.id == delivery_id, NotificationDelivery.tenant_id == user.tenant_id
        )
    ).first()
    if row is None:
        raise ApiError(404, "not_found", "no delivery with this id")
    delivery, note = row
    if delivery.status is not DeliveryStatus.FAILED:
        state = delivery.status.value
        raise ApiError(
            409, "conflict", f"only failed deliveries can be retried; this one is {state}", "status"
        )
    delivery.status = DeliveryStatus.QUEUED
    delivery.next_attempt_at = utcnow()
    delivery.attempts = 0
    session.flush()
    return _out(delivery, note)


# ----------------------------------------------------------------------------- templates


class TemplateOut(BaseModel):
    kind: NotificationKind
    #: The kind's name for people, and when it is sent and to whom.
    title: str
    sent_when: str
    #: True when the team wrote its own; False: the built-in wording is in use.
    customised: bool
    subject: str
    body_text: str
    body_html: str
    #: The variables this kind's templates may use (``{{ name }}``); anything else is refused.
    variables: list[str]
    updated_at: str | None
    updated_by: uuid.UUID | None


class TemplateIn(Body):
    """A kind's subject and bodies (Jinja2; the HTML body is autoescaped). The reference and
    automatic-message footer and the HTML frame are added to every message, as built in."""

    subject: Annotated[str, Field(min_length=1, max_length=400)]
    body_text: Annotated[str, Field(min_length=1, max_length=20_000)]
    body_html: Annotated[str, Field(min_length=1, max_length=40_000)]


class PreviewIn(Body):
    """A draft to preview without saving it; leave it out to preview the template in use."""

    subject: Annotated[str, Field(min_length=1, max_length=400)]
    body_text: Annotated[str, Field(min_length=1, max_length=20_000)]
    body_html: Annotated[str, Field(min_length=1, max_length=40_000)]


class PreviewOut(BaseModel):
    kind: NotificationKind
    subject: str
    body_text: str
    body_html: str
    #: The sample values the variables were filled with.
    sample: dict[str, str]


def _template_out(kind: NotificationKind, row: NotificationTemplate | None) -> TemplateOut:
    subject, text, html = (
        (row.subject, row.body_text, row.body_html) if row is not None else templates.SOURCES[kind]
    )
    title, sent_when = templates.DESCRIPTIONS[kind]
    return TemplateOut(
        kind=kind,
        title=title,
        sent_when=sent_when,
        customised=row is not None,
        subject=subject,
        body_text=text,
        body_html=html,
        variables=sorted(templates.variables(kind)),
        updated_at=row.updated_at.isoformat() if row is not None else None,
        updated_by=row.updated_by_id if row is not None else None,
    )


def _row(
    session: Session, tenant_id: uuid.UUID, kind: NotificationKind
) -> NotificationTemplate | None:
    return session.scalar(
        select(NotificationTemplate).where(
            NotificationTemplate.tenant_id == tenant_id, NotificationTemplate.kind == kind
        )
    )


def _checked(kind: NotificationKind, body: TemplateIn | PreviewIn) -> templates.Override:
    override = (body.subject, body.body_text, body.body_html)
    try:
        templates.check(kind, override)
    except templates.TemplateProblem as exc:
        raise ApiError(422, "invalid", str(exc), exc.field) from None
    return override


@router.get(
    "/notifications/templates",
    response_model=list[TemplateOut],
    summary="Every kind's notification template: the team's own or the built-in one",
)
def list_templates(user: Lead, session: ReadSession) -> list[TemplateOut]:
    rows = {
        r.kind: r
        for r in session.scalars(
            select(NotificationTemplate).where(NotificationTemplate.tenant_id == user.tenant_id)
        )
    }
    return [_template_out(kind, rows.get(kind)) for kind in NotificationKind]


@router.get(
    "/notifications/templates/{kind}",
    response_model=TemplateOut,
    summary="One kind's notification template and the variables it may use",
)
def read_template(kind: NotificationKind, user: Lead, session: ReadSession) -> TemplateOut:
    return _template_out(kind, _row(session, user.tenant_id, kind))


@router.put(
    "/notifications/templates/{kind}",
    response_model=TemplateOut,
    summary="Replace one kind's template with the team's own wording",
    description="Refused with 422 (naming the field and the problem; nothing is changed) when "
    "a part does not compile or uses a variable the kind does not have. Messages already "
    "queued keep the wording they were rendered with.",
)
def update_template(
    kind: NotificationKind, body: TemplateIn, user: Lead, session: WriteSession
) -> TemplateOut:
    subject, text, html = _checked(kind, body)
    row = _row(session, user.tenant_id, kind)
    if row is None:
        row = NotificationTemplate(tenant_id=user.tenant_id, kind=kind)
        session.add(row)
    row.subject, row.body_text, row.body_html = subject, text, html
    row.updated_at, row.updated_by_id = utcnow(), user.id
    session.flush()
    return _template_out(kind, row)


@router.delete(
    "/notifications/templates/{kind}",
    response_model=TemplateOut,
    summary="Go back to the built-in template for one kind",
)
def reset_template(kind: NotificationKind, user: Lead, session: WriteSession) -> TemplateOut:
    row = _row(session, user.tenant_id, kind)
    if row is not None:
        session.delete(row)
        session.flush()
    return _template_out(kind, None)


@router.post(
    "/notifications/templates/{kind}/preview",
    response_model=PreviewOut,
    summary="Render a kind's template (or an unsaved draft) with sample data",
)
def preview_template(
    kind: NotificationKind, user: Lead, session: ReadSession, body: PreviewIn | None = None
) -> PreviewOut:
    if body is not None:
        override: templates.Override | None = _checked(kind, body)
    else:
        row = _row(session, user.tenant_id, kind)
        override = (row.subject, row.body_text, row.body_html) if row is not None else None
    tenant = session.get(Tenant, user.tenant_id)
    sample = {name: templates.SAMPLE[name] for name in sorted(templates.variables(kind))}
    if tenant is not None and "team" in sample:
        sample["team"] = tenant.name
    subject, text, html = templates.render(kind, dict(sample), override)
    return PreviewOut(kind=kind, subject=subject, body_text=text, body_html=html, sample=sample)
