"""Sync benchmarks: initial sync, push throughput, propagation, and many long-polls.

Everything runs on loopback against a real server: each server is a child process (this script
re-run with ``--serve``, which serves the app with :class:`EmbeddedServer`), so the desktop side
and the server do not share a GIL, and the server's memory can be read from ``/proc``. Prints
one JSON line per measurement; every figure comes with a baseline measured in the same run and
the ratio to it, so a busy machine moves both.

* ``initial``: a team with ``--tickets`` tickets (bulk-written like the demo: the demo team's
  users, plans, organisations and contacts, then tickets stamped with versions through the tenant
  counter, a new version every 500 rows) synced into an empty replica by
  :meth:`SyncEngine.pull_all` (HTTP pages + :meth:`Replica.apply_pull`), with the engine's
  default page size and each ``--pull-limit``, pipelined (the next page fetched while one is
  applied: the engine's default) and sequential (``prefetch=False``, for comparison). Also
  reported: how long applying one page takes (p50, p95), which is how long an agent's click
  can wait for the replica's write lock during a first sync. Baselines: a bare ``SELECT`` of
  the same rows from the server database, and a bare executemany ``INSERT`` of them into an
  empty SQLite file.
* ``push``: mutations per second through :meth:`ApiClient.push` (the raw protocol) in batches,
  through the desktop's path (:meth:`Replica.mutate` then :meth:`SyncEngine.push_outbox`), and
  from ``--clients`` concurrent clients (threads; one login, distinct client ids). Baselines:
  ``GET /healthz`` round trip, and a bare one-row write transaction on the server database.
* ``propagation``: one client pushes a note; another, running :meth:`SyncEngine.run` on a
  thread, holds it after poke + pull. Latency from the push returning to the other replica's
  commit, over ``--changes`` changes.
* ``pollers``: ``--pollers`` concurrent long-polls (asyncio, raw HTTP/1.1) held, then all woken
  by one push; errors, wake latency, and the server's RSS before/during/after. On PostgreSQL
  the pollers are spread over two server processes (LISTEN/NOTIFY carries the wake-up).

Run: ``python bench/sync_bench.py`` (SQLite in a temporary directory) or with
``--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres`` (or the environment
variable ``AGENTDESK_BENCH_DATABASE_URL``): the bench creates its own databases on that server
and drops them afterwards. ``--quick`` is a smoke run of a few seconds per scenario; the full
run takes a few minutes per engine on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast

try:
    import agentdesk  # noqa: F401
except ImportError:  # a checkout without the editable install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
from sqlalchemy import Engine, Table, create_engine, insert, select, text, update
from sqlalchemy.engine import make_url

from agentdesk.models import (
    Contact,
    Organisation,
    Plan,
    Role,
    TenantCounter,
    Ticket,
    TicketStatus,
    User,
    new_id,
)
from agentdesk.models.db import make_engine, sqlite_url
from agentdesk.models.migrate import upgrade
from agentdesk.server import demo_text
from agentdesk.server.demo import DEMO_USERS, VERSION_BATCH, generate_demo
from agentdesk.sync.client import ApiClient
from agentdesk.sync.engine import PULL_PAGE_ROWS, SyncEngine
from agentdesk.sync.protocol import Mutation, PushRequest
from agentdesk.sync.replica import Replica
from agentdesk.sync.rows import SYNCED_MODELS
from bench._common import ms, rank_pct

ENV_URL = "AGENTDESK_BENCH_DATABASE_URL"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
AGENT = next(u for u in DEMO_USERS if u.username == "agent")

ENGINE_NAME = "sqlite"


def emit(bench: str, **row: Any) -> dict[str, Any]:
    line = {"bench": bench, "engine": ENGINE_NAME, **row}
    print(json.dumps(line), flush=True)
    return line


def _reached(state: dict[str, float], target: int) -> bool:
    """The replica's cursor has caught up with ``target`` (read under the condition's lock)."""
    return state["cursor"] >= target


# --------------------------------------------------------------------------- databases


class Databases:
    """Fresh migrated databases for the bench: files in a temporary directory for SQLite,
    databases of their own on the given PostgreSQL server (dropped at the end)."""

    def __init__(self, base_url: str | None, workdir: Path) -> None:
        self.base_url = base_url
        self.workdir = workdir
        self.created: list[str] = []

    @property
    def kind(self) -> str:
        return "postgresql" if self.base_url else "sqlite"

    def _admin(self) -> Engine:
        assert self.base_url
        return create_engine(
            self.base_url, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0
        )

    def new(self, name: str) -> str:
        if not self.base_url:
            url = sqlite_url(self.workdir / f"{name}.sqlite3")
        else:
            database = f"agentdesk_bench_{os.getpid()}_{name}"
            admin = self._admin()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{database}"'))
            admin.dispose()
            self.created.append(database)
            url = (
                make_url(self.base_url).set(database=database).render_as_string(hide_password=False)
            )
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url

    def drop_all(self) -> None:
        if not self.created:
            return
        admin = self._admin()
        with admin.connect() as conn:
            for database in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
        self.created.clear()


def check_loopback(url: str) -> None:
    host = make_url(url).host
    if host is not None and host not in LOOPBACK and not host.startswith("/"):
        raise SystemExit(f"the bench runs on loopback only; {host!r} is not a loopback address")


# --------------------------------------------------------------------------- data


def seed_team(url: str, tickets: int, *, seed: int = 0) -> dict[str, Any]:
    """The demo team without its history (users, calendars, plans, organisations, contacts,
    1-on-1 billing), then ``tickets`` tickets bulk-inserted with versions taken from the tenant
    counter, ``VERSION_BATCH`` rows per version, in one transaction (as the demo writes)."""
    engine = make_engine(url)
    began = time.perf_counter()
    summary = generate_demo(engine, tickets=0, seed=seed)
    rng = random.Random(seed)
    now = datetime.now(UTC)
    tenant_id = summary.tenant_id
    tickets_table = cast(Table, Ticket.__table__)
    with engine.begin() as conn:
        orgs = conn.execute(
            select(Organisation.id, Plan.rank)
            .join(Plan, Organisation.plan_id == Plan.id)
            .where(Organisation.tenant_id == tenant_id)
            .order_by(Organisation.name)
        ).all()
        contacts: dict[uuid.UUID, list[uuid.UUID]] = {}
        for contact_id, org_id in conn.execute(
            select(Contact.id, Contact.organisation_id).where(Contact.tenant_id == tenant_id)
        ):
            contacts.setdefault(org_id, []).append(contact_id)
        orgs = [o for o in orgs if o.id in contacts]
        agents = list(
            conn.scalars(
                select(User.id).where(User.tenant_id == tenant_id, User.role == Role.AGENT)
            )
        )
        version = conn.execute(
            select(TenantCounter.version).where(TenantCounter.tenant_id == tenant_id)
        ).scalar_one()
        statuses = [
            (TicketStatus.CLOSED, 70),
            (TicketStatus.RESOLVED, 10),
            (TicketStatus.IN_PROGRESS, 8),
            (TicketStatus.WAITING_ON_CUSTOMER, 5),
            (TicketStatus.TRIAGED, 3),
            (TicketStatus.NEW, 3),
            (TicketStatus.REDIRECTED, 1),
        ]
        status_pool = [s for s, weight in statuses for _ in range(weight)]
        bodies = [
            " ".join(rng.choice(demo_text.SUBJECTS["L1"][t]) for t in (1, 2, 3, 4))
            for _ in range(50)
        ]
        channels = ["portal", "portal", "chat", "phone", "email"]
        span = timedelta(days=120).total_seconds()
        written = 0
        while written < tickets:
            version += 1
            rows = []
            for _ in range(min(VERSION_BATCH, tickets - written)):
                org = orgs[rng.randrange(len(orgs))]
                level = "L2" if rng.random() < 0.25 else "L1"
                stated = rng.randint(1, 4)
                tier = rng.randint(1, 4)
                status = rng.choice(status_pool)
                arrived = now - timedelta(seconds=rng.uniform(0, span))
                worked = status not in (TicketStatus.NEW, TicketStatus.REDIRECTED)
                done = status in (TicketStatus.RESOLVED, TicketStatus.CLOSED)
                rows.append(
                    {
                        "id": new_id(),
                        "tenant_id": tenant_id,
                        "version": version,
                        "deleted": False,
                        "subject": rng.choice(demo_text.SUBJECTS[level][tier]),
                        "description": rng.choice(bodies),
                        "channel": rng.choice(channels),
                        "organisation_id": org.id,
                        "requester_id": rng.choice(contacts[org.id]),
                        "stated_urgency": stated,
                        "tier": tier if worked else None,
                        "urgency": tier if worked else stated,
                        "plan_rank": org.rank,
                        "level": level,
                        "kind": "general",
                        "status": status.value,
                        "assignee_id": rng.choice(agents) if worked else None,
                        "arrived_at": arrived,
                        "first_response_at": arrived + timedelta(minutes=20) if worked else None,
                        "resolved_at": arrived + timedelta(hours=6) if done else None,
                        "escalated_at": None,
                        "extra_charges": False,
                        "extra_charge_estimate": None,
                        "updated_at": arrived + timedelta(hours=6) if done else arrived,
                    }
                )
            conn.execute(insert(tickets_table), rows)
            written += len(rows)
        conn.execute(
            update(TenantCounter)
            .where(TenantCounter.tenant_id == tenant_id)
            .values(version=version)
        )
    engine.dispose()
    return {"tenant_id": tenant_id, "seconds": time.perf_counter() - began}


def synced_rows(url: str, tenant_id: uuid.UUID) -> tuple[dict[str, list[dict[str, Any]]], float]:
    """Every synced row of the tenant, read by a bare Core SELECT per table; and the seconds
    the reads took (the "bare SELECT" baseline)."""
    engine = make_engine(url)
    out: dict[str, list[dict[str, Any]]] = {}
    began = time.perf_counter()
    with engine.connect() as conn:
        for model in SYNCED_MODELS:
            table = model.__table__  # type: ignore[attr-defined]
            out[table.name] = [
                dict(r)
                for r in conn.execute(
                    select(table).where(table.c.tenant_id == tenant_id).order_by(table.c.version)
                ).mappings()
            ]
    seconds = time.perf_counter() - began
    engine.dispose()
    return out, seconds


def sqlite_insert_seconds(rows: dict[str, list[dict[str, Any]]], path: Path) -> float:
    """A bare executemany INSERT of ``rows`` into a fresh migrated SQLite file (the replica's
    engine settings, foreign keys off as during a pull), in one transaction."""
    path.unlink(missing_ok=True)
    engine = make_engine(sqlite_url(path))
    upgrade(engine)
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")
        began = time.perf_counter()
        with conn.begin():
            for model in SYNCED_MODELS:
                table = model.__table__  # type: ignore[attr-defined]
                if rows.get(table.name):
                    conn.execute(insert(table), rows[table.name])
        seconds = time.perf_counter() - began
    engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return seconds


# --------------------------------------------------------------------------- servers


class ServerProcess:
    """The app served on 127.0.0.1 by a child process (this script with ``--serve``). Closing
    its stdin stops it, so it never outlives the bench."""

    def __init__(self, database_url: str, script: Path | None = None, *extra: str) -> None:
        """``script``: another bench whose ``--serve`` runs :func:`serve` (with ``extra``
        arguments of its own)."""
        script = script or Path(__file__).resolve()
        self.proc = subprocess.Popen(
            [sys.executable, str(script), "--serve", database_url, *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(5)
            raise RuntimeError("the server process did not start")
        self.port = int(json.loads(line)["port"])
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                self.proc.wait(5)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def serve(database_url: str) -> None:
    """Child process: serve until stdin closes."""
    import logging

    from agentdesk.server.embedded import EmbeddedServer
    from agentdesk.server.settings import ServerSettings

    logging.basicConfig(level=logging.WARNING)
    server = EmbeddedServer(ServerSettings(database_url=database_url, migrate_on_start=False))
    server.start()
    print(json.dumps({"port": server.port}), flush=True)
    sys.stdin.read()
    # Leftover long-polls are cut at shutdown; that is the point, not news.
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
    server.stop()


def sign_in(url: str, user: Any = AGENT) -> ApiClient:
    client = ApiClient(url, read_timeout=120.0)
    client.login(user.username, user.password)
    return client


def healthz_rtt(url: str, n: int) -> list[float]:
    """``GET /healthz`` round trips on one keep-alive ``requests`` session (seconds)."""
    samples = []
    with requests.Session() as session:
        session.get(f"{url}/healthz", timeout=10).raise_for_status()
        for _ in range(n):
            began = time.perf_counter()
            session.get(f"{url}/healthz", timeout=10).raise_for_status()
            samples.append(time.perf_counter() - began)
    return samples


def new_replica(path: Path, client: ApiClient, url: str) -> Replica:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    me = client.me()
    replica = Replica(path)
    replica.configure(
        server_url=url,
        tenant_id=me.tenant_id,
        user_id=me.id,
        username=me.username,
        role=me.role,
        timezone=me.team_timezone,
    )
    return replica


# --------------------------------------------------------------------------- 1. initial sync


@dataclass
class Timed:
    seconds: float = 0.0
    calls: int = 0
    samples: list[float] = field(default_factory=list)


def timed(fn: Callable[..., Any], into: Timed) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            took = time.perf_counter() - began
            into.seconds += took
            into.calls += 1
            into.samples.append(took)

    return wrapper


def initial_variants(args: argparse.Namespace) -> list[tuple[int | None, bool]]:
    """(rows per page or None for the engine's default, prefetch) for each timed variant."""
    limits: list[int | None] = []
    for limit in args.pull_limits or [0]:
        value = None if limit == 0 else limit
        if value not in limits:
            limits.append(value)
    modes = {"both": (True, False), "pipelined": (True,), "sequential": (False,)}
    return [(limit, prefetch) for limit in limits for prefetch in modes[args.initial_modes]]


def bench_initial(dbs: Databases, args: argparse.Namespace, workdir: Path) -> None:
    url = dbs.new("initial")
    seeded = seed_team(url, args.tickets)
    rows, _ = synced_rows(url, seeded["tenant_id"])
    total = sum(len(v) for v in rows.values())
    emit(
        "initial seed",
        tickets=args.tickets,
        rows=total,
        seconds=round(seeded["seconds"], 1),
        by_table={k: len(v) for k, v in rows.items() if v},
    )
    select_s = [synced_rows(url, seeded["tenant_id"])[1] for _ in range(args.runs)]
    insert_s = [
        sqlite_insert_seconds(rows, workdir / "bare-insert.sqlite3") for _ in range(args.runs)
    ]
    del rows
    select_rate = total / statistics.median(select_s)
    insert_rate = total / statistics.median(insert_s)
    emit(
        "baseline bare SELECT (server database)",
        rows=total,
        median_rows_per_s=round(select_rate),
        runs=len(select_s),
    )
    emit(
        "baseline bare SQLite executemany INSERT",
        rows=total,
        median_rows_per_s=round(insert_rate),
        runs=len(insert_s),
    )
    variants = initial_variants(args)
    with ServerProcess(url) as server:
        client = sign_in(server.url)
        # Runs are interleaved (run 1 of every variant, then run 2...), so a machine that gets
        # busier or quieter during the bench moves every variant alike.
        results: dict[tuple[int | None, bool], list[tuple[float, float, float, int]]] = {
            v: [] for v in variants
        }
        #: Per variant, how long each page's apply held the replica's write lock (the last
        #: page of each run left out: it includes the checkpoint that ends a large pull).
        page_applies: dict[tuple[int | None, bool], list[float]] = {v: [] for v in variants}
        rows_per_page: dict[tuple[int | None, bool], int] = {}
        for run in range(args.runs):
            # ... and each run starts with another variant (the first pull after the server
            # started is the coldest).
            for limit, prefetch in (
                variants[run % len(variants) :] + variants[: run % len(variants)]
            ):
                options: dict[str, Any] = {"prefetch": prefetch}
                if limit is not None:
                    options["pull_limit"] = limit
                replica = new_replica(workdir / f"initial-{run}.sqlite3", client, server.url)
                engine = SyncEngine(replica, client, **options)
                rows_per_page[(limit, prefetch)] = engine.pull_limit
                http, apply = Timed(), Timed()
                client_pull, replica_apply = client.pull, replica.apply_pull
                client.pull = timed(client_pull, http)  # type: ignore[method-assign]
                replica.apply_pull = timed(replica_apply, apply)  # type: ignore[method-assign]
                began = time.perf_counter()
                applied = engine.pull_all()
                seconds = time.perf_counter() - began
                del client.pull
                replica.close()
                assert applied == total, (applied, total)
                results[(limit, prefetch)].append(
                    (seconds, http.seconds, apply.seconds, http.calls)
                )
                page_applies[(limit, prefetch)].extend(apply.samples[:-1])
        sequential_rate = {
            rows_per_page[v]: total / statistics.median(r[0] for r in t)
            for v, t in results.items()
            if not v[1]
        }
        for (limit, prefetch), timings in results.items():
            med = statistics.median(r[0] for r in timings)
            rate = total / med
            page_rows = rows_per_page[(limit, prefetch)]
            extra: dict[str, Any] = {}
            if prefetch and page_rows in sequential_rate:
                extra["x_sequential"] = round(rate / sequential_rate[page_rows], 3)
            emit(
                "initial sync",
                rows=total,
                tickets=args.tickets,
                pull_limit=page_rows,
                engine_default=limit is None,
                prefetch=prefetch,
                pages=timings[0][3],
                runs=len(timings),
                median_s=round(med, 2),
                median_rows_per_s=round(rate),
                runs_s=[round(r[0], 2) for r in timings],
                http_pull_s=round(statistics.median(r[1] for r in timings), 2),
                apply_pull_s=round(statistics.median(r[2] for r in timings), 2),
                page_apply_ms_p50=ms(rank_pct(page_applies[(limit, prefetch)], 50)),
                page_apply_ms_p95=ms(rank_pct(page_applies[(limit, prefetch)], 95)),
                target_rows_per_s=10_000,
                meets_target=rate >= 10_000,
                x_bare_select=round(rate / select_rate, 3),
                x_bare_sqlite_insert=round(rate / insert_rate, 3),
                **extra,
            )
        client.close()


# --------------------------------------------------------------------------- 2. push


@dataclass
class WorkTeam:
    url: str
    tenant_id: uuid.UUID
    ticket_ids: list[uuid.UUID]
    org_contacts: list[tuple[uuid.UUID, uuid.UUID]]


def work_team(dbs: Databases, tickets: int) -> WorkTeam:
    url = dbs.new("work")
    seeded = seed_team(url, tickets, seed=1)
    engine = make_engine(url)
    with engine.connect() as conn:
        ticket_ids = [tid for (tid,) in conn.execute(select(Ticket.id).limit(2000))]
        org_contacts = [
            (o, c)
            for c, o in conn.execute(
                select(Contact.id, Contact.organisation_id).where(Contact.validated.is_(True))
            )
        ]
    engine.dispose()
    return WorkTeam(url, seeded["tenant_id"], ticket_ids, org_contacts)


def note_args(team: WorkTeam, rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "ticket_id": str(rng.choice(team.ticket_ids)),
        "body": f"Checked the logs again (note {n}); waiting for the customer's HAR file.",
    }


def ticket_args(team: WorkTeam, rng: random.Random, n: int) -> dict[str, Any]:
    org, contact = rng.choice(team.org_contacts)
    return {
        "ticket_id": str(uuid.uuid4()),
        "subject": f"Checkout fails on order {n}",
        "description": "Every order since 9:00 fails at the payment step.",
        "channel": "portal",
        "organisation_id": str(org),
        "requester_id": str(contact),
        "stated_urgency": 2,
    }


MAKERS: dict[str, Callable[[WorkTeam, random.Random, int], dict[str, Any]]] = {
    "add_note": note_args,
    "create_ticket": ticket_args,
}


def batches(
    team: WorkTeam, name: str, client_id: uuid.UUID, count: int, size: int, rng: random.Random
) -> list[PushRequest]:
    make = MAKERS[name]
    out = []
    for b in range(count):
        muts = [
            Mutation(id=b * size + i + 1, name=name, args=make(team, rng, b * size + i))
            for i in range(size)
        ]
        out.append(PushRequest(client_id=client_id, mutations=muts))
    return out


def bare_write_rate(url: str, n: int) -> float:
    """One-row write transactions per second on the server database from this process: the
    floor under "one transaction per mutation"."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS bench_scratch (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"
        )
    immediate = engine.execution_options(sqlite_begin="immediate")
    began = time.perf_counter()
    for i in range(n):
        with immediate.begin() as conn:
            conn.execute(
                text("INSERT INTO bench_scratch (id, body) VALUES (:i, :b)"),
                {"i": i + 1, "b": "x" * 80},
            )
    seconds = time.perf_counter() - began
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE bench_scratch")
    engine.dispose()
    return n / seconds


def bench_push(team: WorkTeam, args: argparse.Namespace, workdir: Path) -> None:
    write_rate = bare_write_rate(team.url, 300 if args.quick else 2000)
    with ServerProcess(team.url) as server:
        rtt = statistics.median(healthz_rtt(server.url, 200))
        emit("baseline healthz round trip", median_ms=ms(rtt))
        emit("baseline bare one-row write transaction", median_per_s=round(write_rate))
        rng = random.Random(7)
        client = sign_in(server.url)
        # Raw protocol: prepared batches through ApiClient.push, one client.
        for name, size in (("add_note", 100), ("add_note", 500), ("create_ticket", 100)):
            reqs = batches(team, name, uuid.uuid4(), args.push_batches, size, rng)
            client.push(reqs[0])  # warm-up (first contact creates the client row)
            per_s = []
            for req in reqs[1:]:
                began = time.perf_counter()
                resp = client.push(req)
                per_s.append(size / (time.perf_counter() - began))
                assert all(r.status == "applied" for r in resp.results), resp.results[:3]
            rate = statistics.median(per_s)
            emit(
                "push raw protocol, 1 client",
                mutation=name,
                batch=size,
                batches=len(per_s),
                median_mutations_per_s=round(rate),
                min=round(min(per_s)),
                max=round(max(per_s)),
                target=1000,
                meets_target=rate >= 1000,
                x_bare_write=round(rate / write_rate, 3),
                ms_per_mutation=round(1000 / rate, 3),
                x_healthz=round((1 / rate) / rtt, 2),
            )
        # The desktop's path: Replica.mutate, then SyncEngine.push_outbox, then pull_all.
        replica = new_replica(workdir / "push-e2e.sqlite3", client, server.url)
        engine = SyncEngine(replica, client, push_batch=args.e2e_batch)
        engine.pull_all()
        mutate_s, push_s, pull_s = [], [], []
        n = args.e2e_mutations
        for run in range(args.runs):
            began = time.perf_counter()
            for i in range(n):
                replica.mutate("add_note", note_args(team, rng, run * n + i))
            mutate_s.append(time.perf_counter() - began)
            began = time.perf_counter()
            summary = engine.push_outbox()
            push_s.append(time.perf_counter() - began)
            assert summary.applied == n, summary
            began = time.perf_counter()
            engine.pull_all()
            pull_s.append(time.perf_counter() - began)
            assert replica.pending_count() == 0
        replica.close()
        push_rate = n / statistics.median(push_s)
        total_rate = n / statistics.median(
            m + p + q for m, p, q in zip(mutate_s, push_s, pull_s, strict=True)
        )
        emit(
            "push end to end, 1 client",
            mutation="add_note",
            mutations=n,
            batch=args.e2e_batch,
            runs=args.runs,
            local_mutate_per_s=round(n / statistics.median(mutate_s)),
            push_outbox_mutations_per_s=round(push_rate),
            pull_confirm_s=round(statistics.median(pull_s), 3),
            mutate_push_pull_per_s=round(total_rate),
            target=1000,
            meets_target=push_rate >= 1000,
            x_bare_write=round(push_rate / write_rate, 3),
        )
        client.close()
        concurrent_push(team, server.url, args, write_rate)


def concurrent_push(team: WorkTeam, url: str, args: argparse.Namespace, write_rate: float) -> None:
    """``--clients`` threads, each with its own session and client id (one shared login),
    pushing prepared batches at once."""
    token = sign_in(url).token
    rng = random.Random(11)
    size = args.concurrent_batch
    plans = [
        batches(team, "add_note", uuid.uuid4(), args.concurrent_batches, size, rng)
        for _ in range(args.clients)
    ]
    clients = [ApiClient(url, token=token, read_timeout=300.0) for _ in plans]
    for c in clients:
        c.get("/healthz").raise_for_status()  # connect before the start line
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(clients) + 1)

    def worker(client: ApiClient, reqs: list[PushRequest]) -> None:
        start.wait()
        for req in reqs:
            began = time.perf_counter()
            try:
                resp = client.push(req)
                bad = [r for r in resp.results if r.status != "applied"]
                if bad or resp.expected_mutation_id is not None:
                    raise RuntimeError(f"unexpected push result {bad[:1]}")
            except Exception as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                return
            with lock:
                latencies.append(time.perf_counter() - began)

    threads = [
        threading.Thread(target=worker, args=(c, p)) for c, p in zip(clients, plans, strict=True)
    ]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - began
    for c in clients:
        c.close()
    total = len(latencies) * size
    rate = total / seconds
    emit(
        "push raw protocol, concurrent clients",
        clients=args.clients,
        mutation="add_note",
        batch=size,
        mutations=total,
        seconds=round(seconds, 2),
        mutations_per_s=round(rate),
        batch_p50_ms=ms(rank_pct(latencies, 50)),
        batch_p99_ms=ms(rank_pct(latencies, 99)),
        errors=len(errors),
        first_error=errors[0] if errors else None,
        target=1000,
        meets_target=rate >= 1000,
        x_bare_write=round(rate / write_rate, 3),
    )


# --------------------------------------------------------------------------- 3. propagation


def bench_propagation(team: WorkTeam, args: argparse.Namespace, workdir: Path) -> None:
    with ServerProcess(team.url) as server:
        rtt = statistics.median(healthz_rtt(server.url, 200))
        writer = sign_in(server.url)
        reader_client = sign_in(server.url)
        replica = new_replica(workdir / "propagation.sqlite3", reader_client, server.url)
        engine = SyncEngine(replica, reader_client)
        engine.pull_all()
        seen = threading.Condition()
        state = {"cursor": replica.state.cursor, "at": time.perf_counter()}

        def on_change(kind: str) -> None:
            if kind == "pull":
                cursor = replica.state.cursor
                with seen:
                    state["cursor"], state["at"] = cursor, time.perf_counter()
                    seen.notify_all()

        replica.add_listener(on_change)
        stop = threading.Event()
        loop = threading.Thread(target=engine.run, args=(stop,), daemon=True)
        loop.start()
        rng = random.Random(3)
        client_id = uuid.uuid4()
        latencies, push_rtts = [], []
        early = timeouts = 0
        time.sleep(0.3)  # let the loop park on its first poke
        for i in range(args.changes + 5):
            req = PushRequest(
                client_id=client_id,
                mutations=[Mutation(id=i + 1, name="add_note", args=note_args(team, rng, i))],
            )
            began = time.perf_counter()
            resp = writer.push(req)
            returned = time.perf_counter()
            target = resp.version
            with seen:
                ok = seen.wait_for(partial(_reached, state, target), timeout=5)
                at = state["at"]
            if i < 5:  # warm-up
                continue
            push_rtts.append(returned - began)
            if not ok:
                timeouts += 1
                continue
            if at < returned:
                early += 1
            latencies.append(max(0.0, at - returned))
            time.sleep(rng.uniform(0.005, 0.03))  # changes arrive at random moments
        stop.set()
        loop.join(timeout=30)
        replica.close()
        writer.close()
        reader_client.close()
    p50, p90, p99 = (rank_pct(latencies, q) for q in (50, 90, 99))
    emit(
        "propagation push -> other replica (poke + pull)",
        changes=len(latencies),
        p50_ms=ms(p50),
        p90_ms=ms(p90),
        p99_ms=ms(p99),
        max_ms=ms(max(latencies)),
        held_before_push_returned=early,
        timeouts=timeouts,
        push_rtt_p50_ms=ms(rank_pct(push_rtts, 50)),
        healthz_ms=ms(rtt),
        x_healthz_p50=round(p50 / rtt, 1),
        target_p50_ms=50,
        target_p99_ms=250,
        meets_target=p50 <= 0.050 and p99 <= 0.250 and timeouts == 0,
    )


# --------------------------------------------------------------------------- 4. pollers


@dataclass
class PollResult:
    status: int = 0
    body: dict[str, Any] = field(default_factory=dict)
    done_at: float = 0.0
    error: str | None = None


async def long_poll(port: int, token: str, cursor: int, wait: float) -> PollResult:
    """One poke over a fresh loopback connection, raw HTTP/1.1 (``Connection: close``)."""
    result = PollResult()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET /api/v1/sync/poke?cursor={cursor}&wait={wait} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: application/json\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), wait + 15)
        result.done_at = time.perf_counter()
        writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        result.status = int(head.split(b" ", 2)[1])
        result.body = json.loads(body) if body else {}
    except Exception as exc:  # counted, reported
        result.error = f"{type(exc).__name__}: {exc}"
        result.done_at = time.perf_counter()
    return result


def bench_pollers(team: WorkTeam, args: argparse.Namespace) -> None:
    n_servers = 2 if ENGINE_NAME == "postgresql" else 1
    servers = [ServerProcess(team.url) for _ in range(n_servers)]
    try:
        _pollers(team, args, servers)
    finally:
        for s in servers:
            s.stop()


def _pollers(team: WorkTeam, args: argparse.Namespace, servers: list[ServerProcess]) -> None:
    rtt = statistics.median(healthz_rtt(servers[0].url, 100))
    pusher = sign_in(servers[0].url)
    token = pusher.token
    assert token is not None
    rng = random.Random(5)
    client_id = uuid.uuid4()
    mutation = 0

    def push_one() -> tuple[int, float]:
        nonlocal mutation
        mutation += 1
        resp = pusher.push(
            PushRequest(
                client_id=client_id,
                mutations=[
                    Mutation(id=mutation, name="add_note", args=note_args(team, rng, mutation))
                ],
            )
        )
        return resp.version, time.perf_counter()

    version, _ = push_one()
    for s in servers[1:]:
        healthz_rtt(s.url, 20)

    def rss() -> list[int]:
        return [s.rss_kib() for s in servers]

    rss_before = rss()
    emit("pollers server RSS before", servers=len(servers), rss_kib=rss_before, healthz_ms=ms(rtt))

    async def one_round(cursor: int, wait: float, hold: float, wake: bool) -> dict[str, Any]:
        tasks = [
            asyncio.create_task(long_poll(servers[i % len(servers)].port, token, cursor, wait))
            for i in range(args.pollers)
        ]
        await asyncio.sleep(hold)
        early = sum(t.done() for t in tasks)
        during = rss()
        pushed_at = returned = 0.0
        if wake:
            pushed_at = time.perf_counter()
            new_version, returned = await asyncio.get_running_loop().run_in_executor(None, push_one)
        else:
            new_version = cursor
        results = await asyncio.gather(*tasks)
        errors = [r.error or f"HTTP {r.status}" for r in results if r.error or r.status != 200]
        woken = [r for r in results if r.status == 200 and r.body.get("changed")]
        wrong = [r for r in results if r.status == 200 and bool(r.body.get("changed")) != wake]
        row: dict[str, Any] = {
            "pollers": len(results),
            "errors": len(errors),
            "first_error": errors[0] if errors else None,
            "returned_before_wake": early,
            "wrong_answer": len(wrong),
            "rss_during_kib": during,
            "new_version": new_version,
        }
        if wake:
            lat = [r.done_at - pushed_at for r in woken]
            row.update(
                woken=len(woken),
                wake_p50_ms=ms(rank_pct(lat, 50)),
                wake_p99_ms=ms(rank_pct(lat, 99)),
                wake_max_ms=ms(max(lat)),
                push_rtt_ms=ms(returned - pushed_at),
            )
        return row

    rounds = []
    # Round 0: nobody pushes; every poll must time out cleanly with changed=false.
    r0 = asyncio.run(one_round(version, 2.0, 1.0, wake=False))
    emit("pollers timeout round", wait_s=2.0, **r0, rss_after_kib=rss())
    for i in range(args.poll_rounds):
        row = asyncio.run(one_round(version, 25.0, args.poll_hold, wake=True))
        version = row.pop("new_version")
        row["rss_after_kib"] = rss()
        rounds.append(row)
        emit("pollers wake round", round=i + 1, hold_s=args.poll_hold, servers=len(servers), **row)
    time.sleep(1.0)
    rss_end = rss()
    peak = [max(r["rss_during_kib"][k] for r in rounds) for k in range(len(servers))]
    errors = sum(r["errors"] + r["wrong_answer"] + r["returned_before_wake"] for r in rounds)
    errors += r0["errors"] + r0["wrong_answer"]
    emit(
        "pollers summary",
        pollers=args.pollers,
        rounds=len(rounds),
        servers=len(servers),
        errors=errors,
        rss_before_kib=rss_before,
        rss_peak_kib=peak,
        rss_end_kib=rss_end,
        rss_growth_during_kib=[p - b for p, b in zip(peak, rss_before, strict=True)],
        rss_kib_per_poller=round(
            sum(p - b for p, b in zip(peak, rss_before, strict=True)) / args.pollers, 1
        ),
        wake_p50_ms=statistics.median(r["wake_p50_ms"] for r in rounds),
        wake_p99_ms=max(r["wake_p99_ms"] for r in rounds),
        healthz_ms=ms(rtt),
    )
    pusher.close()


# --------------------------------------------------------------------------- main


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--database-url",
        default=os.environ.get(ENV_URL),
        help=f"a PostgreSQL server URL, or sqlite:// (default ${ENV_URL}, else "
        "SQLite files in a temporary directory)",
    )
    p.add_argument("--quick", action="store_true", help="a smoke run: small sizes")
    p.add_argument(
        "--only", default="initial,push,propagation,pollers", help="comma-separated scenarios"
    )
    p.add_argument("--tickets", type=int, help="tickets for the initial sync (100000)")
    p.add_argument(
        "--pull-limit",
        type=int,
        action="append",
        dest="pull_limits",
        help="rows per pull page for the initial sync (repeatable; 0 is the "
        f"engine's default, {PULL_PAGE_ROWS}; default: 0, 1000 and 5000)",
    )
    p.add_argument(
        "--initial-modes",
        choices=("both", "pipelined", "sequential"),
        default="both",
        help="initial sync: the engine's pipelined pull (next page "
        "fetched while one is applied), the sequential one, or both (default)",
    )
    p.add_argument("--runs", type=int, help="repetitions of each timed run (3)")
    p.add_argument("--clients", type=int, help="concurrent pushing clients (50)")
    p.add_argument("--changes", type=int, help="changes timed for propagation (200)")
    p.add_argument("--pollers", type=int, help="concurrent long-polls (200)")
    p.add_argument("--work-tickets", type=int, help="tickets in the push/poll team (2000)")
    p.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {
        "tickets": 5000 if quick else 100_000,
        "runs": 1 if quick else 3,
        "clients": 10 if quick else 50,
        "changes": 30 if quick else 200,
        "pollers": 50 if quick else 200,
        "work_tickets": 200 if quick else 2000,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not args.pull_limits:
        args.pull_limits = [0] if quick else [0, 1000, 5000]
    args.push_batches = 4 if quick else 8
    args.e2e_mutations = 200 if quick else 1000
    args.e2e_batch = 100
    args.concurrent_batch = 100
    args.concurrent_batches = 1 if quick else 2
    args.poll_rounds = 1 if quick else 3
    args.poll_hold = 1.0 if quick else 3.0
    return args


def main(argv: Sequence[str] | None = None) -> None:
    global ENGINE_NAME
    args = parse(argv)
    if args.serve:
        serve(args.serve)
        return
    if args.database_url and make_url(args.database_url).get_backend_name() == "sqlite":
        args.database_url = None  # SQLite: the bench's own files in a temporary directory
    if args.database_url:
        check_loopback(args.database_url)
        if make_url(args.database_url).get_backend_name() != "postgresql":
            raise SystemExit("--database-url names a PostgreSQL server (or sqlite://)")
    workdir = Path(tempfile.mkdtemp(prefix="agentdesk-sync-bench-"))
    dbs = Databases(args.database_url, workdir)
    ENGINE_NAME = dbs.kind
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    began = time.perf_counter()
    emit(
        "machine",
        cpus=os.cpu_count(),
        python=platform.python_version(),
        platform=platform.platform(),
        quick=args.quick,
    )
    try:
        if "initial" in only:
            bench_initial(dbs, args, workdir)
        if only & {"push", "propagation", "pollers"}:
            team = work_team(dbs, args.work_tickets)
            if "push" in only:
                bench_push(team, args, workdir)
            if "propagation" in only:
                bench_propagation(team, args, workdir)
            if "pollers" in only:
                bench_pollers(team, args)
    finally:
        with contextlib.suppress(Exception):
            dbs.drop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    emit("total", seconds=round(time.perf_counter() - began, 1))


if __name__ == "__main__":
    main()
