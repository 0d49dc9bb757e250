"""When Python's cyclic garbage collector may stop the GUI thread, and for how long.

CPython's collector runs on whichever thread allocates the object that crosses a threshold,
holding the GIL for the whole pass. A full (generation 2) pass walks every tracked object in
the process: the Qt wrappers, SQLAlchemy's mappers, the queue's row cache. With a year of
ledger replayed on a worker it was the longest GUI stall measured (``bench/balance_bench.py``:
one pass of ~200 ms in a 1.3 s replay, while the replay itself never held the GIL longer than
the interpreter's 5 ms switch interval; see docs/performance.md).

The cure is the one large Python services use (``gc.freeze``, Python 3.7+): objects that are
alive after start-up and after each quiet spell are moved to the permanent generation, which
automatic passes never walk, so a full pass only walks what was allocated since. Freezing is
cheap (generation lists are spliced), and refcounting still frees frozen objects that are not
in cycles; only a cycle frozen while alive and dropped later waits for a real collection. That
real collection (unfreeze, collect, freeze) runs when nobody is watching the window: when the
application stops being the active one (the agent switched to the mail client), at most once per
``FULL_COLLECTION_EVERY``.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication

__all__ = ["CollectorPacing"]

#: How often what survived recent work is frozen, so automatic full passes stay short.
REFREEZE_EVERY_MS = 60_000
#: Full collections (which may stall a few hundred ms) only while the window is not active,
#: and not more often than this.
FULL_COLLECTION_EVERY_S = 300.0


class CollectorPacing(QObject):
    """Keeps the collector's full passes short while the app is in use; see the module doc.

    ``start()`` collects once and freezes (call it when start-up is over: the window is shown);
    a timer re-freezes what survived every :data:`REFREEZE_EVERY_MS` after a young-generation
    pass (so fresh cyclic garbage is not frozen); a full collection runs when the application
    becomes inactive. ``stop()`` unfreezes everything (tests, and the end of the app).
    """

    def __init__(
        self,
        app: QGuiApplication,
        refreeze_every_ms: int = REFREEZE_EVERY_MS,
        full_every_s: float = FULL_COLLECTION_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(app)
        self._app = app
        self._clock = clock
        self._full_every_s = full_every_s
        self._last_full: float | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(refreeze_every_ms)
        self._timer.timeout.connect(self.refreeze)
        self.full_collections = 0
        self.refreezes = 0

    def start(self) -> None:
        self.full_collection()
        self._timer.start()
        self._app.applicationStateChanged.connect(self.state_changed)

    def stop(self) -> None:
        self._timer.stop()
        self._app.applicationStateChanged.disconnect(self.state_changed)
        gc.unfreeze()

    def refreeze(self) -> None:
        """Young garbage first (a cheap pass), then freeze what is still alive."""
        gc.collect(1)
        gc.freeze()
        self.refreezes += 1

    def full_collection(self) -> None:
        """Everything, frozen included: a cycle that was frozen while alive is freed here."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._last_full = self._clock()
        self.full_collections += 1

    def state_changed(self, state: Qt.ApplicationState) -> None:
        if state == Qt.ApplicationState.ApplicationActive:
            return
        if self._last_full is not None and self._clock() - self._last_full < self._full_every_s:
            return
        self.full_collection()
