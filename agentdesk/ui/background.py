"""The one pattern for background work in the desktop.

An operation (a heavy replica query, a sign-in, an export) runs on Qt's global thread pool and
reports back through signals delivered on the GUI thread. The GUI thread never waits on the
network or the disk. Tests flip :data:`SYNCHRONOUS` (or use the ``sync_background`` fixture) to
run operations inline, so they can assert on results without sleeping.

Modelled on Anki's ``aqt.operations`` (QueryOp: a function off the main thread, a success
callback on it) and Picard's thread helper.

A worker thread never holds the last reference to what an operation holds. The function
an operation runs is usually a closure over panel state, its callbacks are bound to widgets, and
a Python object freed on a worker thread that was the last owner of a Qt object destroys that
object there, while the GUI thread may be delivering an event to it (a segmentation fault, seen
in CI). So an operation in flight is pinned in :data:`_IN_FLIGHT` until the GUI thread has its
outcome; the worker drops its own reference to the function before it hands the outcome over,
and hands it over through a dictionary, signalling only the operation's number.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QRunnable, Qt, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Run operations inline (tests only).
SYNCHRONOUS = False

#: Operations started and not yet reported back, by number (touched on the GUI thread only).
_IN_FLIGHT: dict[int, Operation[Any]] = {}
#: Outcomes handed over by workers, by operation number: (succeeded, value or exception).
_OUTCOMES: dict[int, tuple[bool, Any]] = {}
_numbers = itertools.count(1)


class _Dispatcher(QObject):
    """Lives on the GUI thread; a worker's ``ready`` is queued to it."""

    ready = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.ready.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    @Slot(int)
    def _deliver(self, number: int) -> None:
        op = _IN_FLIGHT.pop(number, None)
        succeeded, value = _OUTCOMES.pop(number, (False, None))
        if op is not None:
            op._report(succeeded, value)


_dispatcher: _Dispatcher | None = None


def _the_dispatcher() -> _Dispatcher:
    """Made on first use by the GUI thread (operations are started there)."""
    global _dispatcher
    if _dispatcher is None or not shiboken6.isValid(_dispatcher):
        _dispatcher = _Dispatcher()
        app = QCoreApplication.instance()
        if app is not None and _dispatcher.thread() is not app.thread():
            _dispatcher.moveToThread(app.thread())
    return _dispatcher


class _Job(QRunnable):
    """Holds the operation's number and its function, nothing else (the pool frees the job on
    the worker thread)."""

    def __init__(self, number: int, fn: Callable[[], Any], dispatcher: _Dispatcher) -> None:
        super().__init__()
        self._number = number
        self._fn: Callable[[], Any] | None = fn
        self._dispatcher = dispatcher

    def run(self) -> None:  # runs on a pool thread
        fn, self._fn = self._fn, None
        assert fn is not None
        try:
            outcome: tuple[bool, Any] = (True, fn())
        except BaseException as exc:  # reported to the GUI thread, never swallowed, so the
            outcome = (False, exc)  # operation is always unpinned
        del fn  # the operation, pinned until reported, still holds the function
        _OUTCOMES[self._number] = outcome
        del outcome
        self._dispatcher.ready.emit(self._number)


class Operation(QObject, Generic[T]):
    """A function run off the GUI thread, with success and failure reported as signals.

    Once started it is kept until it has reported, so a caller need not hold it. Give it a
    parent to drop the report when the parent (a closed panel) is gone.
    """

    succeeded = Signal(object)
    failed = Signal(object)

    def __init__(
        self,
        fn: Callable[[], T],
        *,
        on_success: Callable[[T], None] | None = None,
        on_failure: Callable[[Exception], None] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._fn: Callable[[], T] | None = fn
        # Called directly, not connected: a Python callable connected to a signal is held by
        # PySide's hidden receiver, and these closures hold the operation itself (their
        # ``op.deleteLater()``), a cycle through PySide's internals for every read. Both are
        # dropped once the operation has reported.
        self._on_success: Callable[[T], None] | None = on_success
        self._on_failure: Callable[[Exception], None] | None = (
            on_failure if on_failure is not None else self._log_failure
        )
        self.done = False

    def start(self, pool: QThreadPool | None = None) -> Operation[T]:
        # The operation keeps the function (pinned in _IN_FLIGHT) until it has reported, so the
        # worker never holds the last reference to it; _report lets it go, on the GUI thread.
        fn = self._fn
        if fn is None or self.done:
            raise RuntimeError("an operation runs once")
        if SYNCHRONOUS:
            try:
                outcome: tuple[bool, Any] = (True, fn())
            except Exception as exc:
                outcome = (False, exc)
            del fn
            self._report(*outcome)
            return self
        number = next(_numbers)
        _IN_FLIGHT[number] = self
        try:
            (pool or QThreadPool.globalInstance()).start(_Job(number, fn, _the_dispatcher()))
        except BaseException:
            del _IN_FLIGHT[number]
            raise
        return self

    def _report(self, succeeded: bool, value: Any) -> None:
        on_success, on_failure = self._on_success, self._on_failure
        self._on_success = self._on_failure = self._fn = None
        if not shiboken6.isValid(self):
            return  # its parent was deleted meanwhile: nobody is waiting for it
        try:
            callback = on_success if succeeded else on_failure
            if callback is not None:
                callback(value)
        finally:
            self.done = True
            (self.succeeded if succeeded else self.failed).emit(value)

    @staticmethod
    def _log_failure(exc: Exception) -> None:
        log.error("background operation failed: %s", exc, exc_info=exc)


def in_flight() -> int:
    """How many operations have started and not yet reported back."""
    return len(_IN_FLIGHT)


def run_in_background(
    fn: Callable[[], T],
    on_success: Callable[[T], None],
    on_failure: Callable[[Exception], None] | None = None,
    *,
    parent: QObject | None = None,
) -> Operation[T]:
    return Operation(fn, on_success=on_success, on_failure=on_failure, parent=parent).start()
