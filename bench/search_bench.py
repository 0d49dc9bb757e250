"""Search over every ticket (open or not) in a 150,000-ticket replica, and the finished views.

The queue model's key query (``agentdesk.queries.queue.fetch_keys``, run on a worker thread
in the app) for the "Every ticket" view with searches by subject word, requester, organisation
and reference (part of the id), and for the Resolved / Closed / Redirected views. Baseline in
the same run: a bare ``SELECT id FROM tickets`` of every row through the DBAPI. Medians of 5
runs, in milliseconds, one JSON line per figure. The machine is shared: compare the ratios.

Run: ``python bench/search_bench.py`` (generating the replica takes a few seconds).
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentdesk.policy.calendar import BusinessCalendar  # noqa: E402
from agentdesk.queries.queue import QueueQuery, SavedView, fetch_keys  # noqa: E402
from agentdesk.queries.sla_clock import SlaClock  # noqa: E402
from tests.ui.queue_fixtures import OFFICE, generate  # noqa: E402

TICKETS = 150_000
RUNS = 5


def timed(fn: Callable[[], object], runs: int = RUNS) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), result


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="agentdesk-search-") as tmp:
        data = generate(Path(tmp) / "replica.sqlite3", TICKETS)
        engine = data.engine()
        raw = sqlite3.connect(data.path)
        baseline, _ = timed(lambda: raw.execute("SELECT id FROM tickets").fetchall())
        raw.close()
        print(
            json.dumps(
                {
                    "bench": "select_ids",
                    "tickets": TICKETS,
                    "median_ms": round(baseline, 1),
                    "role": "baseline",
                }
            )
        )
        clock = SlaClock(BusinessCalendar.from_dict(OFFICE))
        some = data.tickets[TICKETS // 3]
        searches = {
            "subject_word": "webhook",
            "requester": "Quinn",
            "organisation": "Org 0042",
            "reference": some["id"].hex[-10:],
            "two_words": "broken production",
        }
        with engine.connect() as conn:
            for name, query in (
                *(
                    (f"every_{k}", QueueQuery(view=SavedView.EVERY, search=v))
                    for k, v in searches.items()
                ),
                ("every_no_search", QueueQuery(view=SavedView.EVERY)),
                ("resolved_view", QueueQuery(view=SavedView.RESOLVED)),
                ("closed_view", QueueQuery(view=SavedView.CLOSED)),
                ("redirected_view", QueueQuery(view=SavedView.REDIRECTED)),
            ):
                ms, keys = timed(partial(fetch_keys, conn, clock, query, data.now))
                print(
                    json.dumps(
                        {
                            "bench": name,
                            "tickets": TICKETS,
                            "median_ms": round(ms, 1),
                            "matches": len(keys),  # type: ignore[arg-type]
                            "ratio_to_baseline": round(ms / baseline, 2),
                            "thread": "worker",
                        }
                    )
                )
        engine.dispose()


if __name__ == "__main__":
    main()
