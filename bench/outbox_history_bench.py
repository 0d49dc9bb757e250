"""What the ticket history's "sent to whom" costs the SMTP sender.

Each sent delivery about a ticket adds a version-stamped ticket event (the desktops' history
line; :mod:`agentdesk.server.notifications.history`). Measured: ``--messages`` queued
deliveries drained by one :class:`Sender` to an aiosmtpd server on 127.0.0.1, each about a
ticket (events written), against the baseline in the same run: as many deliveries about no
ticket (no event to write), alternating, ``--runs`` times. Prints JSON lines; the last one has
the medians and their ratio.

Usage: ``python bench/outbox_history_bench.py [--database-url postgresql+psycopg://...]``
(default: ``AGENTDESK_BENCH_DATABASE_URL``, else SQLite).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select

from agentdesk.models import (
    Contact,
    DeliveryStatus,
    EventKind,
    Notification,
    NotificationDelivery,
    NotificationKind,
    Tenant,
    Ticket,
    TicketEvent,
    new_id,
    utcnow,
)
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from agentdesk.server.notifications.config import SmtpConfig
from agentdesk.server.notifications.sender import Sender
from bench import sync_bench
from bench.intake_bench import seed, sync_bench_port


def _tickets(sessions: Any, tenant_id: uuid.UUID, n: int) -> list[uuid.UUID]:
    with session_scope(sessions) as s:
        contacts = list(s.scalars(select(Contact).where(Contact.validated.is_(True))))
        rows = [
            Ticket(
                tenant_id=tenant_id,
                subject=f"Bench ticket {i}",
                channel="portal",
                organisation_id=contacts[i % len(contacts)].organisation_id,
                requester_id=contacts[i % len(contacts)].id,
                stated_urgency=3,
                urgency=3,
                arrived_at=utcnow(),
            )
            for i in range(n)
        ]
        s.add_all(rows)
        s.flush()
        return [t.id for t in rows]


def _queue(sessions: Any, tenant_id: uuid.UUID, n: int, tickets: list[uuid.UUID] | None) -> None:
    now = utcnow()
    with session_scope(sessions) as s:
        notes = [
            {
                "id": new_id(),
                "tenant_id": tenant_id,
                "kind": NotificationKind.REPLY,
                "ticket_id": tickets[i % len(tickets)] if tickets else None,
                "subject": f"Bench {i}",
                "body_text": "Hello\n" * 20,
                "body_html": "<p>Hello</p>" * 20,
                "created_at": now,
                "cause": "",
            }
            for i in range(n)
        ]
        s.execute(insert(Notification), notes)
        s.execute(
            insert(NotificationDelivery),
            [
                {
                    "id": (d := new_id()),
                    "notification_id": note["id"],
                    "tenant_id": tenant_id,
                    "email": f"r{i}@bench.test",
                    "name": f"R {i}",
                    "contact_id": None,
                    "message_id": f"<{d.hex}@bench.test>",
                    "status": DeliveryStatus.QUEUED,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "last_error": "",
                    "sent_at": None,
                }
                for i, note in enumerate(notes)
            ],
        )


def _events(sessions: Any) -> int:
    with session_scope(sessions) as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(TicketEvent)
                .where(TicketEvent.kind == EventKind.NOTIFICATION)
            )
            or 0
        )


def bench(url: str, args: argparse.Namespace) -> None:
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    seed(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine, write=True)
    with session_scope(sessions) as s:
        tenant_id = s.scalars(select(Tenant.id)).one()
    tickets = _tickets(sessions, tenant_id, 200)
    port = sync_bench_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    config = SmtpConfig(host="127.0.0.1", port=port, security="none", sender="s@bench.test")
    rates: dict[str, list[float]] = {"no_ticket": [], "ticket": []}
    try:
        for _ in range(args.runs):
            for case in ("no_ticket", "ticket"):
                _queue(sessions, tenant_id, args.messages, tickets if case == "ticket" else None)
                before = _events(sessions)
                t = time.perf_counter()
                result = Sender(sessions, config).drain()
                elapsed = time.perf_counter() - t
                rates[case].append(result.sent / elapsed)
                sync_bench.emit(
                    "sender_history_run",
                    case=case,
                    sent=result.sent,
                    events=_events(sessions) - before,
                    seconds=round(elapsed, 3),
                    per_s=round(result.sent / elapsed, 1),
                )
    finally:
        controller.stop()
        engine.dispose()
    base = statistics.median(rates["no_ticket"])
    got = statistics.median(rates["ticket"])
    sync_bench.emit(
        "sender_history",
        messages=args.messages,
        runs=args.runs,
        about_tickets_per_s=round(got, 1),
        no_ticket_per_s=round(base, 1),
        ratio=round(got / base, 3),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("AGENTDESK_BENCH_DATABASE_URL"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dbs = sync_bench.Databases(args.database_url, Path(tmp))
        sync_bench.ENGINE_NAME = dbs.kind
        try:
            bench(dbs.new("history"), args)
        finally:
            dbs.drop_all()


if __name__ == "__main__":
    main()
