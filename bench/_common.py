"""What several benches share: figures in milliseconds, percentiles, one JSON line per figure,
timing a function, and a Qt message handler that keeps the offscreen platform's noise out.

Each bench puts the repository on ``sys.path`` first (it runs as a script), then imports this.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QtMsgType


def ms(seconds: float, digits: int = 2) -> float:
    """Seconds as milliseconds, rounded to ``digits`` decimals."""
    return round(seconds * 1000, digits)


def pct(samples: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``samples``: the sample at index ``q * n``, the last one
    for ``q = 1``."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rank_pct(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``samples`` by nearest rank (the sync and intake
    benches' rule)."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def timed(
    fn: Callable[[], object], runs: int, *, between: Callable[[], object] | None = None
) -> list[float]:
    """``fn``'s wall-clock time, in seconds, ``runs`` times; ``between`` runs (untimed) before
    each run."""
    samples = []
    for _ in range(runs):
        if between is not None:
            between()
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    return samples


def report(
    bench: str,
    metric: str,
    samples: list[float],
    *,
    baseline: str | None = None,
    baseline_ms: float | None = None,
    p95: bool = False,
    **extra: Any,
) -> float:
    """Print one figure (median and maximum of ``samples`` in seconds, with ``p95``: the 95th
    percentile too once there are 20 samples) as a JSON line, with its ratio to a baseline
    measured in the same run; returns the median in milliseconds."""
    median = statistics.median(samples)
    line: dict[str, Any] = {
        "bench": bench,
        "metric": metric,
        "median_ms": ms(median),
        "runs": len(samples),
    }
    if p95 and len(samples) >= 20:
        line["p95_ms"] = ms(sorted(samples)[int(len(samples) * 0.95) - 1])
    line["max_ms"] = ms(max(samples))
    if baseline is not None and baseline_ms:
        line["baseline"] = baseline
        line["ratio"] = round(ms(median) / baseline_ms, 2)
    line.update(extra)
    print(json.dumps(line), flush=True)
    return ms(median)


def quiet(kind: QtMsgType, _context: object, message: str) -> None:
    """Drop Qt's debug messages and the offscreen plugin's own noise; anything else still
    reaches stderr."""
    if kind != QtMsgType.QtDebugMsg and "propagateSizeHints" not in message:
        print(message, file=sys.stderr)
