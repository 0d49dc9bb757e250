"""Intake and delivery throughput: the intake API with every check done, and the SMTP sender.

Prints JSON lines. Figures are medians of ``--runs`` runs with a baseline measured in the same
run (``GET /healthz`` at the same concurrency, on the same server process), since the shared
2-core machine's absolute numbers wander with whatever else runs.

* ``intake``: ``POST /api/v1/requests`` from ``--clients`` threads (keep-alive sessions) for
  ``--seconds``, against the server in a child process: each request matches organisation and
  contact, runs the create_ticket rules (entitlement, channel, validated contact) and writes the
  ticket, its history, its acknowledgement and delivery rows in one transaction. A quarter of
  the requests come from a non-validated contact (redirected: two more notices each).
* ``sender``: ``--messages`` queued deliveries drained by one :class:`Sender` to an aiosmtpd
  server on 127.0.0.1 (one connection per batch of 200).

Usage: ``python bench/intake_bench.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres``
(default: ``AGENTDESK_BENCH_DATABASE_URL``, else SQLite).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
from sqlalchemy import insert

from agentdesk.models import (
    ApiKey,
    Calendar,
    Contact,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationKind,
    Organisation,
    Plan,
    Tenant,
    new_id,
    utcnow,
)
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from agentdesk.policy.plans import seed_calendars, seed_plans
from agentdesk.server.intake.api import key_hash
from agentdesk.server.notifications.config import SmtpConfig
from agentdesk.server.notifications.sender import Sender
from bench import sync_bench
from bench._common import ms, rank_pct

KEY = "adk_bench-key-not-secret"


def seed(url: str, orgs: int = 50) -> None:
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        tenant = Tenant(name="Bench Support", timezone="America/New_York")
        s.add(tenant)
        s.flush()
        cal = Calendar(tenant_id=tenant.id, name="24x7", data=seed_calendars()["24x7"][1])
        s.add(cal)
        s.flush()
        premium = next(p for p in seed_plans() if p.key == "premium")
        plan = Plan(tenant_id=tenant.id, calendar_id=cal.id, **Plan.columns_from_policy(premium))
        s.add(plan)
        s.flush()
        for i in range(orgs):
            org = Organisation(tenant_id=tenant.id, name=f"Customer {i}", plan_id=plan.id)
            s.add(org)
            s.flush()
            s.add_all(
                [
                    Contact(
                        tenant_id=tenant.id,
                        organisation_id=org.id,
                        name=f"Valid {i}",
                        email=f"valid{i}@c{i}.test",
                        validated=True,
                    ),
                    Contact(
                        tenant_id=tenant.id,
                        organisation_id=org.id,
                        name=f"Other {i}",
                        email=f"other{i}@c{i}.test",
                        validated=False,
                    ),
                ]
            )
        s.add(
            ApiKey(
                tenant_id=tenant.id,
                name="bench",
                prefix=KEY[:12],
                key_hash=key_hash(KEY),
                settings={},
            )
        )
    engine.dispose()


def load(url: str, clients: int, seconds: float, make: Any) -> dict[str, float]:
    """``make(session, n)`` issues one request; returns requests/s and latency percentiles."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(w: int) -> None:
        http = requests.Session()
        mine: list[float] = []
        n = 0
        while time.perf_counter() < stop:
            t = time.perf_counter()
            ok = make(http, w * 1_000_000 + n)
            mine.append(time.perf_counter() - t)
            n += 1
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)
        http.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {
        "per_s": round(len(latencies) / elapsed, 1),
        "requests": len(latencies),
        "errors": errors[0],
        "p50_ms": ms(rank_pct(latencies, 50)),
        "p99_ms": ms(rank_pct(latencies, 99)),
    }


