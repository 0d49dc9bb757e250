"""The outbox route a page at a time: every delivery exactly once across pages in the outbox's
order (newest first, ties by recipient and id), ``through`` re-reading exactly a range a client
holds, filters applied before paging, and a bad cursor or limit refused naming the parameter."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from agentdesk.models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationKind,
    new_id,
    utcnow,
)
from agentdesk.models.db import session_scope
from tests.notifications.conftest import Api
from tests.sync.world import World

URL = "/api/v1/notifications"


def fill(world: World) -> list[str]:
    """Five notifications, three of them written at the same instant, with one to three
    recipients each (9 deliveries; every third one failed). Returns their emails, newest first
    in the outbox's order."""
    now = utcnow()
    times = [now, now, now, now - timedelta(minutes=1), now - timedelta(minutes=2)]
    notes: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for n, at in enumerate(times):
        note = {
            "id": new_id(),
            "tenant_id": world.tenant,
            "kind": NotificationKind.REPLY,
            "ticket_id": None,
            "subject": f"Note {n}",
            "body_text": "hello",
            "body_html": "<p>hello</p>",
            "created_at": at,
            "cause": "",
        }
        notes.append(note)
        for r in range(1 + n % 3):
            deliveries.append(
                {
                    "id": (d := new_id()),
                    "notification_id": note["id"],
                    "tenant_id": world.tenant,
                    "email": f"r{(n * 7 + r * 3) % 10}-{n}@example.test",
                    "name": "",
                    "contact_id": None,
                    "message_id": f"<{d.hex}@acme.test>",
                    "status": DeliveryStatus.FAILED
                    if len(deliveries) % 3 == 0
                    else DeliveryStatus.SENT,
                    "attempts": 1,
                    "next_attempt_at": at,
                    "last_error": "",
                    "sent_at": None,
                }
            )
    with session_scope(world.sessions) as s:
        s.execute(insert(Notification), notes)
        s.execute(insert(NotificationDelivery), deliveries)
    at_of: dict[Any, datetime] = {note["id"]: note["created_at"] for note in notes}
    ordered = sorted(
        deliveries, key=lambda d: (-at_of[d["notification_id"]].timestamp(), d["email"], d["id"])
    )
    return [str(d["email"]) for d in ordered]


def _get(api: Api, **params: Any) -> Any:
    r = api.client.get(URL, params=params, headers=api.headers("lead"))
    assert r.status_code == 200, r.text
    return r.json()


def _pages(api: Api, **params: Any) -> tuple[list[list[str]], str | None]:
    """Every page from the top (or from ``before``), and the last page's ``next``."""
    pages, cursor = [], params.pop("before", None)
    while True:
        page = _get(api, **params, **({"before": cursor} if cursor else {}))
        pages.append([d["email"] for d in page["deliveries"]])
        cursor = page["next"]
        if cursor is None:
            return pages, None


def test_pages_hold_every_delivery_once_in_order(api: Api) -> None:
    everything = fill(api.world)
    assert [d["email"] for d in _get(api, limit=500)["deliveries"]] == everything
    assert _get(api, limit=500)["next"] is None
    pages, _ = _pages(api, limit=2)
    assert [len(p) for p in pages] == [2, 2, 2, 2, 1]
    assert [e for p in pages for e in p] == everything
    # A page that ends exactly at the end says there is nothing more.
    assert _get(api, limit=9)["next"] is None
    # Filters are applied before paging.
    failed, _ = _pages(api, limit=2, status="failed")
    all_failed = [d["email"] for d in _get(api, status="failed")["deliveries"]]
    assert [e for p in failed for e in p] == all_failed
    assert len(all_failed) == 3


def test_through_rereads_exactly_the_range_a_client_holds(api: Api) -> None:
    everything = fill(api.world)
    first = _get(api, limit=4)
    held = first["next"]
    assert held is not None
    again = _get(api, limit=500, through=held)
    assert [d["email"] for d in again["deliveries"]] == everything[:4]
    assert again["next"] is None  # nothing more within the range
    # Paged within the range, the last page ends at it.
    part = _get(api, limit=3, through=held)
    assert part["next"] is not None
    rest = _get(api, limit=3, through=held, before=part["next"])
    assert [d["email"] for d in rest["deliveries"]] == everything[3:4]
    assert rest["next"] is None


def test_bad_cursors_and_limits_are_refused_naming_the_parameter(api: Api) -> None:
    fill(api.world)
    lead = api.headers("lead")
    for params, field in (
        ({"before": "nonsense"}, "before"),
        ({"through": "WyJ4Il0"}, "through"),  # base64 of ["x"]: not a position
        ({"before": "x" * 1001}, "before"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"status": "lost"}, "status"),
    ):
        r = api.client.get(URL, params=params, headers=lead)
        assert r.status_code == 422, (params, r.text)
        assert str(r.json()["error"]["field"]).endswith(field), r.json()
    assert api.client.get(URL, headers=api.headers("agent")).status_code == 403
