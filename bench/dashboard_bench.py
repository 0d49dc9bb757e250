"""Benchmark of the team lead's dashboard (``agentdesk.queries.dashboard`` and
``agentdesk.ui.dashboard``) on a replica with 100,000 open tickets and a year of closed ones.

Builds a temporary SQLite replica with the queue bench's generator (100,000 open tickets) plus
a year of resolved and closed tickets (one per open ticket), stores every ticket's SLA instants
with :func:`agentdesk.policy.sla.response_instants` as the mutators do, then prints one JSON line
per figure: the median over repeated runs in milliseconds, with a baseline measured in the same
run and the ratio against it (the machine is shared: absolute numbers wander, ratios less so):

* ``queue_first_load`` (baseline): the queue model's key query for the same replica (what the
  queue does on its first load, ``fetch_keys``), on this thread.
* ``dashboard_full``: every figure (``compute``, 30-day range) on one thread in one snapshot:
  the reference the tests compare the view's figures with.
* ``dashboard_live_start``: the same, as the view computes it: in a pinned snapshot that the
  next refresh starts from (:mod:`agentdesk.queries.dashboard_live`), the open queue's and the
  first responses' reads on two threads in twin snapshots (:mod:`agentdesk.queries.snapshot`);
  ``dashboard_live_start_one_thread``, measured alternately with it, is the same read on one
  thread (no twin), its baseline.
* ``dashboard_incremental``: after a pull of 1,000 changed tickets (drawn afresh each time, each
  re-triaged to a random tier, with their new instants, written as a pull writes them) and 10
  seconds on the clock (the 30-day range rolls with it), the refresh the view runs for it
  (:func:`~agentdesk.queries.dashboard_live.advance` with the pull's ticket ids; the 1-on-1
  section is carried over). Checked equal to a full
  computation afterwards. ``dashboard_incremental_same_clock``: the same with the clock still.
* ``gui_stall``: the longest gap between two runs of a 5 ms GUI-thread timer while a real
  :class:`DashboardView` recomputes everything on the worker thread (``max_ms``: the stall).

Every figure is measured in the desktop's collector regime (:class:`CollectorPacing`, started
first, as the app does): automatic collection off, the GUI thread's timer collecting between runs.

Run: ``QT_QPA_PLATFORM=offscreen python bench/dashboard_bench.py`` (a few minutes on 2 cores,
most of it generating the replica; ``DASHBOARD_BENCH_OPEN=20000`` for a smaller replica).
``DASHBOARD_BENCH_KEEP=DIR`` keeps the generated replica in ``DIR`` and later runs start from a
copy of it (the runs change tickets), so comparing two versions of the code does not pay for
the generation twice; delete ``DIR`` after a change to the generator or the schema.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast
from unittest.mock import patch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import PySide6  # noqa: E402
from PySide6.QtCore import (  # noqa: E402
    QElapsedTimer,
    QEventLoop,
    QSettings,
    QTimer,
    qInstallMessageHandler,
)
from PySide6.QtWidgets import QApplication  # noqa: E402
from sqlalchemy import Table, bindparam, select, update  # noqa: E402

from agentdesk.models import Ticket, TicketStatus  # noqa: E402
from agentdesk.models.base import new_id  # noqa: E402
from agentdesk.models.db import sqlite_url  # noqa: E402
from agentdesk.policy.calendar import BusinessCalendar  # noqa: E402
from agentdesk.policy.sla import response_business_time, response_instants  # noqa: E402
from agentdesk.queries import dashboard as figures  # noqa: E402
from agentdesk.queries import dashboard_live as live  # noqa: E402
from agentdesk.queries.snapshot import Pin, pin_twins  # noqa: E402
from agentdesk.sync.replica import Replica  # noqa: E402
from agentdesk.ui.dashboard import DashboardView  # noqa: E402
from agentdesk.ui.gc_pacing import CollectorPacing  # noqa: E402
from agentdesk.ui.queue.model import QueueQuery, fetch_keys  # noqa: E402
from agentdesk.ui.shell.sync_bridge import ReplicaChange  # noqa: E402
from agentdesk.ui.sla_display import SlaClock  # noqa: E402
from bench._common import ms, quiet, timed  # noqa: E402
from bench._common import report as _report  # noqa: E402
from tests.ui.queue_fixtures import OFFICE, QueueData, generate  # noqa: E402

N_OPEN = int(os.environ.get("DASHBOARD_BENCH_OPEN", "100000"))
TICKETS = cast(Table, Ticket.__table__)


report = partial(_report, "dashboard")


def add_closed_year(data: QueueData, rng: random.Random) -> None:
    """One resolved or closed ticket per open one, spread over the past year."""
    engine = data.engine()
    rows = []
    template = data.tickets[0]
    for _ in range(N_OPEN):
        oid = data.org_ids[rng.randrange(len(data.org_ids))]
        arrived = data.now - timedelta(days=365 * rng.random(), seconds=rng.randrange(86400))
        answered = arrived + timedelta(minutes=rng.randrange(5, 2000))
        resolved = answered + timedelta(hours=rng.randrange(1, 200))
        if resolved >= data.now:
            # Shifted back whole, not clamped to now: a pile of answers at exactly `now` would
            # all enter the 30-day range at the first refresh (its end is exclusive).
            back = resolved - data.now + timedelta(seconds=rng.randrange(60, 86400))
            arrived, answered, resolved = arrived - back, answered - back, resolved - back
        tier = rng.choice((1, 2, 3, 3, 4))
        rows.append(
            {
                **template,
                "id": new_id(),
                "organisation_id": oid,
                "requester_id": data.contact_ids[oid][0],
                "stated_urgency": tier,
                "tier": tier,
                "urgency": tier,
                "status": rng.choice((TicketStatus.RESOLVED, TicketStatus.CLOSED)),
                "assignee_id": data.user_ids[rng.randrange(len(data.user_ids))],
                "arrived_at": arrived,
                "first_response_at": answered,
                "resolved_at": resolved,
                "updated_at": arrived,
            }
        )
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(TICKETS.insert(), rows[start : start + 5000])
    engine.dispose()


def spread_answers_at_now(data: QueueData, rng: random.Random) -> None:
    """The queue fixtures clamp an open ticket's first answer to ``now``: a few thousand answers
    at exactly that instant, which no team has and which the first incremental refresh saw enter
    its range all at once (600-750 ms instead of ~90). Each is moved to a random instant between
    its arrival and now."""
    engine = data.engine()
    with engine.connect() as conn:
        rows = conn.execute(
            select(TICKETS.c.id, TICKETS.c.arrived_at).where(
                TICKETS.c.first_response_at >= data.now
            )
        ).all()
    moved = [
        {"tid": tid, "answered": arrived + (data.now - arrived) * rng.uniform(0.05, 0.95)}
        for tid, arrived in rows
    ]
    if moved:
        with engine.begin() as conn:
            conn.execute(
                update(TICKETS)
                .where(TICKETS.c.id == bindparam("tid"))
                .values(first_response_at=bindparam("answered")),
                moved,
            )
    engine.dispose()


def change_tickets(data: QueueData, rng: random.Random) -> list[uuid.UUID]:
    """A pull's worth of changes: 1,000 tickets drawn afresh, each re-triaged to a tier of its
    own, with their new SLA instants. (The bench used to re-triage the same 1,000 tickets to one
    shared tier each time, which flattered the later pulls. The first refresh's 600-750 ms was
    not the mixed change but the generated answers piled at ``now``: see
    :func:`spread_answers_at_now`.)"""
    ids = [t["id"] for t in rng.sample(data.tickets, 1000)]
    engine = data.engine()
    with engine.begin() as conn:
        conn.execute(
            update(TICKETS)
            .where(TICKETS.c.id == bindparam("tid"))
            .values(tier=bindparam("new_tier"), urgency=bindparam("new_tier")),
            [{"tid": tid, "new_tier": rng.randint(1, 4)} for tid in ids],
        )
    engine.dispose()
    store_instants(data, TICKETS.c.id.in_(ids))
    return ids


def store_instants(data: QueueData, where: Any = None) -> int:
    """The instants the mutators would store, for every ticket (or those ``where`` selects)."""
    engine = data.engine()
    waits: dict[uuid.UUID, list[Any]] = {}
    for w in data.waits:
        waits.setdefault(w["ticket_id"], []).append((w["started_at"], w["ended_at"]))
    plans = {oid: data.policy_plan(oid) for oid in data.org_ids}
    stmt = select(
        TICKETS.c.id,
        TICKETS.c.organisation_id,
        TICKETS.c.arrived_at,
        TICKETS.c.urgency,
        TICKETS.c.first_response_at,
    )
    if where is not None:
        stmt = stmt.where(where)
    updates = []
    with engine.connect() as conn:
        for tid, oid, arrived, urgency, responded in conn.execute(stmt):
            plan, cal = plans[oid]
            got = response_instants(arrived, urgency, plan, cal, waits.get(tid, ()), responded)
            due, risk = got if got is not None else (None, None)
            took = None
            if due is not None and responded is not None:
                took = int(
                    response_business_time(
                        arrived, responded, due, urgency, plan, cal
                    ).total_seconds()
                )
            updates.append({"tid": tid, "due": due, "risk": risk, "took": took})
    with engine.begin() as conn:
        conn.execute(
            update(TICKETS)
            .where(TICKETS.c.id == bindparam("tid"))
            .values(
                sla_due_at=bindparam("due"),
                sla_risk_at=bindparam("risk"),
                first_response_business_s=bindparam("took"),
            ),
            updates,
        )
    engine.dispose()
    return len(updates)


def prepared(target: Path, rng: random.Random) -> tuple[QueueData, int]:
    """The bench's replica at ``target``: generated, or copied from ``DASHBOARD_BENCH_KEEP``."""
    kept = os.environ.get("DASHBOARD_BENCH_KEEP")
    # "-v2": generated since the answers no longer pile at `now` (an older copy would not do).
    keep = Path(kept) / f"open-{N_OPEN}-v2" if kept else None
    if keep is not None and (keep / "data.pickle").exists():
        shutil.copyfile(keep / "replica.sqlite3", target)
        with (keep / "data.pickle").open("rb") as f:
            data, stored = pickle.load(f)
        return replace(data, path=target, url=sqlite_url(target)), stored
    data = generate(target, N_OPEN, open_only=True)
    spread_answers_at_now(data, rng)
    add_closed_year(data, rng)
    stored = store_instants(data)
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, keep / "replica.sqlite3")
        with (keep / "data.pickle").open("wb") as f:
            pickle.dump((data, stored), f)
    return data, stored


