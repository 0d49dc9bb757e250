"""A team's working day, compressed: many desktops on several server processes on one PostgreSQL.

Three ``agentdesk server`` processes (the real command, JSON logs to files, each within its
``--max-db-connections`` budget) share one PostgreSQL database holding the demo team.
``--desktops`` simulated desktops, threads spread over ``--client-processes`` processes, each
speaking the sync protocol through the desktop's own :class:`ApiClient` without retries (one
client id each, one sign-in per person shared by that person's desktops), do what an agent's
desktop does: hold a long-poll (``/sync/poke``) and pull when the team's version moves, and
every so often (``--think`` seconds on average, exponential) push one action from an agent's
mix: internal notes, replies, triage (coordinators and leads), new tickets from a customer, the
1-on-1 timer started and stopped (consultants and leads). Desktops are spread over the servers;
a desktop whose server is unreachable moves to the next one (what the reverse proxy's
``proxy_next_upstream`` does), and resends (pushes are idempotent).

Halfway through, one server process is killed (SIGKILL) and started again.

Reported (JSON lines): errors (any failed request other than "unreachable" while its server was
down: a 503 counts, it is not retried), the achieved action rate against the intended one, a
``/healthz`` baseline probed once a second in the same run, mutations acknowledged vs. found in
the database exactly once (a note's body carries its client id and mutation id), push latency
p50/p99, propagation p50/p99 (from a push's answer to each other desktop's pull reaching that
version), every server process's RSS sampled over time, and the most PostgreSQL connections the
database (and the whole PostgreSQL server) had. Loopback only; bounded by ``--duration``.

    python bench/team_load.py --duration 600
    python bench/team_load.py --duration 60 --desktops 50   (a smoke run)
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from agentdesk.models import Contact, Organisation, Role, Ticket, TicketStatus
from agentdesk.models.db import make_engine
from agentdesk.models.migrate import upgrade
from agentdesk.server.demo import DEMO_USERS, generate_demo
from agentdesk.sync.client import ApiClient, ApiError, Offline
from agentdesk.sync.protocol import Mutation, PullRequest, PushRequest

ROOT = Path(__file__).resolve().parent.parent
#: Mutations that leave their "load <client>/<id>" marker in a row (a note's body, a new
#: ticket's subject, a time entry's note), so each applied one is counted in the database.
MARKED = frozenset({"add_note", "create_ticket", "stop_timer"})


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


# --------------------------------------------------------------------------- servers


class Server:
    def __init__(self, url: str, logdir: Path, index: int, max_db_connections: int) -> None:
        self.url, self.index, self.port = url, index, free_port()
        self.max_db_connections = max_db_connections
        self.log = logdir / f"server-{index}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        #: Answering /healthz since its last start (the probe leaves it alone otherwise).
        self.ready = False

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "AGENTDESK_DATABASE_URL": self.url}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "agentdesk",
                    "server",
                    "--port",
                    str(self.port),
                    "--max-db-connections",
                    str(self.max_db_connections),
                    "--log-format",
                    "json",
                    "--log-level",
                    "warning",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=ROOT,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/healthz", timeout=5).ok:
                    self.ready = True
                    return
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        raise RuntimeError(f"server {self.index} did not start; see {self.log}")

    def kill(self) -> None:
        assert self.proc is not None
        self.ready = False
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)

    def rss_mib(self) -> float | None:
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            return None
        return None


# --------------------------------------------------------------------------- the team's data


@dataclass
class TeamData:
    tickets: list[uuid.UUID]
    contacts: list[tuple[uuid.UUID, uuid.UUID]]  # (organisation, validated contact)


def team_data(url: str) -> TeamData:
    engine = make_engine(url)
    with engine.connect() as conn:
        tickets = list(
            conn.execute(
                select(Ticket.id).where(
                    Ticket.status.notin_(
                        [TicketStatus.CLOSED, TicketStatus.RESOLVED, TicketStatus.REDIRECTED]
                    )
                )
            ).scalars()
        )
        contacts = [
            (r.organisation_id, r.id)
            for r in conn.execute(
                select(Contact.organisation_id, Contact.id)
                .join(Organisation, Organisation.id == Contact.organisation_id)
                .where(Contact.validated.is_(True), Contact.deleted.is_(False))
            )
        ]
    engine.dispose()
    return TeamData(tickets, contacts)


# --------------------------------------------------------------------------- a desktop


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[str] = field(default_factory=list)
    offline: int = 0
    failovers: int = 0
    #: (monotonic time, the server given up on, why: refused, timed out...) per failover
    failover_log: list[tuple[float, int, str]] = field(default_factory=list)
    push_ms: list[float] = field(default_factory=list)
    #: (version, monotonic time the push was answered, desktop index)
    pushes: list[tuple[int, float, int]] = field(default_factory=list)
    #: client id -> mutation id -> (status, mutation name)
    acknowledged: dict[str, dict[int, tuple[str, str]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


class Desktop(threading.Thread):
    def __init__(
        self,
        index: int,
        servers: list[str],
        token: str,
        role: Role,
        data: TeamData,
        stats: Stats,
        stop: threading.Event,
        think: float,
        seed: int,
        ramp: float,
    ) -> None:
        super().__init__(name=f"desk-{index}", daemon=True)
        self.index, self.servers, self.token, self.role = index, servers, token, role
        self.data, self.stats, self.stop_event, self.think = data, stats, stop, think
        self.ramp = ramp
        self.rng = random.Random(seed)
        self.server = index % len(servers)
        self.client_id = uuid.uuid4()
        self.cursor = 0
        self.next_id = 1
        self.outbox: list[Mutation] = []
        self.timer: tuple[uuid.UUID, datetime] | None = None
        #: (monotonic time, cursor) after each pull.
        self.seen: list[tuple[float, int]] = []
        self.client = self._client()

    def _client(self) -> ApiClient:
        return ApiClient(
            self.servers[self.server],
            token=self.token,
            retries=0,
            backoff_factor=0.1,
            connect_timeout=2.0,
            read_timeout=40.0,
        )

    def _failover(self, why: str) -> None:
        self.client.close()
        with self.stats.lock:
            self.stats.failovers += 1
            self.stats.failover_log.append((time.monotonic(), self.server, why[-120:]))
        self.server = (self.server + 1) % len(self.servers)
        self.client = self._client()

    def _call(self, what: str, fn: Any) -> Any:
        """Run a request; unreachable -> next server and retry, anything else -> an error."""
        for _attempt in range(len(self.servers) * 3):
            if self.stop_event.is_set():
                return None
            try:
                return fn()
            except Offline as exc:
                with self.stats.lock:
                    self.stats.offline += 1
                self._failover(f"{what}: {exc.message}")
                time.sleep(0.2)
            except ApiError as exc:
                with self.stats.lock:
                    self.stats.errors.append(f"{what}: {exc.status} {exc.code} {exc.message}")
                return None
            except Exception as exc:  # a bench counts every failure, whatever it is
                with self.stats.lock:
                    self.stats.errors.append(f"{what}: {type(exc).__name__} {exc}")
                return None
        with self.stats.lock:
            self.stats.errors.append(f"{what}: no server reachable")
        return None

    def pull_all(self) -> None:
        while True:
            page = self._call(
                "pull",
                lambda: self.client.pull(
                    PullRequest(client_id=self.client_id, cursor=self.cursor, limit=5000)
                ),
            )
            if page is None:
                return
            self.cursor = page.cursor
            if not page.has_more:
                self.seen.append((time.monotonic(), self.cursor))
                return

    def action(self) -> Mutation:
        rng, name = self.rng, "add_note"
        ticket = str(rng.choice(self.data.tickets))
        roll = rng.random()
        mid = self.next_id
        marker = f"load {self.client_id}/{mid}"
        args: dict[str, Any] = {"ticket_id": ticket, "body": f"{marker}: checked the logs"}
        now = datetime.now(UTC)
        if self.timer is not None:
            timer_id, _started = self.timer
            name, args = (
                "stop_timer",
                {
                    "timer_id": str(timer_id),
                    "entry_id": str(uuid.uuid4()),
                    "ended_at": now.isoformat(),
                    "note": marker,
                },
            )
            self.timer = None
        elif roll < 0.40:
            pass  # an internal note
        elif roll < 0.60:
            args["kind"] = "reply"
        elif roll < 0.72 and self.role in (Role.COORDINATOR, Role.LEAD, Role.ADMIN):
            name = "triage_ticket"
            args = {"ticket_id": ticket, "tier": rng.choice([1, 2, 3]), "level": "L1"}
        elif roll < 0.82:
            org, contact = rng.choice(self.data.contacts)
            name = "create_ticket"
            args = {
                "ticket_id": str(uuid.uuid4()),
                "subject": marker,
                "channel": "email",
                "organisation_id": str(org),
                "requester_id": str(contact),
                "stated_urgency": rng.choice([1, 2, 3]),
            }
        elif self.role in (Role.CONSULTANT, Role.LEAD, Role.ADMIN):
            org, _contact = rng.choice(self.data.contacts)
            timer_id = uuid.uuid4()
            name = "start_timer"
            args = {
                "timer_id": str(timer_id),
                "organisation_id": str(org),
                "started_at": (now - timedelta(seconds=1)).isoformat(),
            }
            self.timer = (timer_id, now)
        self.next_id += 1
        return Mutation(id=mid, name=name, args=args, client_time=now)

    def push(self) -> None:
        request = PushRequest(client_id=self.client_id, mutations=self.outbox)
        started = time.monotonic()
        resp = self._call("push", lambda: self.client.push(request))
        if resp is None:
            return
        done = time.monotonic()
        with self.stats.lock:
            self.stats.push_ms.append((done - started) * 1000)
            self.stats.pushes.append((resp.version, done, self.index))
            acked = self.stats.acknowledged.setdefault(str(self.client_id), {})
            for result, mutation in zip(resp.results, self.outbox, strict=False):
                acked[result.id] = (result.status, mutation.name)
                key = f"{mutation.name}:{result.status}"
                self.stats.counts[key] = self.stats.counts.get(key, 0) + 1
        self.outbox = [m for m in self.outbox if m.id > resp.last_mutation_id]

    def run(self) -> None:
        time.sleep(self.rng.uniform(0, self.ramp))  # desktops start over time
        self.pull_all()
        due = time.monotonic() + self.rng.expovariate(1 / self.think)
        while not self.stop_event.is_set():
            left = due - time.monotonic()
            if left > 0.05:
                wait = min(left, 25.0)
                poke = self._call("poke", lambda w=wait: self.client.poke(self.cursor, wait=w))
                if poke is not None and poke.changed:
                    self.pull_all()
                continue
            self.outbox.append(self.action())
            self.push()
            self.pull_all()
            due = time.monotonic() + self.rng.expovariate(1 / self.think)
        self.client.close()


# --------------------------------------------------------------------------- the run


def run_worker(plan_path: Path, first: int, last: int, out: Path) -> int:
    """A client process: desktops ``first..last-1`` of the plan, until the plan's stop time
    (``time.monotonic`` is the system's monotonic clock, the same in every process)."""
    plan = json.loads(plan_path.read_text())
    data = TeamData(
        [uuid.UUID(t) for t in plan["tickets"]],
        [(uuid.UUID(o), uuid.UUID(c)) for o, c in plan["contacts"]],
    )
    stats, stop = Stats(), threading.Event()
    tokens = [(t, Role(r)) for t, r in plan["tokens"]]
    desks = [
        Desktop(
            i,
            plan["servers"],
            *tokens[i % len(tokens)],
            data,
            stats,
            stop,
            plan["think"],
            plan["seed"] * 100_003 + i,
            plan["ramp"],
        )
        for i in range(first, last)
    ]
    for d in desks:
        d.start()
    time.sleep(max(0.0, plan["stop_at"] - time.monotonic()))
    stop.set()
    for d in desks:
        d.join(timeout=60)
    out.write_text(
        json.dumps(
            {
                "errors": stats.errors,
                "offline": stats.offline,
                "failovers": stats.failovers,
                "failover_log": stats.failover_log,
                "push_ms": stats.push_ms,
                "pushes": stats.pushes,
                "acknowledged": {
                    c: {str(k): v for k, v in a.items()} for c, a in stats.acknowledged.items()
                },
                "counts": stats.counts,
                "seen": {str(d.index): d.seen for d in desks},
                "stuck": sum(d.is_alive() for d in desks),
            }
        )
    )
    return 0


class HealthProbe(threading.Thread):
    """The baseline: ``GET /healthz`` (one ``SELECT 1``) once a second against a live server,
    in the same run, so push latency reads as a ratio to the cheapest round trip."""

    def __init__(self, servers: list[Server], stop: threading.Event, started: float) -> None:
        super().__init__(name="healthz-probe", daemon=True)
        self.servers, self.stop_event, self.started = servers, stop, started
        self.ms: list[float] = []
        self.failed: list[str] = []

    def run(self) -> None:
        n = 0
        while not self.stop_event.wait(1.0):
            n += 1
            server = self.servers[n % len(self.servers)]
            if not server.ready:
                continue  # killed on purpose, or starting again
            started = time.monotonic()
            try:
                # A new connection each time: a kept-alive one idle past uvicorn's 5 s
                # keep-alive can be closed by the server just as the next probe is sent, which
                # says nothing about the server's health (the likely cause of 3
                # ConnectionErrors in 233 probes in a run that kept no messages).
                ok = (
                    requests.get(
                        f"{server.base}/healthz", timeout=30, headers={"Connection": "close"}
                    ).status_code
                    == 200
                )
            except requests.RequestException as exc:
                if server.ready:
                    self.failed.append(
                        f"healthz: {type(exc).__name__} server {server.index} at "
                        f"{time.monotonic() - self.started:.0f} s: {str(exc)[-160:]}"
                    )
                continue
            if ok:
                self.ms.append((time.monotonic() - started) * 1000)
            else:
                self.failed.append("healthz: not 200")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--database-url",
        default=os.environ.get(
            "AGENTDESK_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server (as a role that may create databases); the bench makes and "
        "drops its own database there",
    )
    p.add_argument("--servers", type=int, default=3)
    p.add_argument(
        "--max-db-connections",
        type=int,
        default=20,
        help="each server's connection budget (agentdesk server "
        "--max-db-connections); default 20: 3 x 20 = 60 of PostgreSQL's 100",
    )
    p.add_argument("--desktops", type=int, default=200)
    p.add_argument(
        "--client-processes",
        type=int,
        default=4,
        help="processes the desktops are spread over (threads in one interpreter "
        "could not keep 200 desktops at their pace)",
    )
    p.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    p.add_argument(
        "--think",
        type=float,
        default=20.0,
        help="mean seconds between one desktop's actions (default 20: 200 desktops "
        "make ~10 actions/s, a busy team's pace)",
    )
    p.add_argument(
        "--ramp", type=float, default=30.0, help="desktops start spread over this many seconds"
    )
    p.add_argument("--tickets", type=int, default=500)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-kill", action="store_true", help="do not kill a server mid-run")
    p.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--desks", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker is not None:
        first, last = (int(x) for x in args.desks.split(":"))
        return run_worker(args.worker, first, last, args.out)

    admin_url = make_url(args.database_url)
    name = f"agentdesk_load_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    logdir = Path(f"/tmp/agentdesk-team-load-{os.getpid()}")
    logdir.mkdir()
    servers = [Server(url, logdir, i, args.max_db_connections) for i in range(args.servers)]
    workers: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    try:
        engine = make_engine(url)
        upgrade(engine)
        generate_demo(engine, seed=args.seed, tickets=args.tickets)
        engine.dispose()
        data = team_data(url)
        for server in servers:
            server.start()
        tokens: list[tuple[str, str]] = []
        for user in DEMO_USERS:
            with ApiClient(servers[0].base) as c:
                tokens.append((c.login(user.username, user.password).token, user.role.value))
        emit(
            scenario="team_load",
            event="start",
            desktops=args.desktops,
            servers=args.servers,
            client_processes=args.client_processes,
            duration_s=args.duration,
            think_s=args.think,
            tickets=args.tickets,
            open_tickets=len(data.tickets),
            max_db_connections_per_server=args.max_db_connections,
            intended_actions_per_s=round(args.desktops / args.think, 2),
        )
        started = time.monotonic()
        plan = logdir / "plan.json"
        plan.write_text(
            json.dumps(
                {
                    "servers": [s.base for s in servers],
                    "tokens": tokens,
                    "think": args.think,
                    "seed": args.seed,
                    "ramp": args.ramp,
                    "stop_at": started + args.duration,
                    "tickets": [str(t) for t in data.tickets],
                    "contacts": [(str(o), str(c)) for o, c in data.contacts],
                }
            )
        )
        bounds = [
            round(i * args.desktops / args.client_processes)
            for i in range(args.client_processes + 1)
        ]
        outs = [logdir / f"client-{i}.json" for i in range(args.client_processes)]
        for i in range(args.client_processes):
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--worker",
                        str(plan),
                        "--desks",
                        f"{bounds[i]}:{bounds[i + 1]}",
                        "--out",
                        str(outs[i]),
                    ],
                    cwd=ROOT,
                    stderr=(logdir / f"client-{i}.log").open("wb"),
                )
            )
        probe = HealthProbe(servers, stop, started)
        probe.start()
        rss: list[dict[str, Any]] = []
        max_connections = max_total = 0
        killed = False
        window = (0.0, 0.0)  # monotonic: the kill, and the victim answering again
        watcher = create_engine(admin_url, pool_size=1)
        while time.monotonic() - started < args.duration:
            elapsed = time.monotonic() - started
            if not killed and not args.no_kill and elapsed >= args.duration / 2:
                victim = servers[1 % len(servers)]
                victim.kill()
                emit(
                    scenario="team_load",
                    event="killed",
                    server=victim.index,
                    at_s=round(elapsed, 1),
                )
                time.sleep(2.0)
                victim.start()
                window = (started + elapsed, time.monotonic())
                emit(
                    scenario="team_load",
                    event="restarted",
                    server=victim.index,
                    at_s=round(time.monotonic() - started, 1),
                )
                killed = True
            with watcher.connect() as conn:
                n, total = conn.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE datname = :d), count(*) "
                        "FROM pg_stat_activity WHERE backend_type = 'client backend'"
                    ),
                    {"d": name},
                ).one()
            max_connections = max(max_connections, int(n))
            max_total = max(max_total, int(total))
            rss.append(
                {
                    "t_s": round(elapsed),
                    "rss_mib": [s.rss_mib() for s in servers],
                    "pg_connections": int(n),
                    "pg_connections_all_databases": int(total),
                }
            )
            time.sleep(min(2.0, max(0.5, args.duration / 300)))
        stop.set()
        for w in workers:
            w.wait(timeout=180)
        probe.join(timeout=40)
        watcher.dispose()
        stats = Stats()
        seen: dict[int, list[tuple[float, int]]] = {}
        stuck = 0
        for out in outs:
            part = json.loads(out.read_text())
            stats.errors += part["errors"]
            stats.offline += part["offline"]
            stats.failovers += part["failovers"]
            stats.failover_log += [(t, i, why) for t, i, why in part["failover_log"]]
            stats.push_ms += part["push_ms"]
            stats.pushes += [tuple(x) for x in part["pushes"]]
            for client, acked in part["acknowledged"].items():
                stats.acknowledged[client] = {int(k): tuple(v) for k, v in acked.items()}
            for key, n in part["counts"].items():
                stats.counts[key] = stats.counts.get(key, 0) + n
            seen.update({int(k): [tuple(x) for x in v] for k, v in part["seen"].items()})
            stuck += part["stuck"]
        stats.errors += probe.failed
        outside = [
            (round(t - started, 1), i, why)
            for t, i, why in stats.failover_log
            if not window[0] <= t <= window[1]
        ]
        emit(
            scenario="team_load",
            event="failovers",
            total=len(stats.failover_log),
            while_the_victim_was_down=len(stats.failover_log) - len(outside),
            from_a_live_server=len(outside),
            live_samples=outside[:20],
        )
        report(
            url,
            stats,
            seen,
            rss,
            max_connections,
            max_total,
            time.monotonic() - started,
            probe.ms,
            args,
            stuck,
        )
        return 0 if not stats.errors else 1
    finally:
        stop.set()
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        for server in servers:
            server.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def error_kinds(errors: list[str]) -> dict[str, int]:
    """Errors counted by request and status ("pull: 503 unavailable")."""
    kinds: dict[str, int] = {}
    for error in errors:
        kind = " ".join(error.split()[:3])
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def report(
    url: str,
    stats: Stats,
    desks_seen: dict[int, list[tuple[float, int]]],
    rss: list[dict[str, Any]],
    max_connections: int,
    max_total: int,
    seconds: float,
    healthz_ms: list[float],
    args: argparse.Namespace,
    stuck: int,
) -> None:
    # Acknowledged mutations: every one has exactly one record, and every applied note, reply,
    # new ticket and stopped timer carries its marker exactly once in the database.
    engine = make_engine(url)
    lost = twice = applied = 0
    with engine.connect() as conn:
        records = {
            (str(r.client_id), r.mutation_id): r.status
            for r in conn.execute(
                text("SELECT client_id, mutation_id, status FROM mutation_records")
            )
        }
        bodies = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT body FROM ticket_events WHERE body LIKE 'load %' "
                    "UNION ALL SELECT subject FROM tickets WHERE subject LIKE 'load %' "
                    "UNION ALL SELECT note FROM time_entries WHERE note LIKE 'load %'"
                )
            )
        ]
    engine.dispose()
    markers: dict[str, int] = {}
    for body in bodies:
        key = body.split(":")[0]
        markers[key] = markers.get(key, 0) + 1
    for client, acked in stats.acknowledged.items():
        for mid, (status, mutation) in acked.items():
            if records.get((str(uuid.UUID(client)), mid)) is None:
                lost += 1
            if status == "applied":
                applied += 1
                if mutation in MARKED:
                    n = markers.get(f"load {client}/{mid}", 0)
                    if n == 0:
                        lost += 1
                    elif n > 1:
                        twice += 1
    # Propagation: from a push's answer to each other desktop's pull reaching its version.
    seen = {i: ([t for t, _ in v], [c for _, c in v]) for i, v in desks_seen.items()}
    propagation: list[float] = []
    for version, at, origin in stats.pushes:
        for index, (times, cursors) in seen.items():
            if index == origin:
                continue
            # the first pull after the push that reached the version
            start = bisect.bisect_left(times, at)
            for i in range(start, len(times)):
                if cursors[i] >= version:
                    propagation.append((times[i] - at) * 1000)
                    break
    kinds = error_kinds(stats.errors)
    push_p50 = pct(stats.push_ms, 0.5)
    health_p50 = pct(healthz_ms, 0.5)
    emit(
        scenario="team_load",
        event="result",
        seconds=round(seconds),
        errors=len(stats.errors),
        error_kinds=kinds,
        error_samples=stats.errors[:5],
        desktops_stuck_at_end=stuck,
        intended_actions_per_s=round(args.desktops / args.think, 2),
        achieved_pushes_per_s=round(len(stats.push_ms) / args.duration, 2),
        healthz_ms_p50=health_p50,
        healthz_ms_p99=pct(healthz_ms, 0.99),
        healthz_samples=len(healthz_ms),
        push_p50_to_healthz_p50=(
            round(push_p50 / health_p50, 1) if push_p50 and health_p50 else None
        ),
        max_pg_connections_all_databases=max_total,
        unreachable_retries=stats.offline,
        failovers=stats.failovers,
        pushes=len(stats.push_ms),
        mutations=stats.counts,
        acknowledged_applied=applied,
        lost=lost,
        applied_twice=twice,
        push_ms_p50=pct(stats.push_ms, 0.5),
        push_ms_p99=pct(stats.push_ms, 0.99),
        propagation_ms_p50=pct(propagation, 0.5),
        propagation_ms_p99=pct(propagation, 0.99),
        propagation_samples=len(propagation),
        max_pg_connections=max_connections,
    )
    for sample in rss:
        emit(scenario="team_load", event="sample", **sample)
    firsts = [s["rss_mib"] for s in rss[:2]]
    lasts = [s["rss_mib"] for s in rss[-2:]]
    emit(
        scenario="team_load",
        event="rss_summary",
        first=firsts,
        last=lasts,
        median_per_server=[
            statistics.median([s["rss_mib"][i] for s in rss if s["rss_mib"][i] is not None] or [0])
            for i in range(len(rss[0]["rss_mib"]) if rss else 0)
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
