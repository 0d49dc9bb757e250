"""The Notifications view's calls to the server: the outbox's deliveries, and a retry.

Delivery state lives on the server only (replicas never hold mail), so the view reads it over
the REST API (``GET /api/v1/notifications``, leads and admins, a page at a time: ``next`` says
where the following page starts) instead of from the replica, and a
retry is ``POST /api/v1/notifications/deliveries/{id}/retry``: the server re-queues that one
recipient with the same Message-ID, and refuses (409) a delivery that has not failed.

Qt-free functions over the sync client's signed-in session; the UI runs them on a worker.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .client import ApiClient, ServerError

__all__ = [
    "PAGE",
    "STATUSES",
    "Delivery",
    "Outbox",
    "list_deliveries",
    "list_through",
    "retry_delivery",
]

#: What a delivery can be, as the server names it ("sending": claimed by a sender right now).
STATUSES = ("queued", "sending", "sent", "failed")


@dataclass(frozen=True)
class Delivery:
    """One recipient of one notification, as the outbox holds it."""

    id: uuid.UUID
    kind: str
    ticket_id: uuid.UUID | None
    subject: str
    email: str
    name: str
    status: str
    attempts: int
    last_error: str
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delivery:
        try:
            ticket = data.get("ticket_id")
            sent = data.get("sent_at")
            return cls(
                id=uuid.UUID(str(data["id"])),
                kind=str(data["kind"]),
                ticket_id=uuid.UUID(str(ticket)) if ticket else None,
                subject=str(data["subject"]),
                email=str(data["email"]),
                name=str(data.get("name") or ""),
                status=str(data["status"]),
                attempts=int(data["attempts"]),
                last_error=str(data.get("last_error") or ""),
                created_at=datetime.fromisoformat(str(data["created_at"])),
                sent_at=datetime.fromisoformat(str(sent)) if sent else None,
                next_attempt_at=datetime.fromisoformat(str(data["next_attempt_at"])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ServerError(
                f"the server's outbox answer is not understood ({exc})", code="bad_response"
            ) from None


@dataclass(frozen=True)
class Outbox:
    #: False when the server has no mail server configured: messages stay queued, unsent.
    delivery: bool
    deliveries: tuple[Delivery, ...]
    #: Where the next page starts (``before``); None: nothing after these rows.
    next: str | None = None


#: The most rows the server sends in one page.
PAGE = 500


def list_deliveries(
    client: ApiClient,
    status: str | None = None,
    limit: int = PAGE,
    *,
    before: str | None = None,
    through: str | None = None,
) -> Outbox:
    """One page, newest first: only deliveries with ``status`` when given, after ``before``
    (a ``next`` given earlier) and not past ``through`` (one too) when given."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    params: dict[str, Any] = {"limit": limit}
    if status is not None:
        params["status"] = status
    if before is not None:
        params["before"] = before
    if through is not None:
        params["through"] = through
    data = client._call("GET", "/api/v1/notifications", params=params).json()
    following = data.get("next")
    return Outbox(
        delivery=bool(data.get("delivery")),
        deliveries=tuple(Delivery.from_json(d) for d in data.get("deliveries", [])),
        next=str(following) if following else None,
    )


def list_through(
    client: ApiClient, status: str | None, through: str | None, page: int = PAGE
) -> Outbox:
    """Every delivery from the newest down to ``through`` (None: down to the oldest), a page
    at a time: what a view holding the rows down to ``through`` re-reads to refresh them all.
    ``next`` is None."""
    rows: list[Delivery] = []
    before: str | None = None
    while True:
        got = list_deliveries(client, status, page, before=before, through=through)
        rows.extend(got.deliveries)
        if got.next is None:
            return Outbox(delivery=got.delivery, deliveries=tuple(rows))
        before = got.next


def retry_delivery(client: ApiClient, delivery_id: uuid.UUID) -> Delivery:
    """Queue a failed delivery again; returns it as the server now holds it."""
    path = f"/api/v1/notifications/deliveries/{uuid.UUID(str(delivery_id))}/retry"
    return Delivery.from_json(client._call("POST", path).json())
