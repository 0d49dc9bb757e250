"""Benchmark of the status bar's "my day" figures (``agentdesk.queries.agent_stats``) on a
replica of 100,000 tickets and 300,000 history events.

The figures are read on a worker after every pull that touches a ticket and once a minute, so
they must stay a few milliseconds however large the replica grows. Builds the replica with the
queue benchmark's generator (``tests/ui/queue_fixtures.py``), gives every ticket stored SLA
instants around "now" (on track, at risk, overdue and answered ones; the generator leaves them
empty) and bulk-inserts events by the team's twelve people over three weeks, then prints JSON
lines, medians over 30 runs in milliseconds, with a baseline measured in the same run:

* ``count_assigned`` (baseline): ``SELECT count(*) FROM tickets WHERE assignee_id = ?``, the
  cheapest indexed question about one person's tickets.
* ``agent_stats``: the three reads of :func:`agent_stats` for the busiest person.

Run: ``python bench/agent_stats_bench.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Table, bindparam, func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from agentdesk.models import Ticket, TicketEvent, new_id  # noqa: E402
from agentdesk.queries.agent_stats import agent_stats  # noqa: E402
from tests.ui.queue_fixtures import generate  # noqa: E402

TICKETS = 100_000
EVENTS = 300_000
RUNS = 30


def _median_ms(fn: Callable[[], object]) -> float:
    fn()  # warm the page cache and the statement cache
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    scratch = Path(tempfile.mkdtemp(prefix="agent-stats-bench-"))
    data = generate(scratch / "replica.db", TICKETS, open_only=False)
    now = data.now
    rng = random.Random(11)
    engine = data.engine()
    ids = [t["id"] for t in data.tickets]
    with engine.begin() as conn:
        table = cast(Table, Ticket.__table__)
        for ticket in data.tickets:
            ticket["_due"] = now + timedelta(minutes=rng.randint(-600, 600))
        conn.execute(
            table.update()
            .where(table.c.id == bindparam("tid"))
            .values(
                sla_due_at=bindparam("due", type_=table.c.sla_due_at.type),
                sla_risk_at=bindparam("risk", type_=table.c.sla_risk_at.type),
            ),
            [
                {"tid": t["id"], "due": t["_due"], "risk": t["_due"] - timedelta(minutes=30)}
                for t in data.tickets
            ],
        )
        events = cast(Table, TicketEvent.__table__)
        rows = [
            {
                "id": new_id(),
                "tenant_id": data.tenant_id,
                "version": 1,
                "ticket_id": rng.choice(ids),
                "kind": "note",
                "author_id": rng.choice(data.user_ids),
                "at": now - timedelta(minutes=rng.randint(0, 21 * 24 * 60)),
                "seq": 0,
                "body": "",
                "data": {},
                "deleted": False,
            }
            for _ in range(EVENTS)
        ]
        for start in range(0, len(rows), 20_000):
            conn.execute(events.insert(), rows[start : start + 20_000])
    with Session(engine) as s:
        busiest = s.execute(
            select(Ticket.assignee_id, func.count())
            .where(Ticket.assignee_id.is_not(None))
            .group_by(Ticket.assignee_id)
            .order_by(func.count().desc())
            .limit(1)
        ).one()[0]
        assert busiest is not None
        day_start = now - timedelta(hours=10)
        stats = agent_stats(s, busiest, now, day_start)
        baseline = _median_ms(
            lambda: s.scalar(
                select(func.count()).select_from(Ticket).where(Ticket.assignee_id == busiest)
            )
        )
        measured = _median_ms(lambda: agent_stats(s, busiest, now, day_start))
    engine.dispose()
    print(
        json.dumps(
            {
                "bench": "agent_stats",
                "figure": "count_assigned",
                "tickets": TICKETS,
                "events": EVENTS,
                "median_ms": round(baseline, 3),
            }
        )
    )
    print(
        json.dumps(
            {
                "bench": "agent_stats",
                "figure": "agent_stats",
                "tickets": TICKETS,
                "events": EVENTS,
                "median_ms": round(measured, 3),
                "baseline_ms": round(baseline, 3),
                "ratio": round(measured / baseline, 2),
                "result": stats.text(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
