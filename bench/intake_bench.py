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
* ``desks`` (with ``--desks N``, default 2): N agents' desktops online throughout, each
  long-polling and pulling as the sync engine does (pages parsed, not applied to a replica)
  and pushing a note every ``--push-every`` seconds. Reported per intake run: how long a filed
  request took from its POST being sent to being in *every* desk's pulled changes (p50, p99,
  and how many never arrived within 3 s of the run's end), and the desks' push round trips
  while intake runs against the same during the ``GET /healthz`` phase (no intake writes).

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
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
from sqlalchemy import insert, select

from agentdesk.models import (
    ApiKey,
    AuthToken,
    Calendar,
    Contact,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationKind,
    Organisation,
    Plan,
    Role,
    Tenant,
    User,
    new_id,
    utcnow,
)
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from agentdesk.policy.plans import seed_calendars, seed_plans
from agentdesk.server.intake.api import key_hash
from agentdesk.server.notifications.config import SmtpConfig
from agentdesk.server.notifications.sender import Sender
from agentdesk.server.security import token_hash
from agentdesk.sync.client import ApiClient
from agentdesk.sync.protocol import Mutation, PullRequest, PushRequest
from bench import sync_bench
from bench._common import ms, rank_pct

KEY = "adk_bench-key-not-secret"


def seed(url: str, orgs: int = 50, desks: int = 0) -> list[str]:
    """The team, its organisations and contacts, the integration key; returns the tokens of
    ``desks`` signed-in agents."""
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
        tokens = []
        for i in range(desks):
            agent = User(
                tenant_id=tenant.id, username=f"desk{i}", display_name=f"Desk {i}", role=Role.AGENT
            )
            s.add(agent)
            s.flush()
            tokens.append(f"bench-desk-{i}-{uuid.uuid4().hex}")
            s.add(
                AuthToken(
                    user_id=agent.id,
                    token_hash=token_hash(tokens[-1]),
                    expires_at=utcnow() + timedelta(hours=2),
                )
            )
        ids = s.execute(
            select(Organisation.id, Contact.id).join(Contact).where(Contact.validated).limit(1)
        ).one()
    engine.dispose()
    DESK_TICKET_OF.update(organisation_id=str(ids[0]), requester_id=str(ids[1]))
    return tokens


#: The organisation and a contact each desk opens its own ticket with (set by ``seed``).
DESK_TICKET_OF: dict[str, str] = {}