def main() -> None:
    qInstallMessageHandler(quiet)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    # The desktop's collector regime, as the app starts it before the first window: automatic
    # collection off on every thread, the GUI thread's timer collecting (or freezing bursts)
    # between turns, and its switch interval. A worker's dashboard read in the app never runs
    # a collection pass inline; in a plain process it ran gen-0/1 passes over its new objects
    # (10-19 ms a start) and, every few starts, a full pass over the replica's heap (~300 ms),
    # which the app's pacing freezes instead (agentdesk/ui/gc_pacing.py; docs/performance.md).
    # Qt events are processed between runs, so its timers run where the app's would.
    pacing = CollectorPacing(app)
    pacing.start()
    settle = app.processEvents
    rng = random.Random(12)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="agentdesk-dashboard-bench-") as tmp:
        data, stored = prepared(Path(tmp) / "replica.sqlite3", rng)
        rng = random.Random(1212)  # the same changes whether generated or kept
        replica = Replica(data.path)
        print(
            json.dumps(
                {
                    "bench": "dashboard",
                    "metric": "environment",
                    "open_tickets": N_OPEN,
                    "closed_tickets": N_OPEN,
                    "instants_stored": stored,
                    "generate_s": round(time.perf_counter() - started, 1),
                    "python": platform.python_version(),
                    "pyside6": PySide6.__version__,
                    "sqlite": sqlite3.sqlite_version,
                    "cpus": os.cpu_count(),
                }
            ),
            flush=True,
        )
        at = data.now
        start, end = at - timedelta(days=30), at

        # -- baseline: the queue's own first load of the same replica ---------------------
        clock = SlaClock(BusinessCalendar.from_dict(OFFICE))
        with replica.engine.connect() as conn:
            clock.load(conn)
            fetch_keys(conn, clock, QueueQuery(), at)
            baseline = report(
                "queue_first_load",
                timed(lambda: fetch_keys(conn, clock, QueueQuery(), at), 5, between=settle),
            )

        # -- the whole dashboard ----------------------------------------------------------
        def full() -> figures.Dashboard:
            with replica.session() as s:
                return figures.compute(s, at, start, end)

        board = full()
        assert board.open is not None
        report(
            "dashboard_full",
            timed(full, 5, between=settle),
            baseline="queue_first_load",
            baseline_ms=baseline,
            open=board.open.total.value,
            target_ms=200,
        )

        # -- the same, kept live: computed in a pinned snapshot (the next refresh's "before"),
        # two threads in twin snapshots, alternating with the same on one thread.
        def one_snapshot(engine: Any, checkpoint: bool = False) -> tuple[Pin, None]:
            return Pin(engine, checkpoint=checkpoint), None

        kept = live.start(replica.engine, at, start, end)
        runs: dict[str, list[float]] = {"two": [], "one": []}
        for i in range(10):
            for how in ("two", "one") if i % 2 == 0 else ("one", "two"):
                kept.close()
                settle()
                twins = pin_twins if how == "two" else one_snapshot
                with patch.object(live, "pin_twins", twins):
                    began = time.perf_counter()
                    kept = live.start(replica.engine, at, start, end)
                runs[how].append(time.perf_counter() - began)
                assert kept.dashboard == board
        one_thread = report(
            "dashboard_live_start_one_thread",
            runs["one"],
            baseline="queue_first_load",
            baseline_ms=baseline,
            note="as dashboard_live_start, its two large reads one after the other",
        )
        report(
            "dashboard_live_start",
            runs["two"],
            baseline="dashboard_live_start_one_thread",
            baseline_ms=one_thread,
            target_ms=200,
            queue_first_load_ms=round(baseline, 1),
            note="every figure plus the pinned snapshot and a passive WAL checkpoint",
        )

        # -- incremental refresh after a pull of 1,000 changed tickets --------------------
        for label, step in (("dashboard_incremental", 10), ("dashboard_incremental_same_clock", 0)):
            samples = []
            for _ in range(5):
                ids = change_tickets(data, rng)
                at += timedelta(seconds=step)  # pulls come seconds apart: the clock moves too
                settle()
                start, end = at - timedelta(days=30), at
                began = time.perf_counter()
                kept = live.advance(kept, at, start, end, ids)
                samples.append(time.perf_counter() - began)
                assert kept.moved
            with replica.session() as s:
                assert figures.compute(s, at, start, end) == kept.dashboard
            report(
                label,
                samples,
                baseline="queue_first_load",
                baseline_ms=baseline,
                changed=1000,
                clock_step_s=step,
                target_ms=100,
            )
        kept.close()

        # -- the GUI thread while the view recomputes on its worker -----------------------
        settings = QSettings(str(Path(tmp) / "bench.ini"), QSettings.Format.IniFormat)
        view = DashboardView(replica, settings, username="lead", now=lambda: at)
        view.resize(1500, 950)
        view.show()
        gaps: list[float] = []
        elapsed = QElapsedTimer()
        ticker = QTimer()
        ticker.setInterval(5)

        def tick() -> None:
            gaps.append(elapsed.nsecsElapsed() / 1e9)
            elapsed.restart()

        ticker.timeout.connect(tick)

        # The application's own event loop (the pacing runs since the start): spinning
        # processEvents() + sleep returned into Python twice per turn, each a wait for the
        # interpreter lock that app.exec() does not have (see bench/gui_latency_bench.py).

        def stall_of(trigger: Callable[[], None]) -> float:
            loop = QEventLoop()
            view.refreshed.connect(loop.quit)
            QTimer.singleShot(60_000, loop.quit)  # a bench never hangs
            elapsed.start()
            gaps.clear()
            ticker.start()
            trigger()
            loop.exec()
            ticker.stop()
            view.refreshed.disconnect(loop.quit)
            return max(gaps, default=0.0)

        stalls = [stall_of(view.refresh) for _ in range(5)]
        report(
            "gui_stall",
            stalls,
            first_ms=ms(stalls[0]),
            target_ms=50,
            note="longest gap of a 5 ms GUI timer while the view recomputes everything (the "
            "first run fills the empty widgets); includes applying the result on the GUI thread",
        )
        stalls = []
        for _ in range(5):
            ids = change_tickets(data, rng)
            pulled = ReplicaChange(tables=frozenset({"tickets"}), ticket_ids=frozenset(ids))
            at += timedelta(seconds=10)
            stalls.append(stall_of(partial(view.changes_arrived, pulled)))
        report(
            "gui_stall_incremental",
            stalls,
            target_ms=50,
            note="the same while the view moves the figures after a pull of 1,000 tickets",
        )
        pacing.stop()
        view.stop()
        view.close()
        replica.close()


if __name__ == "__main__":
    main()
