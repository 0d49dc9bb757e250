"""Benchmark of the consultant read side and statement exports (issue 11).

A customer with a year of 1-on-1 work: 20,000 time entries (four consultants, about 55 a day,
some extra-engineer time, some on general support), 40 hour blocks and 300 appointments, in a
SQLite file (the desktop replica's engine). Prints one JSON line per measurement: the median,
min and max milliseconds over ``runs`` runs, and the ratio against the baseline measured in the
same run: a bare ``SELECT`` of the same rows (the statement's entries, blocks and appointments;
the timesheet's week of one person's entries), i.e. what reading the data costs before any rule
runs. The machine is shared, so absolute numbers wander; the ratio is the figure to compare.

Targets (issue 11): statement CSV <= 300 ms, PDF <= 2 s, my week's timesheet <= 50 ms. The
statement files are made as the server, the desktop and the CLI make them
(:func:`agentdesk.exports.statement_file.statement_file`), in a process whose cycle collector is
on, as the server's and the CLI's are (the desktop paces it on its GUI thread instead).

Two figures without a target say where a statement's time goes: ``statement_read_year`` is the
statement's own read of the ledger (the nine columns it uses, no per-value result processing,
straight into the policy's work items), against the same bare ``SELECT`` (which reads every
column of the rows, typed, and the appointments too); ``statement_csv_month`` is December alone,
whose opening balance replays the year before it (the blocks overlap all year).

Run: ``python bench/consultant_bench.py [--runs N] [--db PATH]`` (about a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

try:
    import agentdesk  # noqa: F401
except ImportError:  # a checkout without the editable install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select

from agentdesk.exports.statement_file import statement_file
from agentdesk.models import (
    Appointment,
    Calendar,
    HourBlock,
    Organisation,
    Plan,
    Role,
    Tenant,
    TimeEntry,
    User,
)
from agentdesk.models.db import make_engine, make_session_factory
from agentdesk.models.migrate import upgrade
from agentdesk.policy.plans import seed_plans
from agentdesk.queries.ledger import day_bounds, load_ledger
from agentdesk.queries.timesheet import read_timesheet, week_of

TZ = "America/New_York"
NY = ZoneInfo(TZ)
YEAR_START = date(2026, 1, 1)
YEAR_END = date(2026, 12, 31)
NOW = datetime(2027, 1, 5, 12, 0, tzinfo=UTC)


def build(path: Path, entries: int, blocks: int, appointments: int) -> dict[str, uuid.UUID]:
    engine = make_engine(f"sqlite+pysqlite:///{path}")
    upgrade(engine)
    rnd = random.Random(11)
    tenant = uuid.uuid4()
    ids: dict[str, uuid.UUID] = {"tenant": tenant}
    with make_session_factory(engine)() as s, s.begin():
        s.add(Tenant(id=tenant, name="Bench", timezone=TZ))
        s.flush()
        cal = Calendar(tenant_id=tenant, name="NY", data={"tz": TZ, "hours": {}, "holidays": []})
        s.add(cal)
        s.flush()
        plan = next(iter(seed_plans()))
        plan_row = Plan(tenant_id=tenant, calendar_id=cal.id, **Plan.columns_from_policy(plan))
        s.add(plan_row)
        s.flush()
        org = Organisation(tenant_id=tenant, name="Globex", plan_id=plan_row.id)
        s.add(org)
        people = [
            User(
                tenant_id=tenant,
                username=f"c{i}",
                display_name=f"Consultant {i}",
                role=Role.CONSULTANT,
            )
            for i in range(4)
        ]
        s.add_all(people)
        s.flush()
        ids.update(org=org.id, me=people[0].id)
        first = datetime.combine(YEAR_START, datetime.min.time(), tzinfo=NY).astimezone(UTC)
        block_rows = [
            dict(
                id=uuid.uuid4(),
                tenant_id=tenant,
                organisation_id=org.id,
                purchased_at=first + timedelta(days=9 * i, hours=10),
                minutes=60 * rnd.choice((10, 20, 40)),
                price=None,
                note="",
                version=0,
                deleted=False,
            )
            for i in range(blocks)
        ]
        s.execute(insert(HourBlock), block_rows)
        per_day = entries // 365 + 1
        rows: list[dict[str, Any]] = []
        for n in range(entries):
            day = n // per_day
            slot = n % per_day
            start = first + timedelta(days=day, hours=8, minutes=10 * slot + rnd.randint(0, 4))
            rows.append(
                dict(
                    id=uuid.uuid4(),
                    tenant_id=tenant,
                    organisation_id=org.id,
                    person_id=people[slot % 4].id,
                    ticket_id=None,
                    appointment_id=None,
                    kind="unscheduled",
                    started_at=start,
                    ended_at=start + timedelta(minutes=rnd.randint(2, 9)),
                    billable=slot % 17 != 0,
                    extra_engineer=slot % 23 == 0,
                    voids_id=None,
                    note="work" if slot % 5 else "",
                    source="timer",
                    created_at=start,
                    version=0,
                    deleted=False,
                )
            )
        for chunk in range(0, len(rows), 2000):
            s.execute(insert(TimeEntry), rows[chunk : chunk + 2000])
        appts = []
        for i in range(appointments):
            start = first + timedelta(days=int(i * 365 / appointments), hours=15)
            appts.append(
                dict(
                    id=uuid.uuid4(),
                    tenant_id=tenant,
                    organisation_id=org.id,
                    consultant_id=people[i % 4].id,
                    ticket_id=None,
                    starts_at=start,
                    ends_at=start + timedelta(hours=1),
                    status="scheduled",
                    cancelled_at=None,
                    note="",
                    version=0,
                    deleted=False,
                )
            )
        s.execute(insert(Appointment), appts)
    engine.dispose()
    return ids


def timed_pair(
    fn: Callable[[], object], base: Callable[[], object], runs: int
) -> tuple[list[float], list[float]]:
    """Milliseconds of ``fn`` and of its baseline, run alternately so both see the same load
    (the machine is shared: the ratio of the two is what compares across runs)."""
    fn()
    base()  # warm caches (SQLite pages, imports, fonts)
    subject, baseline = [], []
    for _ in range(runs):
        began = time.perf_counter()
        base()
        baseline.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        fn()
        subject.append((time.perf_counter() - began) * 1000)
    return subject, baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.sqlite3"
        path.unlink(missing_ok=True)
        ids = build(path, args.entries, 40, 300)
        engine = make_engine(f"sqlite+pysqlite:///{path}")
        sessions = make_session_factory(engine, write=False)
        opens, closes = day_bounds(YEAR_START, YEAR_END, TZ)
        week = week_of(date(2026, 10, 14))
        w_opens, w_closes = day_bounds(*week, TZ)

        def bare_year() -> object:
            with sessions() as s:
                a = s.execute(
                    select(TimeEntry.__table__).where(
                        TimeEntry.organisation_id == ids["org"],
                        TimeEntry.started_at < closes,
                        TimeEntry.ended_at >= opens - timedelta(days=92),
                    )
                ).all()
                b = s.execute(
                    select(HourBlock.__table__).where(HourBlock.organisation_id == ids["org"])
                ).all()
                c = s.execute(
                    select(Appointment.__table__).where(Appointment.organisation_id == ids["org"])
                ).all()
                return len(a) + len(b) + len(c)

        def bare_week() -> object:
            with sessions() as s:
                return len(
                    s.execute(
                        select(TimeEntry.__table__).where(
                            TimeEntry.person_id == ids["me"],
                            TimeEntry.started_at < w_closes,
                            TimeEntry.ended_at >= w_opens,
                        )
                    ).all()
                )

        def statement_csv() -> object:
            with sessions() as s:
                return statement_file(s, ids["org"], YEAR_START, YEAR_END, "csv", now=NOW).billed

        def statement_read() -> object:
            with sessions() as s:
                return len(load_ledger(s, ids["org"], opens, closes).items)

        def statement_csv_month() -> object:
            with sessions() as s:
                made = statement_file(s, ids["org"], date(2026, 12, 1), YEAR_END, "csv", now=NOW)
            return made.billed

        def statement_pdf() -> object:
            with sessions() as s:
                return statement_file(s, ids["org"], YEAR_START, YEAR_END, "pdf", now=NOW).billed

        def timesheet() -> object:
            with sessions() as s:
                return read_timesheet(s, ids["tenant"], ids["me"], *week).billed

        meta = {
            "python": platform.python_version(),
            "entries": args.entries,
            "blocks": 40,
            "appointments": 300,
            "runs": args.runs,
            "load_average": round(os.getloadavg()[0], 1),
            "cpus": os.cpu_count(),
        }
        measurements: tuple[tuple[str, Callable[[], object], Callable[[], object], int | None], ...]
        measurements = (
            ("statement_csv_year", statement_csv, bare_year, 300),
            ("statement_pdf_year", statement_pdf, bare_year, 2000),
            ("timesheet_my_week", timesheet, bare_week, 50),
            ("statement_read_year", statement_read, bare_year, None),
            ("statement_csv_month", statement_csv_month, bare_year, None),
        )
        for name, fn, base, target in measurements:
            times, base_times = timed_pair(fn, base, args.runs)
            median, base_median = statistics.median(times), statistics.median(base_times)
            print(
                json.dumps(
                    {
                        "bench": name,
                        "median_ms": round(median, 1),
                        "min_ms": round(min(times), 1),
                        "max_ms": round(max(times), 1),
                        "bare_select_median_ms": round(base_median, 1),
                        "ratio_to_bare_select": round(median / base_median, 1),
                        "target_ms": target,
                        **meta,
                    }
                ),
                flush=True,
            )
        engine.dispose()


if __name__ == "__main__":
    main()