class Desk:
    """An agent's desktop online during the run: a long-poll + pull loop like the sync
    engine's (pages parsed, not applied), noting when each ticket first arrives; and a note
    pushed on its own ticket every ``every`` seconds, its round trip timed."""

    def __init__(self, url: str, token: str, every: float) -> None:
        self.api = ApiClient(url, token=token, read_timeout=120)
        self.puller = self.api.clone()
        self.every = every
        self.client_id = uuid.uuid4()
        self.next_id = 1
        self.seen: dict[str, float] = {}
        self.pushes: list[tuple[float, float]] = []  # (sent at, round trip)
        self.errors = 0
        self.stop = threading.Event()
        self.ticket = str(uuid.uuid4())
        self._push(
            "create_ticket",
            {**DESK_TICKET_OF, "ticket_id": self.ticket, "subject": "Desk", "channel": "portal"}
            | {"stated_urgency": 3},
        )
        self.threads = [
            threading.Thread(target=self._watch, daemon=True),
            threading.Thread(target=self._note, daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _push(self, name: str, args: dict[str, Any]) -> None:
        began = time.perf_counter()
        resp = self.api.push(
            PushRequest(
                client_id=self.client_id,
                mutations=[Mutation(id=self.next_id, name=name, args=args)],
            )
        )
        self.pushes.append((began, time.perf_counter() - began))
        if resp.results[0].status != "applied":
            self.errors += 1
        self.next_id += 1

    def _note(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self._push("add_note", {"ticket_id": self.ticket, "body": "Still looking."})
            except Exception:
                self.errors += 1

    def _watch(self) -> None:
        cursor = self.puller.poke(0, wait=0).version
        while not self.stop.is_set():
            try:
                if not self.puller.poke(cursor, wait=2).changed:
                    continue
                more = True
                while more:
                    page = self.puller.pull(
                        PullRequest(client_id=self.client_id, cursor=cursor, limit=1000)
                    )
                    now = time.perf_counter()
                    for change in page.changes:
                        if change.table == "tickets":
                            self.seen.setdefault(str(change.id), now)
                    cursor, more = page.cursor, page.has_more
            except Exception:
                self.errors += 1
                time.sleep(0.1)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)
        self.api.close()
        self.puller.close()


def push_times(desks: list[Desk], window: tuple[float, float]) -> dict[str, float]:
    """The desks' push round trips sent within ``window``."""
    took = [t for d in desks for at, t in d.pushes if window[0] <= at < window[1]]
    if not took:
        return {"pushes": 0}
    return {
        "pushes": len(took),
        "p50_ms": ms(rank_pct(took, 50)),
        "p99_ms": ms(rank_pct(took, 99)),
    }


def arrival(desks: list[Desk], filed: dict[str, float]) -> dict[str, float]:
    """From a request's POST being sent to its ticket being pulled by every desk."""
    took, missed = [], 0
    for ticket_id, sent in filed.items():
        seen = [d.seen.get(ticket_id) for d in desks]
        if any(at is None for at in seen):
            missed += 1
        else:
            took.append(max(at for at in seen if at is not None) - sent)
    if not took:
        return {"tickets": 0, "missed": missed}
    return {
        "tickets": len(took),
        "missed": missed,
        "p50_ms": ms(rank_pct(took, 50)),
        "p99_ms": ms(rank_pct(took, 99)),
    }


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far (user + system), from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(
    url: str, clients: int, seconds: float, make: Any, server_pid: int | None = None
) -> dict[str, float]:
    """``make(session, n)`` issues one request; returns requests/s and latency percentiles,
    and with ``server_pid`` the server's CPU time per request: what bounds its throughput on a
    saturated machine, and far steadier than requests/s when other work shares the cores."""
    cpu = cpu_seconds(server_pid) if server_pid else 0.0
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
    used = {}
    if server_pid and latencies:
        used["server_cpu_ms"] = round((cpu_seconds(server_pid) - cpu) * 1000 / len(latencies), 2)
    return {
        **used,
        "per_s": round(len(latencies) / elapsed, 1),
        "requests": len(latencies),
        "errors": errors[0],
        "p50_ms": ms(rank_pct(latencies, 50)),
        "p99_ms": ms(rank_pct(latencies, 99)),
    }


def bench_intake(url: str, args: argparse.Namespace) -> None:
    tokens = seed(url, desks=args.desks)
    extra = []
    if args.intake_group_seconds is not None:
        extra = ["--intake-group-seconds", str(args.intake_group_seconds)]
    with sync_bench.ServerProcess(url, Path(__file__).resolve(), *extra) as server:
        filed: dict[str, float] = {}

        def healthz(http: requests.Session, _n: int) -> bool:
            return http.get(f"{server.url}/healthz", timeout=30).status_code == 200

        def file(http: requests.Session, n: int) -> bool:
            org = n % 50
            who = "other" if n % 4 == 0 else "valid"
            sent = time.perf_counter()
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
            if r.status_code == 201:
                filed[r.json()["ticket_id"]] = sent
            return r.status_code == 201

        load(url, args.clients, 2, file)  # warm-up: pools, caches, the intake account
        desks = [Desk(server.url, token, args.push_every) for token in tokens]
        rows = []
        runs: list[dict[str, Any]] = []
        try:
            for _ in range(args.runs):
                filed.clear()
                quiet = time.perf_counter()
                base = load(url, args.clients, args.seconds, healthz, server.pid)
                busy = time.perf_counter()
                got = load(url, args.clients, args.seconds, file, server.pid)
                done = time.perf_counter()
                rows.append((base, got))
                if desks:
                    time.sleep(3)  # the last requests' way to the desks
                    runs.append(
                        {
                            "to_every_desk": arrival(desks, filed),
                            "desk_push_intake": push_times(desks, (busy, done)),
                            "desk_push_healthz": push_times(desks, (quiet, busy)),
                        }
                    )
                sync_bench.emit(
                    "intake_run",
                    clients=args.clients,
                    healthz=base,
                    intake=got,
                    loadavg=os.getloadavg()[0],
                    **(runs[-1] if desks else {}),
                )
        finally:
            for desk in desks:
                desk.close()
        desk_errors = sum(d.errors for d in desks)
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
        server_cpu_ms_intake=statistics.median(g["server_cpu_ms"] for _, g in rows),
        server_cpu_ms_healthz=statistics.median(b["server_cpu_ms"] for b, _ in rows),
    )
    if runs:

        def median(key: str, field: str) -> float:
            return float(statistics.median(r[key].get(field, float("nan")) for r in runs))

        sync_bench.emit(
            "intake_desks",
            desks=args.desks,
            runs=args.runs,
            to_every_desk_p50_ms=median("to_every_desk", "p50_ms"),
            to_every_desk_p99_ms=median("to_every_desk", "p99_ms"),
            missed=sum(r["to_every_desk"]["missed"] for r in runs),
            push_p50_ms_intake=median("desk_push_intake", "p50_ms"),
            push_p99_ms_intake=median("desk_push_intake", "p99_ms"),
            push_p50_ms_healthz=median("desk_push_healthz", "p50_ms"),
            push_p99_ms_healthz=median("desk_push_healthz", "p99_ms"),
            desk_errors=desk_errors,
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
    parser.add_argument("--desks", type=int, default=2, help="desktops online (0: none)")
    parser.add_argument("--push-every", type=float, default=0.1, help="a desk's note interval")
    parser.add_argument(
        "--intake-group-seconds",
        type=float,
        help="the server's time bound on an intake group (default: the code's)",
    )
    parser.add_argument("--skip-sender", action="store_true")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        if args.intake_group_seconds is not None:
            from agentdesk.server.intake import service

            service.INTAKE_GROUPS = replace(
                service.INTAKE_GROUPS, seconds=args.intake_group_seconds
            )
        sync_bench.serve(args.serve)
        return
    with tempfile.TemporaryDirectory() as tmp:
        dbs = sync_bench.Databases(args.database_url, Path(tmp))
        sync_bench.ENGINE_NAME = dbs.kind
        try:
            bench_intake(dbs.new("intake"), args)
            if not args.skip_sender:
                bench_sender(dbs.new("sender"), args)
        finally:
            dbs.drop_all()


if __name__ == "__main__":
    main()