def bench_intake(url: str, args: argparse.Namespace) -> None:
    seed(url)
    with sync_bench.ServerProcess(url) as server:

        def healthz(http: requests.Session, _n: int) -> bool:
            return http.get(f"{server.url}/healthz", timeout=30).status_code == 200

        def file(http: requests.Session, n: int) -> bool:
            org = n % 50
            who = "other" if n % 4 == 0 else "valid"
            r = http.post(
                f"{server.url}/api/v1/requests",
                headers={"X-API-Key": KEY},
                json={
                    "email": f"{who}{org}@c{org}.test",
                    "organisation": f"Customer {org}",
                    "subject": f"Request {n}",
                    "description": "Bench request.",
                    "urgency": 2,
                },
                timeout=30,
            )
            return r.status_code == 201

        load(url, args.clients, 2, file)  # warm-up: pools, caches, the intake account
        rows = []
        for _ in range(args.runs):
            base = load(url, args.clients, args.seconds, healthz)
            got = load(url, args.clients, args.seconds, file)
            rows.append((base, got))
            sync_bench.emit("intake_run", clients=args.clients, healthz=base, intake=got)
    base_rate = statistics.median(b["per_s"] for b, _ in rows)
    rate = statistics.median(g["per_s"] for _, g in rows)
    sync_bench.emit(
        "intake",
        clients=args.clients,
        runs=args.runs,
        intake_per_s=rate,
        healthz_per_s=base_rate,
        ratio=round(rate / base_rate, 3),
        intake_p99_ms=statistics.median(g["p99_ms"] for _, g in rows),
        errors=sum(g["errors"] for _, g in rows),
    )


def bench_sender(url: str, args: argparse.Namespace) -> None:
    from aiosmtpd.controller import Controller

    class Sink:
        count = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            Sink.count += 1
            return "250 OK"

    seed(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine, write=True)
    with session_scope(sessions) as s:
        tenant_id = s.query(Tenant.id).scalar()
    port = sync_bench_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    rates = []
    try:
        for _ in range(args.runs):
            _queue(sessions, tenant_id, args.messages)
            sender = Sender(
                sessions,
                SmtpConfig(
                    host="127.0.0.1", port=port, security="none", sender="support@bench.test"
                ),
            )
            t = time.perf_counter()
            result = sender.drain()
            elapsed = time.perf_counter() - t
            rates.append(result.sent / elapsed)
            sync_bench.emit(
                "sender_run",
                sent=result.sent,
                seconds=round(elapsed, 3),
                per_s=round(result.sent / elapsed, 1),
            )
    finally:
        controller.stop()
        engine.dispose()
    sync_bench.emit(
        "sender",
        messages=args.messages,
        runs=args.runs,
        per_s=round(statistics.median(rates), 1),
        received=Sink.count,
    )


def sync_bench_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _queue(sessions: Any, tenant_id: Any, n: int) -> None:
    now = utcnow()
    with session_scope(sessions) as s:
        notes = [
            {
                "id": new_id(),
                "tenant_id": tenant_id,
                "kind": NotificationKind.REPLY,
                "ticket_id": None,
                "subject": f"Bench {i}",
                "body_text": "Hello\n" * 20,
                "body_html": "<p>Hello</p>" * 20,
                "created_at": now,
                "cause": "",
            }
            for i in range(n)
        ]
        s.execute(insert(Notification), notes)
        rows = []
        for i, note in enumerate(notes):
            d = new_id()
            rows.append(
                {
                    "id": d,
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
            )
        s.execute(insert(NotificationDelivery), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("AGENTDESK_BENCH_DATABASE_URL"))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        sync_bench.serve(args.serve)
        return
    with tempfile.TemporaryDirectory() as tmp:
        dbs = sync_bench.Databases(args.database_url, Path(tmp))
        sync_bench.ENGINE_NAME = dbs.kind
        try:
            bench_intake(dbs.new("intake"), args)
            bench_sender(dbs.new("sender"), args)
        finally:
            dbs.drop_all()


if __name__ == "__main__":
    main()
