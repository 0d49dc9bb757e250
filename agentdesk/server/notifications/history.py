"""A ticket's history learns what was actually sent to whom.

Delivery rows live on the server only (desktop replicas never hold mail), but ticket events
sync to every desktop. So when the sender records deliveries as sent, each one about a ticket
adds a notification event (:class:`agentdesk.models.event_payloads.Notification` with
``delivery="sent"``): the agent reading the history sees the address and the subject that went
out, not only that a message was owed. Deliveries given up on already leave an internal note
(the sender's ``_note_failures``).

Each tenant's events are written in a transaction of their own, version-stamped like any
history entry, so desktops get them with their next pull (and a poke wakes them).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session, sessionmaker

from ...models import EventKind, Notification, NotificationDelivery, TicketEvent, new_id
from ...models import event_payloads as ev
from ...models.db import session_scope
from ...models.versioning import enable_stamping, next_version

__all__ = ["record_sent"]

_EVENTS = cast(Table, TicketEvent.__table__)


def record_sent(
    sessions: sessionmaker[Session], delivery_ids: Sequence[uuid.UUID], now: datetime
) -> int:
    """Add a "sent" event to the ticket of each delivery in ``delivery_ids`` that has one;
    returns how many were added."""
    if not delivery_ids:
        return 0
    with session_scope(sessions) as s:
        rows = s.execute(
            select(
                NotificationDelivery.id,
                NotificationDelivery.email,
                NotificationDelivery.name,
                NotificationDelivery.contact_id,
                Notification.tenant_id,
                Notification.ticket_id,
                Notification.subject,
                Notification.kind,
            )
            .join(Notification, Notification.id == NotificationDelivery.notification_id)
            .where(
                NotificationDelivery.id.in_(list(delivery_ids)), Notification.ticket_id.is_not(None)
            )
            .order_by(Notification.created_at, NotificationDelivery.email)
        ).all()
    by_tenant: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for delivery_id, address, name, contact_id, tenant_id, ticket_id, subject, kind in rows:
        payload = ev.Notification(
            to=ev.ids(contact_id),
            about=kind.value,
            email=address,
            name=name or None,
            subject=subject,
            delivery="sent",
            delivery_id=str(delivery_id),
        )
        events = by_tenant[tenant_id]
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
    for tenant_id, events in by_tenant.items():
        with session_scope(sessions) as s:
            # One multi-row INSERT with the unit's version (a batch is up to a few hundred
            # rows; the ORM's per-object bookkeeping cost the sender a fifth of its rate).
            # The commit writes the counter and announces the version, as for any stamped
            # transaction.
            enable_stamping(s, tenant_id)
            version = next_version(s, tenant_id)
            s.execute(insert(_EVENTS), [{**e, "version": version} for e in events])
    return sum(len(e) for e in by_tenant.values())
