"""The one pattern for background work in the desktop.

An operation (a heavy replica query, a sign-in, an export) runs on Qt's global thread pool and
reports back through signals delivered on the GUI thread. The GUI thread never waits on the
network or the disk. Tests flip :data:`SYNCHRONOUS` (or use the ``sync_background`` fixture) to
run operations inline, so they can assert on results without sleeping.

Modelled on Anki's ``aqt.operations`` (QueryOp: a function off the main thread, a success
callback on it) and Picard's thread helper.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Run operations inline (tests only).
SYNCHRONOUS = False


class _Signals(QObject):
    succeeded = Signal(object)
    failed = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], signals: _Signals) -> None:
        super().__init__()
        self._fn = fn
        self._signals = signals

    def run(self) -> None:  # runs on a pool thread
        try:
            result = self._fn()
        except Exception as exc:  # reported to the GUI thread, never swallowed
            self._signals.failed.emit(exc)
        else:
            self._signals.succeeded.emit(result)


class Operation(QObject, Generic[T]):
    """A function run off the GUI thread, with success and failure reported as signals.

    Keep a reference (or give it a parent) until it finishes; ``start`` returns ``self``.
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
        self._fn = fn
        self._signals = _Signals()
        # Queued across threads: the slots run on the thread that owns ``self`` (the GUI one).
        self._signals.succeeded.connect(self.succeeded)
        self._signals.failed.connect(self.failed)
        if on_success is not None:
            self.succeeded.connect(on_success)
        if on_failure is not None:
            self.failed.connect(on_failure)
        else:
            self.failed.connect(self._log_failure)
        self.done = False
        self.succeeded.connect(self._mark_done)
        self.failed.connect(self._mark_done)

    def start(self, pool: QThreadPool | None = None) -> Operation[T]:
        if SYNCHRONOUS:
            _Job(self._fn, self._signals).run()
        else:
            (pool or QThreadPool.globalInstance()).start(_Job(self._fn, self._signals))
        return self

    def _mark_done(self, _value: object) -> None:
        self.done = True

    @staticmethod
    def _log_failure(exc: Exception) -> None:
        log.error("background operation failed: %s", exc, exc_info=exc)


def run_in_background(
    fn: Callable[[], T],
    on_success: Callable[[T], None],
    on_failure: Callable[[Exception], None] | None = None,
    *,
    parent: QObject | None = None,
) -> Operation[T]:
    return Operation(fn, on_success=on_success, on_failure=on_failure, parent=parent).start()
