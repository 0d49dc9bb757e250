"""Where and when Python's cyclic garbage collector may run in the desktop.

Two hazards, one cause: CPython runs the collector on whichever thread allocates the object that
crosses a threshold, holding the GIL for the whole pass.

* **Where.** On a worker thread (a background read, the writer, the sync engine), a pass that
  frees a cycle holding a Qt object destroys that object on the wrong thread while the GUI thread
  may be delivering an event to it: a segmentation fault (seen in the test suite: a worker's
  ``emit`` on one side, the GUI thread's event loop on the other). So automatic collection is
  off and the collections run on the GUI thread, from a timer, with CPython's own thresholds
  (the pattern of pyqtgraph's ``GarbageCollector``).
* **How long.** A full (generation 2) pass walks every tracked object in the process: the Qt
  wrappers, SQLAlchemy's mappers, the queue's row cache. It was the longest GUI stall measured
  while a year of ledger replayed on a worker (``bench/balance_bench.py``: one pass of ~200 ms;
  docs/performance.md). With ``freeze`` on (the app), what is alive after start-up and after
  each minute is moved to the permanent generation (``gc.freeze``), which passes never walk;
  young passes stay short, and the real full collection (unfreeze, collect, freeze) runs while
  the window is not the active one, or after ``FULL_COLLECTION_AT_LEAST_EVERY_S`` of continuous
  use, so a cycle frozen while alive and dropped later is freed in the end. A burst of new
  objects (a pull page, a replayed ledger) is frozen rather than walked: young passes stay
  under ~10 ms. What is frozen is tracked by counting what each freeze moves (the young
  generations' lists), not with ``gc.get_freeze_count()``, which walks the whole frozen heap:
  ~50 ms for 380,000 scattered objects, ~160 ms for a million (``bench/freeze_count_bench.py``),
  on the GUI thread at every burst. It runs only when the count says the heap may have grown.

And a wait for the interpreter: every Python slot, model ``data()`` call and event filter on the
GUI thread needs its lock, and while a worker runs Python the GUI thread gets it only after the
switch interval. While the desktop runs the interval is :data:`GUI_SWITCH_INTERVAL_S` (0.2 ms,
CPython's default is 5 ms). At 1 ms the balance read's GUI stall was 5-8 ms instead of 10-19 ms;
under pulls, clicks and background reads together (``bench/gui_latency_bench.py``) 0.2 ms cut
the GUI thread's longest stall by about a quarter against 1 ms, with no slower pull pages: a
repaint re-enters Python hundreds of times, and each entry may wait out the interval
(docs/performance.md, stop 21). The GUI thread idles with the lock released, so while it idles
no thread is made to switch.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication

__all__ = ["CollectorPacing", "collect_due", "not_frozen_count"]

#: The interpreter's switch interval while the desktop runs (seconds; CPython's default is 0.005).
GUI_SWITCH_INTERVAL_S = 0.0002
#: How often the GUI thread looks at the collector's counts. Not more often: each look is a
#: Python call on the GUI thread, a wait for the interpreter lock while workers run (in one
#: run the event loop's p99 was 19 ms at 50 ms and 11 ms at 250 ms; docs/performance.md).
COLLECT_EVERY_MS = 250
#: More new objects than this since the last pass (a pull page's rows, a plan, a replayed
#: ledger: data, not cycles) are frozen instead of walked: freezing costs nothing, walking them
#: took up to 39 ms of the GUI thread. Cycles among them wait for the next full collection.
FREEZE_INSTEAD_ABOVE = 5_000
#: ... but once what is frozen has doubled since the last full collection (cyclic garbage frozen
#: with the bursts, or data that grew), the full collection runs then, window active or not:
#: memory stays within about twice the live heap, and full passes are amortised as CPython's
#: own oldest-generation rule does (it collects when the long-lived objects grew by a quarter).
FULL_COLLECTION_WHEN_FROZEN_GROWS = 2.0
#: After an exact count found the heap under that limit, the next one waits until this share of
#: the heap more has been frozen (each count walks the whole frozen heap on the GUI thread).
RECOUNT_AFTER = 0.25
#: How often what survived recent work is frozen, so full passes stay short.
REFREEZE_EVERY_MS = 60_000
#: Full collections while the window is not active, and not more often than this.
FULL_COLLECTION_EVERY_S = 300.0
#: ... and at least this often even if the window never stops being the active one.
FULL_COLLECTION_AT_LEAST_EVERY_S = 3600.0


def collect_due(oldest: bool = True) -> bool:
    """Collect on this thread what CPython's thresholds say is due (automatic collection being
    off); the oldest generation only if ``oldest``. Returns whether a pass ran."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    if counts[0] <= thresholds[0]:
        return False
    generation = 0
    if counts[1] > thresholds[1]:
        generation = 1
        if oldest and counts[2] > thresholds[2]:
            generation = 2
    gc.collect(generation)
    return True


def not_frozen_count() -> int:
    """The tracked objects a ``gc.freeze()`` would move now. Each generation's list is built
    from what is not frozen yet, which the pacing keeps small; ``gc.get_freeze_count()`` instead
    walks every frozen object (hundreds of milliseconds on a heap of millions)."""
    return sum(len(gc.get_objects(generation=g)) for g in range(3))


