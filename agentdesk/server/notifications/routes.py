"""Leads' view of the outbox: what was queued, sent or failed, to whom and why, and a retry.

Delivery state lives on the server only (desktop replicas never hold mail), so this is a plain
API for leads; ``delivery`` says whether this server sends at all (no SMTP configured: local
mode keeps everything queued).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Security
from pydantic import BaseModel
from sqlalchemy import select

from ...models import DeliveryStatus, Notification, NotificationDelivery, utcnow
from ..deps import ReadSession, StateDep, WriteSession
from ..errors import ApiError
from ..routes._common import Lead, bearer_scheme
from ..schemas import ERROR_RESPONSES

router = APIRouter(tags=["notifications"], responses=ERROR_RESPONSES,
                   dependencies=[Security(bearer_scheme)])


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


def _out(d: NotificationDelivery, n: Notification) -> DeliveryOut:
    return DeliveryOut(
        id=d.id, notification_id=n.id, kind=n.kind.value, ticket_id=n.ticket_id,
        subject=n.subject, email=d.email, name=d.name,
        status=d.status.value,
        attempts=d.attempts, next_attempt_at=d.next_attempt_at.isoformat(),
        last_error=d.last_error, sent_at=d.sent_at.isoformat() if d.sent_at else None,
        created_at=n.created_at.isoformat(),
    )


@router.get("/notifications", response_model=OutboxOut,
            summary="The outbox: queued, sent and failed deliveries, newest first")
def list_deliveries(
    user: Lead, session: ReadSession, state: StateDep,
    status: Annotated[Literal["queued", "sending", "sent", "failed"] | None, Query()] = None,
    ticket_id: Annotated[uuid.UUID | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> OutboxOut:
    stmt = (select(NotificationDelivery, Notification)
            .join(Notification, Notification.id == NotificationDelivery.notification_id)
            .where(NotificationDelivery.tenant_id == user.tenant_id)
            .order_by(Notification.created_at.desc(), NotificationDelivery.email)
            .limit(limit))
    if status is not None:
        stmt = stmt.where(NotificationDelivery.status == DeliveryStatus(status))
    if ticket_id is not None:
        stmt = stmt.where(Notification.ticket_id == ticket_id)
    rows = session.execute(stmt).all()
    return OutboxOut(delivery=state.settings.smtp is not None,
                     deliveries=[_out(d, n) for d, n in rows])


@router.post("/notifications/deliveries/{delivery_id}/retry", response_model=DeliveryOut,
             summary="Queue a failed delivery again (same Message-ID, same recipient only)")
def retry_delivery(delivery_id: uuid.UUID, user: Lead, session: WriteSession) -> DeliveryOut:
    row = session.execute(
        select(NotificationDelivery, Notification)
        .join(Notification, Notification.id == NotificationDelivery.notification_id)
        .where(NotificationDelivery.id == delivery_id,
               NotificationDelivery.tenant_id == user.tenant_id)
    ).first()
    if row is None:
        raise ApiError(404, "not_found", "no delivery with this id")
    delivery, note = row
    if delivery.status is not DeliveryStatus.FAILED:
        state = delivery.status.value
        raise ApiError(409, "conflict",
                       f"only failed deliveries can be retried; this one is {state}", "status")
    delivery.status = DeliveryStatus.QUEUED
    delivery.next_attempt_at = utcnow()
    delivery.attempts = 0
    session.flush()
    return _out(delivery, note)
