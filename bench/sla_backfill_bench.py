"""The SLA backfill run at upgrade: stored instants for tickets from before they were stored.

A demo team with ``--tickets`` tickets (SQLite file) whose stored SLA instants are all NULL, as
after the upgrade that added the columns; each run restores that copy and times
``agentdesk.server.sla_backfill.backfill_sla`` (every ticket recomputed with the one rule and
stamped with a version, in batches of 500). Baseline, in the same run on the same copy: one ORM
read of the same tickets and their waiting periods (the I/O floor a backfill cannot beat). The
machine is shared: compare the ratio, not the absolute numbers.

Run: ``python bench/sla_backfill_bench.py --tickets 5000`` (about a minute).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

try:
    import agentdesk  # noqa: F401
except ImportError:  # a checkout without the editable install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from agentdesk.models import Ticket, WaitingPeriod
from agentdesk.models.db import make_engine, sqlite_url
from agentdesk.models.migrate import upgrade
from agentdesk.server.demo import generate_demo
from agentdesk.server.sla_backfill import backfill_sla


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="sla-backfill-bench-"))
    template = scratch / "template.sqlite3"
    engine = make_engine(sqlite_url(template))
    upgrade(engine)
    generate_demo(engine, tickets=args.tickets, seed=11)
    with engine.begin() as conn:
        conn.execute(
            update(Ticket).values(sla_due_at=None, sla_risk_at=None, first_response_business_s=None)
        )
    engine.dispose()
    backfill_s: list[float] = []
    read_s: list[float] = []
    changed = 0
    try:
        for _ in range(args.runs):
            copy = scratch / "run.sqlite3"
            shutil.copyfile(template, copy)
            engine = make_engine(sqlite_url(copy))
            started = time.perf_counter()
            with Session(engine) as session:
                tickets = session.scalars(select(Ticket)).all()
                session.scalars(select(WaitingPeriod)).all()
                assert tickets
            read_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            changed = backfill_sla(engine)
            backfill_s.append(time.perf_counter() - started)
            engine.dispose()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    backfill, read = statistics.median(backfill_s), statistics.median(read_s)
    print(
        json.dumps(
            {
                "bench": "sla_backfill",
                "tickets": args.tickets,
                "changed": changed,
                "backfill_s": round(backfill, 3),
                "tickets_per_s": round(changed / backfill),
                "baseline_read_s": round(read, 3),
                "ratio": round(backfill / read, 1),
                "runs": args.runs,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
