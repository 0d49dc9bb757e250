"""A ticket's history learns what was actually sent to whom.

Delivery rows live on the server only (desktop replicas never hold mail), but ticket events
sync to every desktop. So when the sender records deliveries as sent, each one about a ticket
adds a notification event (:class:`agentdesk.models.event_payloads.Notification` with
``delivery="sent"``): the agent reading the history sees the address and the subject that went
out, not only that a message was owed. Deliveries given up on leave an internal note instead
(:func:`add_failure_notes`).

Both are written in the caller's transaction, the one that marks the deliveries sent or failed
(the sender's ``_record``, one transaction per tenant): a crash or an error between the two
writes cannot leave a delivery marked sent with no history line, or a history line for a
delivery that is still due and so would go out again. The events are version-stamped like any
history entry, so desktops get them with their next pull (and a poke wakes them).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from ...models import EventKind, Notification, NotificationDelivery, TicketEvent, new_id
from ...models import event_payloads as ev
from ...models.versioning import enable_stamping, next_version

__all__ = ["add_failure_notes", "add_sent_events"]

_EVENTS = cast(Table, TicketEvent.__table__)


def add_sent_events(
    session: Session, tenant_id: uuid.UUID, delivery_ids: Sequence[uuid.UUID], now: datetime
) -> int:
    """Add a "sent" event to the ticket of each of ``tenant_id``'s deliveries in
    ``delivery_ids`` that has one, in ``session``'s transaction; returns how many."""
    if not delivery_ids:
        return 0
    rows = session.execute(
        select(
            NotificationDelivery.id,
            NotificationDelivery.email,
            NotificationDelivery.name,
            NotificationDelivery.contact_id,
            Notification.ticket_id,
            Notification.subject,
            Notification.kind,
        )
        .join(Notification, Notification.id == NotificationDelivery.notification_id)
        .where(
            NotificationDelivery.id.in_(list(delivery_ids)),
            NotificationDelivery.tenant_id == tenant_id,
            Notification.ticket_id.is_not(None),
        )
        .order_by(Notification.created_at, NotificationDelivery.email)
    ).all()
    if not rows:
        return 0
    events: list[dict[str, Any]] = []
    for delivery_id, address, name, contact_id, ticket_id, subject, kind in rows:
        payload = ev.Notification(
            to=ev.ids(contact_id),
            about=kind.value,
            email=address,
            name=name or None,
            subject=subject,
            delivery="sent",
            delivery_id=str(delivery_id),
        )
        events.append(
            {
                "id": new_id(),
                "tenant_id": tenant_id,
                "ticket_id": ticket_id,
                "kind": EventKind.NOTIFICATION,
                "author_id": None,
                "at": now,
                "seq": min(len(events), 32767),
                "body": "",
                "data": payload.to_data(),
                "deleted": False,
            }
        )
    # One multi-row INSERT with the transaction's version (a batch is up to a few hundred rows;
    # the ORM's per-object bookkeeping cost the sender a fifth of its rate). The commit writes
    # the counter and announces the version, as for any stamped transaction.
    enable_stamping(session, tenant_id)
    version = next_version(session, tenant_id)
    session.execute(insert(_EVENTS), [{**e, "version": version} for e in events])
    return len(events)


def add_failure_notes(
    session: Session, tenant_id: uuid.UUID, errors: Mapping[uuid.UUID, str], now: datetime
) -> int:
    """An internal note on the ticket of each delivery in ``errors`` (id -> why) that has one,
    so the agent working it knows the customer did not get the message; returns how many."""
    if not errors:
        return 0
    rows = session.execute(
        select(
            NotificationDelivery.id,
            NotificationDelivery.email,
            Notification.subject,
            Notification.ticket_id,
        )
        .join(Notification, Notification.id == NotificationDelivery.notification_id)
        .where(
            NotificationDelivery.id.in_(list(errors)),
            NotificationDelivery.tenant_id == tenant_id,
            Notification.ticket_id.is_not(None),
        )
        .order_by(Notification.created_at, NotificationDelivery.email)
    ).all()
    enable_stamping(session, tenant_id)
    for delivery_id, address, subject, ticket_id in rows:
        session.add(
            TicketEvent(
                tenant_id=tenant_id,
                ticket_id=ticket_id,
                kind=EventKind.NOTE,
                author_id=None,
                at=now,
                body=(
                    f'Email not delivered to {address}: "{subject}" '
                    f"({errors[delivery_id] or 'refused'}). Contact the customer another way, "
                    f"or retry it from the outbox."
                ),
                data={"delivery_failed": address},
            )
        )
    return len(rows)
