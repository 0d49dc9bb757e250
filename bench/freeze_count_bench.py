"""What the collector pacing's bookkeeping costs the GUI thread at each burst freeze
(``agentdesk/ui/gc_pacing.py``): ``gc.get_freeze_count()``, which walks every frozen object,
against counting what a freeze moves (the young generations' lists, ``not_frozen_count``).

The heap is N objects made as a long-running process makes them (see ``made_heap``), frozen as
the desktop freezes it; each run then makes a burst of 10,000 new objects, counts what a freeze
would move, freezes and walks.
``not_frozen`` is the baseline: the ratio says how many times longer the walk is.

Run: ``python bench/freeze_count_bench.py`` (about a minute; ``FREEZE_BENCH_SIZES=200000`` for
a quick run).
"""

from __future__ import annotations

import gc
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agentdesk.ui.gc_pacing import not_frozen_count  # noqa: E402
from bench._common import report  # noqa: E402

SIZES = [int(n) for n in os.environ.get("FREEZE_BENCH_SIZES", "1000000,3000000").split(",")]
RUNS = 7
BURST = 10_000


def made_heap(n: int, rng: random.Random) -> list[object]:
    """``n`` objects made as a long-running process makes them: dicts and lists, with short-lived
    ones in between that are freed in a random order, so later objects reuse scattered memory
    and the collector's list (allocation order) jumps around in memory."""
    heap: list[object] = []
    churn: list[object] = []
    for i in range(n):
        heap.append({"i": [i]} if i % 3 else [i])
        if i % 7 == 0:
            churn.append((i, [i]))
        if len(churn) > 10_000:
            rng.shuffle(churn)
            del churn[5_000:]
    return heap


def timed_once(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def main() -> None:
    gc.disable()
    rng = random.Random(1)
    for n in SIZES:
        heap = made_heap(n, rng)
        gc.freeze()
        frozen = gc.get_freeze_count()
        walk: list[float] = []
        count: list[float] = []
        kept: list[list[list[int]]] = []
        for _ in range(RUNS):
            kept.append([[] for _ in range(BURST)])
            count.append(timed_once(not_frozen_count))
            gc.freeze()
            walk.append(timed_once(gc.get_freeze_count))
        base = report("freeze_count", "not_frozen", count, frozen_objects=frozen, burst=BURST)
        report(
            "freeze_count",
            "get_freeze_count",
            walk,
            baseline="not_frozen",
            baseline_ms=base,
            frozen_objects=frozen,
        )
        gc.unfreeze()
        del heap, kept
        gc.collect()


if __name__ == "__main__":
    main()
