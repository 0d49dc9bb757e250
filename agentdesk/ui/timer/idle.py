"""Idle time: an application-wide event filter (:class:`IdleMonitor`) records the last keyboard or
mouse input; after ``IDLE_MINUTES`` without any, :class:`IdlePrompt` offers to keep the idle
stretch or discard it (stop the timer when idleness began, and start again now or stay stopped).
The widget (:mod:`.widget`) decides when to ask and what each answer does.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer
from PySide6.QtWidgets import QMessageBox, QWidget

from ...queries.timer import Clock
from ..shown_time import to_local

__all__ = ["IdleMonitor", "IdlePrompt"]


class IdleMonitor(QObject):
    """Records when the agent last used the keyboard or mouse anywhere in the application
    (an application-wide event filter; it only reads the event type and never consumes).

    An application-wide filter written in Python is a Python call for every event Qt delivers
    to every object, paints and timers included, and so, while a sync or a query runs on
    another thread, a wait for the GIL per event: it multiplied the GUI thread's stalls under
    load (docs/performance.md). So the filter is installed only while a timer runs
    (:meth:`watch`; idleness only matters to a running timer, whose idle stretch starts no
    earlier than the timer itself), and after an input it steps aside for ``rest_ms`` before
    watching again: idleness is measured in minutes, and the last input is known to within
    those seconds (at most that much early, never late).
    """

    _INPUT = frozenset(
        {
            QEvent.Type.KeyPress,
            QEvent.Type.MouseButtonPress,
            QEvent.Type.MouseMove,
            QEvent.Type.Wheel,
            QEvent.Type.TouchBegin,
        }
    )
    REST_MS = 5_000

    def __init__(
        self, clock: Clock, parent: QObject | None = None, *, rest_ms: int = REST_MS
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self.last_input = clock()
        self._app: QCoreApplication | None = None
        self._rest = QTimer(self)
        self._rest.setSingleShot(True)
        self._rest.setInterval(rest_ms)
        self._rest.timeout.connect(self._install)

    @property
    def watching(self) -> bool:
        """A timer runs: input is being watched (the filter may be resting)."""
        return self._app is not None

    @property
    def resting(self) -> bool:
        """The filter stepped aside after an input and is not installed now."""
        return self._rest.isActive()

    def watch(self, on: bool) -> None:
        """Install or remove the application-wide filter; installing counts as input now."""
        app = QCoreApplication.instance()
        if on and self._app is None and app is not None:
            self.note_input()
            self._app = app
            self._install()
        elif not on and self._app is not None:
            self._rest.stop()
            self._app.removeEventFilter(self)
            self._app = None

    def note_input(self) -> None:
        self.last_input = self._clock()

    def _install(self) -> None:
        if self._app is not None:
            self._app.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in self._INPUT:
            self.last_input = self._clock()
            if self._app is not None:
                self._app.removeEventFilter(self)  # Qt allows this from inside the filter
                self._rest.start()
        return False


class IdlePrompt(QMessageBox):
    """ "You have been idle N minutes": keep the time, or discard it (and go on, or stop)."""

    def __init__(
        self, idle_start: datetime, minutes: int, timer_id: uuid.UUID, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.idle_start = idle_start
        self.timer_id = timer_id
        self.minutes = minutes
        self.setIcon(QMessageBox.Icon.Question)
        self.setWindowTitle("Still working?")
        self.setText(
            f"No keyboard or mouse input for {minutes} minutes "
            f"(since {to_local(idle_start):%H:%M}). The timer kept running."
        )
        self.keep_button = self.addButton("Keep", QMessageBox.ButtonRole.AcceptRole)
        self.discard_button = self.addButton(
            f"Discard the idle {minutes} minutes", QMessageBox.ButtonRole.DestructiveRole
        )
        self.discard_stop_button = self.addButton(
            f"Discard the idle {minutes} minutes and stop", QMessageBox.ButtonRole.RejectRole
        )
        self.setDefaultButton(self.keep_button)