class CollectorPacing(QObject):
    """Runs the cyclic collector on the GUI thread only, and (``freeze``) keeps its full passes
    short while the app is in use; see the module doc.

    ``start()`` turns automatic collection off (collections then run from a GUI-thread timer by
    CPython's thresholds) and, with ``freeze``, collects once and freezes; a second timer
    re-freezes what survived every :data:`REFREEZE_EVERY_MS`, and a full collection runs when the
    application becomes inactive. It also shortens the interpreter's switch interval
    (``switch_interval_s``; None leaves it). ``stop()`` restores automatic collection and the
    interval as it found them, and unfreezes.
    """

    def __init__(
        self,
        app: QGuiApplication,
        *,
        freeze: bool = True,
        switch_interval_s: float | None = GUI_SWITCH_INTERVAL_S,
        collect_every_ms: int = COLLECT_EVERY_MS,
        freeze_instead_above: int = FREEZE_INSTEAD_ABOVE,
        refreeze_every_ms: int = REFREEZE_EVERY_MS,
        full_every_s: float = FULL_COLLECTION_EVERY_S,
        full_at_least_every_s: float = FULL_COLLECTION_AT_LEAST_EVERY_S,
        full_when_frozen_grows: float = FULL_COLLECTION_WHEN_FROZEN_GROWS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(app)
        self._app = app
        self._freeze = freeze
        self._freeze_instead_above = freeze_instead_above
        self._switch_interval_s = switch_interval_s
        self._was_switch_interval = sys.getswitchinterval()
        self._clock = clock
        self._full_every_s = full_every_s
        self._full_at_least_every_s = full_at_least_every_s
        self._full_when_frozen_grows = full_when_frozen_grows
        self._last_full: float | None = None
        self._was_enabled = True
        self._collector = QTimer(self)
        self._collector.setInterval(collect_every_ms)
        self._collector.timeout.connect(self.collect_due)
        self._refreezer = QTimer(self)
        self._refreezer.setInterval(refreeze_every_ms)
        self._refreezer.timeout.connect(self.refreeze)
        self.full_collections = 0
        self.refreezes = 0
        self.young_collections = 0
        self.burst_freezes = 0
        self._frozen_after_full = 0
        #: What is frozen, give or take: exact after a full collection, then plus what each
        #: freeze moves; frozen objects freed since are not subtracted (see collect_due).
        self._frozen = 0
        #: The estimate above which the frozen heap is counted exactly (see _check_growth).
        self._check_at = 0.0
        self._rebased = False
        self.exact_counts = 0

    def start(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._was_switch_interval = sys.getswitchinterval()
        if self._switch_interval_s is not None:
            sys.setswitchinterval(self._switch_interval_s)
        self._collector.start()
        if self._freeze:
            self.full_collection()
            self._refreezer.start()
            self._app.applicationStateChanged.connect(self.state_changed)

    def stop(self) -> None:
        self._collector.stop()
        if self._freeze:
            self._refreezer.stop()
            self._app.applicationStateChanged.disconnect(self.state_changed)
            gc.unfreeze()
            self._frozen = self._frozen_after_full = 0
            self._check_at = 0.0
            self._rebased = False
        if self._was_enabled:
            gc.enable()
        sys.setswitchinterval(self._was_switch_interval)

    def collect_due(self) -> None:
        """What CPython would have collected by now, here on the GUI thread. With ``freeze``
        the oldest generation is left to :meth:`refreeze` and :meth:`full_collection`, and a
        burst of new objects is frozen rather than walked."""
        if self._freeze and self._full_overdue():
            self.full_collection()
        elif self._freeze and gc.get_count()[0] > self._freeze_instead_above:
            # Another thread may allocate between the count and the freeze: those objects are
            # frozen uncounted (a few; the exact counts below and the hourly full pass bound it).
            self._frozen += not_frozen_count()
            gc.freeze()
            self.burst_freezes += 1
            if self._frozen > self._check_at:
                self._check_growth()
        elif collect_due(oldest=not self._freeze):
            self.young_collections += 1

    def refreeze(self) -> None:
        """Young garbage first (a short pass), then freeze what is still alive."""
        gc.collect(1)
        moved = not_frozen_count()
        gc.freeze()
        self.refreezes += 1
        if self._rebased:
            self._frozen += moved
        else:
            # The first re-freeze after a full collection (a minute after start-up: the
            # replica's rows and the queue loaded) is what "doubled" is measured from, so
            # loading the app's data does not trigger a full pass while the agent works.
            self._frozen = gc.get_freeze_count()
            self._frozen_after_full = max(self._frozen_after_full, self._frozen)
            self._check_at = self._full_limit()
            self._rebased = True

    def _check_growth(self) -> None:
        """The estimate says the frozen heap may have grown by the factor: count exactly (a
        walk of the frozen heap) and collect if it has."""
        self._frozen = gc.get_freeze_count()  # the estimate misses frozen objects freed since
        self.exact_counts += 1
        limit = self._full_limit()
        if self._frozen > limit:
            self.full_collection()
        else:
            # Not grown: what was frozen was mostly freed again (pulls replacing rows). The
            # next walk waits until RECOUNT_AFTER of the heap more has been frozen, so a heap
            # that stays just under the limit is not walked at every burst; a real growth is
            # then seen by the time the heap is at most (1 + RECOUNT_AFTER) x the limit.
            self._check_at = max(limit, self._frozen * (1 + RECOUNT_AFTER))

    def full_collection(self) -> None:
        """Everything, frozen included: a cycle that was frozen while alive is freed here."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._frozen = self._frozen_after_full = gc.get_freeze_count()
        self._check_at = self._full_limit()
        self._rebased = False
        self._last_full = self._clock()
        self.full_collections += 1

    def state_changed(self, state: Qt.ApplicationState) -> None:
        if state == Qt.ApplicationState.ApplicationActive:
            return
        if self._last_full is not None and self._clock() - self._last_full < self._full_every_s:
            return
        self.full_collection()

    def _full_limit(self) -> float:
        return self._full_when_frozen_grows * max(
            self._frozen_after_full, self._freeze_instead_above
        )

    def _full_overdue(self) -> bool:
        return (
            self._last_full is not None
            and self._clock() - self._last_full >= self._full_at_least_every_s
        )
