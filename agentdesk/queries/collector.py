"""Building many small objects without CPython's cycle collector rescanning the whole heap.

A year's statement makes ~100,000 short-lived objects: rows, the policy's work items, its report
rows and the statement's lines. Reference counting frees all of them; none of them forms a
cycle. The cycle collector still counts each one as a new allocation, and each time the
surviving objects grow by a quarter of the heap it scans every object in the process. On the
bench (`bench/consultant_bench.py`) that was two full scans and a quarter of the statement's
time (docs/performance.md). In the desktop and the server the heap also holds the replica's
rows, Qt wrappers and SQLAlchemy's state, so each scan costs more there.

:func:`paused` turns automatic collection off for such a build. The setting is process-wide,
so calls from several threads are counted: the last one to leave turns collection back on, and
only if it was on when the first one came in. A cycle made meanwhile is collected by the next
automatic collection after that.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused"]

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    """No automatic cycle collection inside the block (see the module notes)."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
