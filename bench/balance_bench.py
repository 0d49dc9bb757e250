"""The timer's prepaid balance and today's totals on five years of ledger plus one hostile entry.

A customer with 20,000 time entries over five years (about 11 a day), an hour block bought every
60 days, and - in the "hostile" rows - one entry from 0001-01-01 to now (what an unbounded
``add_time_entry`` let a tenant member push before issue 9). Measures, in one process on a
SQLite file:

* ``worker``: ``queries.balances.prepaid_figures`` + today's ``clipped_work``/``today_totals``,
  as the timer's background operation runs them (median of ``runs``);
* ``gui_stall``: the GUI thread's longest gap between 1 ms timer ticks while that operation runs
  on Qt's thread pool (target: no stall over 16 ms, one frame);
* ``idle/gui_stall``: the same loop while the worker only sleeps (the shared machine's noise);
* baseline: the same figures for the same ledger without the hostile entry, measured in the same
  run (the machine is shared: compare the ratio, not the absolute numbers).

Run: ``QT_QPA_PLATFORM=offscreen python bench/balance_bench.py`` (about half a minute).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
try:
    import agentdesk  # noqa: F401
except ImportError:  # a checkout without the editable install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
from PySide6.QtWidgets import QApplication
from sqlalchemy import insert

from agentdesk.models import (
    Base,
    HourBlock,
    Organisation,
    Plan,
    Role,
    Tenant,
    TimeEntry,
    TimeKind,
    User,
)
from agentdesk.models.db import make_engine, make_session_factory, session_scope, sqlite_url
from agentdesk.policy.plans import seed_plans
from agentdesk.queries.balances import clipped_work, day_bounds, prepaid_figures, today_totals
from agentdesk.ui import background
from agentdesk.ui.gc_pacing import CollectorPacing

TZ = "America/New_York"
NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
ENTRIES = int(os.environ.get("BENCH_ENTRIES", 20_000))
YEARS = 5


def build(path: Path, hostile: bool) -> tuple[Any, uuid.UUID, uuid.UUID]:
    engine = make_engine(sqlite_url(path))
    Base.metadata.create_all(engine)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as s:
        tenant = Tenant(name="Bench", timezone=TZ)
        s.add(tenant)
        s.flush()
        plan = next(p for p in seed_plans() if p.key == "standard")
        plan_row = Plan(tenant_id=tenant.id, **Plan.columns_from_policy(plan))
        s.add(plan_row)
        person = User(tenant_id=tenant.id, username="c", display_name="C", role=Role.CONSULTANT)
        s.add(person)
        s.flush()
        org = Organisation(tenant_id=tenant.id, name="Globex", plan_id=plan_row.id)
        s.add(org)
        s.flush()
        tenant_id, org_id, person_id = tenant.id, org.id, person.id
    span = timedelta(days=365 * YEARS)
    first = NOW - span
    step = span / ENTRIES
    rows = []
    for i in range(ENTRIES):
        start = first + step * i
        rows.append(
            dict(
                id=uuid.uuid4(),
                tenant_id=tenant_id,
                organisation_id=org_id,
                person_id=person_id,
                kind=TimeKind.UNSCHEDULED,
                started_at=start,
                ended_at=start + timedelta(minutes=5 + i % 50),
                billable=True,
                extra_engineer=False,
                note="",
                source="manual",
                created_at=start,
                version=0,
                deleted=False,
            )
        )
    if hostile:
        rows.append(
            dict(
                rows[0],
                id=uuid.uuid4(),
                started_at=datetime(1, 1, 1, tzinfo=UTC),
                ended_at=NOW - timedelta(minutes=1),
            )
        )
    blocks = [
        dict(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            organisation_id=org_id,
            purchased_at=first + timedelta(days=60 * k),
            minutes=3000,
            recorded_by_id=person_id,
            note="",
            version=0,
            deleted=False,
        )
        for k in range(int(span.days / 60) + 1)
    ]
    with session_scope(sessions) as s:
        s.execute(insert(TimeEntry), rows)
        s.execute(insert(HourBlock), blocks)
    return sessions, org_id, person_id


def figures(sessions: Any, org_id: uuid.UUID, person: str) -> tuple[Any, Any]:
    day = NOW.astimezone(ZoneInfo(TZ)).date()
    since, until = day_bounds(day, TZ)
    with session_scope(sessions) as s:
        prepaid = prepaid_figures(s, org_id, None, person, TZ, NOW)
        items = clipped_work(s, org_id, since, until)
    return prepaid, today_totals(items, org_id, day, TZ, None, person, NOW)


def worker_ms(sessions: Any, org_id: uuid.UUID, person: str, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        began = time.perf_counter()
        figures(sessions, org_id, person)
        out.append((time.perf_counter() - began) * 1000)
    return out


def gui_stall_ms(
    app: QApplication, sessions: Any, org_id: uuid.UUID, person: str, runs: int, idle: bool = False
) -> dict[str, list[float]]:
    """The longest gap between GUI-thread ticks while each background run is in flight: with
    the collector paced as the desktop paces it (``ui/gc_pacing.py``: what was alive before the
    run is frozen, so no automatic full pass walks it) and, alternately in the same run, without
    (``unpaced``: every object in the process walked by each full pass)."""
    out: dict[str, list[float]] = {"gui_stall": [], "gui_stall_unpaced": []}
    for _ in range(runs):
        for paced in (False, True):
            pacing = CollectorPacing(app) if paced else None
            if pacing is not None:
                pacing.start()
            try:
                out["gui_stall" if paced else "gui_stall_unpaced"].append(
                    _one_stall(app, sessions, org_id, person, idle)
                )
            finally:
                if pacing is not None:
                    pacing.stop()
                    pacing.deleteLater()
    return out


def _one_stall(
    app: QApplication, sessions: Any, org_id: uuid.UUID, person: str, idle: bool
) -> float:
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]
    worst = [0]

    def tick(
        clock: QElapsedTimer = clock, last: list[int] = last, worst: list[int] = worst
    ) -> None:
        now = clock.elapsed()
        worst[0] = max(worst[0], now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(1)
    timer.timeout.connect(tick)
    timer.start()
    op = background.Operation(
        (lambda: time.sleep(0.5)) if idle else (lambda: figures(sessions, org_id, person))
    )
    # The application's own event loop, as ``app.exec()`` runs it: the GUI thread waits in
    # Qt's poll with the interpreter lock released and takes it only for the probe's tick.
    # (This bench used to spin ``processEvents()`` and ``time.sleep``: two returns into Python
    # per turn, each a wait for the lock of up to the switch interval while the worker held
    # it, which the application's loop does not have; see bench/gui_latency_bench.py.)
    loop = QEventLoop()
    op.succeeded.connect(loop.quit)
    op.failed.connect(loop.quit)
    QTimer.singleShot(120_000, loop.quit)  # a bench never hangs
    op.start()
    loop.exec()
    timer.stop()
    return float(worst[0])


def main() -> None:
    runs = 5
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, hostile in (("baseline", False), ("hostile", True)):
            sessions, org_id, person_id = build(Path(tmp) / f"{label}.sqlite3", hostile)
            person = str(person_id)
            figures(sessions, org_id, person)  # warm the caches, as a running app has them
            results[label] = {
                "worker": worker_ms(sessions, org_id, person, runs),
                **gui_stall_ms(app, sessions, org_id, person, runs),
            }
            if not hostile:  # the noise floor: the same loop while the worker only sleeps
                results["idle"] = gui_stall_ms(app, sessions, org_id, person, runs, idle=True)
    base = statistics.median(results["baseline"]["worker"])
    for label, rows in results.items():
        for what, values in rows.items():
            median = statistics.median(values)
            print(
                json.dumps(
                    {
                        "bench": f"prepaid_and_today/{label}/{what}",
                        "entries": ENTRIES,
                        "years": YEARS,
                        "runs": runs,
                        "median_ms": round(median, 2),
                        "max_ms": round(max(values), 2),
                        "ratio_to_baseline_worker": round(median / base, 2)
                        if what == "worker"
                        else None,
                    }
                )
            )


if __name__ == "__main__":
    main()
