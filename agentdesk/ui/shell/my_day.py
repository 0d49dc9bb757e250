"""The signed-in person's day in the status bar: handled today, first responses, what is at risk.

The figures come from :func:`agentdesk.queries.agent_stats.agent_stats` (Qt-free, three indexed
reads), run off the GUI thread. They are read again when a change can move them (a ticket or
its events changed, here or on another desk; a replica reset), at most twice a second, and
once a minute, since "at risk" and "overdue" move with the clock alone. "Today" starts at the
person's own midnight, on the clock they chose (:mod:`agentdesk.ui.shown_time`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, time

from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import QWidget

from ...models import utcnow
from ...queries.agent_stats import AgentStats, agent_stats
from ...sync.replica import Replica
from .. import background
from ..panel_widgets import ElidedLabel
from ..shown_time import to_local
from .sync_bridge import ReplicaChange

log = logging.getLogger(__name__)

__all__ = ["MyDayLabel"]

Clock = Callable[[], datetime]

TOOLTIP = (
    "Your day so far: the tickets you changed since midnight, the first responses given on "
    "your tickets today and how many were in time, and your open tickets now at risk of "
    "missing their response target or already past it."
)


def day_start(now: datetime) -> datetime:
    """The person's midnight before ``now``, on their own clock."""
    local = to_local(now)
    return datetime.combine(local.date(), time.min, tzinfo=local.tzinfo)


class MyDayLabel(ElidedLabel):
    """The status bar's summary of the signed-in person's day (elided before the window
    would have to widen for it; the words are in full in the status bar's tooltip too)."""

    DEBOUNCE_MS = 500
    TICK_MS = 60_000

    def __init__(
        self,
        replica: Replica,
        user_id: uuid.UUID,
        parent: QWidget | None = None,
        *,
        clock: Clock = utcnow,
    ) -> None:
        super().__init__("", parent)
        self.setObjectName("myDay")
        self.setAccessibleName("My day")
        self.setToolTip(TOOLTIP)
        self._replica = replica
        self._user_id = user_id
        self._clock = clock
        self._running: background.Operation[AgentStats] | None = None
        self._again = False
        self.stats: AgentStats | None = None
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(self.DEBOUNCE_MS)
        self._debounce.timeout.connect(self.refresh)
        self._tick = QTimer(self)
        self._tick.setInterval(self.TICK_MS)
        self._tick.timeout.connect(self.refresh)
        self._tick.start()
        self.refresh()

    @Slot(object)
    def changes_arrived(self, change: ReplicaChange) -> None:
        """The sync bridge's ``changesArrived``: tickets or their events changed."""
        if change.everything or change.ticket_ids or "mutate" in change.kinds:
            self._debounce.start()

    def refresh(self) -> None:
        """Read the figures again on a worker; one read at a time, the next one queued."""
        if self._running is not None:
            self._again = True
            return
        replica, user_id = self._replica, self._user_id
        now = self._clock()
        start = day_start(now)

        def work() -> AgentStats:
            with replica.session() as s:
                return agent_stats(s, user_id, now, start)

        self._running = background.run_in_background(work, self._show, self._failed, parent=self)

    def _show(self, stats: AgentStats) -> None:
        self._running = None
        self.stats = stats
        self.setText(stats.text())
        self.setToolTip(f"{stats.text()}\n\n{TOOLTIP}")
        self._next()

    def _failed(self, exc: Exception) -> None:
        self._running = None
        log.warning("could not count the day's figures: %s", exc)
        self._next()

    def _next(self) -> None:
        if self._again:
            self._again = False
            QTimer.singleShot(0, self, self.refresh)
