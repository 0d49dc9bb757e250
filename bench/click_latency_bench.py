"""How long a click's mutation holds the GUI thread while pull pages hold the replica's write lock.

Two ways of making the same change, measured in the same process, alternating click by click so
both meet the same load:

* ``direct`` (before issue 10's writer, the baseline): the click calls ``Replica.mutate`` on the
  GUI thread, as ``MutationRunner.run`` did; it waits for any pull page holding the write lock;
* ``writer``: the click queues the mutation with :class:`agentdesk.ui.writer.MutationWriter`
  and returns; its worker applies it. Also measured: ``applied`` (click to the outcome delivered
  on the GUI thread, i.e. when the panel re-reads).

Load: a feeder thread stands in for the sync thread and applies pull pages of ``PAGE_ROWS``
changed tickets (``Replica.apply_pull``) back to back with ``PULL_GAP`` seconds between them,
over a replica of ``--tickets`` open tickets (the generator of ``tests/ui/queue_fixtures.py``).
The click is an internal note on a random ticket (``add_note``). Figures (JSON lines): per mode
the click's GUI-thread time p50 / p95 / max, and the writer's ratio to the direct baseline;
medians over ``--processes`` child processes.

Run: ``QT_QPA_PLATFORM=offscreen python bench/click_latency_bench.py [--tickets N] [--clicks N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication
from sqlalchemy import select

from agentdesk.models import Role, Ticket
from agentdesk.sync.protocol import PullResponse
from agentdesk.sync.replica import Replica
from agentdesk.sync.rows import row_to_wire
from agentdesk.ui.writer import MutationWriter, Outcome, Step
from bench._common import ms, pct
from tests.ui.queue_fixtures import generate

PAGE_ROWS = 1000
PULL_GAP = 0.05
CLICK_EVERY = 0.1


def figures(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50_ms": ms(pct(samples, 0.5)),
        "p95_ms": ms(pct(samples, 0.95)),
        "max_ms": ms(max(samples)),
    }


class Feeder(threading.Thread):
    """Pull pages of ``PAGE_ROWS`` changed tickets, applied until told to stop."""

    def __init__(self, replica: Replica, seed: int) -> None:
        super().__init__(name="bench-feeder", daemon=True)
        self.replica = replica
        self.rng = random.Random(seed)
        self.halt = threading.Event()
        self.page_seconds: list[float] = []
        self.error: BaseException | None = None
        with replica.session() as s:
            self.ids = list(s.scalars(select(Ticket.id)))

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                self._one_pull()
                self.halt.wait(PULL_GAP)
        except BaseException as exc:  # reported by the process
            self.error = exc

    def _one_pull(self) -> None:
        state = self.replica.state
        chosen = self.rng.sample(self.ids, PAGE_ROWS)
        with self.replica.session() as s:
            tickets = list(s.scalars(select(Ticket).where(Ticket.id.in_(chosen))))
        changes = []
        for i, ticket in enumerate(tickets, start=1):
            wire = row_to_wire(ticket)
            wire["version"] = state.cursor + i
            wire["values"]["subject"] = f"changed {self.rng.random():.6f}"
            changes.append(wire)
        page = PullResponse.model_validate(
            {
                "cursor": state.cursor + len(changes),
                "has_more": False,
                "changes": changes,
                "last_mutation_id": state.last_mutation_id,
                "rejections": [],
            }
        )
        began = time.perf_counter()
        self.replica.apply_pull(page, since=state.cursor)
        self.page_seconds.append(time.perf_counter() - began)


def measure(path: str, tenant: str, user: str, clicks: int, seed: int) -> None:
    """One measurement, in a fresh process (see the module docstring)."""
    app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
    rng = random.Random(seed)
    replica = Replica(path)
    replica.configure(
        server_url="http://127.0.0.1:9",
        tenant_id=uuid.UUID(tenant),
        user_id=uuid.UUID(user),
        username="agent0",
        role=Role.AGENT,
        timezone="America/New_York",
    )
    writer = MutationWriter(replica)
    feeder = Feeder(replica, seed)
    ids = feeder.ids
    direct: list[float] = []
    queued: list[float] = []
    applied: list[float] = []
    refused: list[str] = []

    def note() -> dict[str, Any]:
        return {"ticket_id": rng.choice(ids), "body": f"bench {rng.random():.6f}", "kind": "note"}

    def pump(seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.001)

    feeder.start()
    pump(0.5)
    for i in range(2 * clicks):
        began = time.perf_counter()
        if i % 2:
            replica.mutate("add_note", note())
            direct.append(time.perf_counter() - began)
        else:

            def done(outcome: Outcome, began: float = began) -> None:
                applied.append(time.perf_counter() - began)
                if outcome.refusal:
                    refused.append(outcome.refusal)

            writer.submit([Step("add_note", note(), "the note")], done)
            queued.append(time.perf_counter() - began)
        pump(CLICK_EVERY * (0.5 + rng.random()))
    feeder.halt.set()
    feeder.join()
    writer.close()
    if feeder.error is not None:
        raise feeder.error
    if refused:
        raise RuntimeError(f"refused: {refused[:3]}")
    print(
        json.dumps(
            {
                "metric": "run",
                "direct": figures(direct),
                "writer": figures(queued),
                "writer_applied": figures(applied),
                "pulls": len(feeder.page_seconds),
                "page_apply_p50_ms": ms(pct(feeder.page_seconds, 0.5)),
            }
        ),
        flush=True,
    )
    replica.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--clicks", type=int, default=150, help="per mode and process")
    parser.add_argument("--processes", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="agentdesk-click-bench-") as tmp:
        data = generate(Path(tmp) / "replica.sqlite3", args.tickets, open_only=True)
        print(
            json.dumps(
                {
                    "bench": "click_latency",
                    "metric": "environment",
                    "tickets": args.tickets,
                    "page_rows": PAGE_ROWS,
                    "pull_gap_s": PULL_GAP,
                    "click_every_s": CLICK_EVERY,
                    "generate_s": round(time.perf_counter() - started, 1),
                    "cpus": os.cpu_count(),
                    "load": os.getloadavg()[0],
                }
            ),
            flush=True,
        )
        runs = []
        for i in range(args.processes):
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--measure",
                    str(data.path),
                    str(data.tenant_id),
                    str(data.user_ids[0]),
                    str(args.clicks),
                    str(i),
                ],
                check=True,
                timeout=900,
                capture_output=True,
                text=True,
            )
            for line in child.stdout.splitlines():
                figure = json.loads(line)
                runs.append(figure)
                print(json.dumps({"bench": "click_latency", "process": i, **figure}), flush=True)

    def med(part: str, key: str) -> float:
        return round(statistics.median(float(r[part][key]) for r in runs), 2)

    summary: dict[str, Any] = {
        "bench": "click_latency",
        "metric": "summary",
        "processes": len(runs),
    }
    for part in ("direct", "writer", "writer_applied"):
        for key in ("p50_ms", "p95_ms", "max_ms"):
            summary[f"{part}_{key}"] = med(part, key)
    for key in ("p50_ms", "p95_ms", "max_ms"):
        base = summary[f"direct_{key}"]
        summary[f"ratio_{key}"] = round(summary[f"writer_{key}"] / base, 5) if base else None
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        _, _, path, tenant, user, clicks, seed = sys.argv
        measure(path, tenant, user, int(clicks), int(seed))
    else:
        main()
