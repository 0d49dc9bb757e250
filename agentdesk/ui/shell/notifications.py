"""Tray messages for what must not wait: a new tier-1 ticket, and a ticket assigned to me that
is about to breach its response target - or already has, when it was never seen at risk (it was
assigned to me late, or the desktop was closed or asleep through its at-risk stretch).

What to say is found by a scan of the replica on a worker thread (:mod:`agentdesk.ui.background`),
never on the GUI thread: after a sync changes tickets (debounced), and every minute, since "about
to breach" happens with the clock, not with data. Tier-1 tickets already open at start-up are
the baseline, not news; each ticket is announced once per session. The preferences are read at
announcement time, so switching a notification off in Settings takes effect at once.

Only the start-up baseline (and a replica reset) reads every open tier-1 ticket: tens of
thousands of rows on a large team, and a scan that long holds Python's lock against the GUI
thread. After that a change re-reads only the tickets it names (whether a ticket is tier-1 and
open changes only with its own row), and the minute's check only my unanswered tickets.

Without a system tray (some Linux desktops, the offscreen test platform) the messages still go
out through :attr:`Notifier.notified`; the main window shows them in the status bar.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QObject, QSettings, QTimer, Signal
from PySide6.QtWidgets import QSystemTrayIcon
from sqlalchemy import Engine, Table, false, select

from ...models import Organisation, Ticket, WaitingPeriod
from ...policy.sla import SlaState
from ...policy.workflow import OPEN_STATUSES
from .. import background, settings
from ..panel_widgets import tray_text
from ..sla_display import SlaClock, SlaInputs, duration_text
from .sync_bridge import ReplicaChange

log = logging.getLogger(__name__)

__all__ = ["Notice", "Notifier", "Scan", "scan_replica"]

TICKETS: Table = Ticket.__table__  # type: ignore[assignment]
ORGS: Table = Organisation.__table__  # type: ignore[assignment]
WAITS: Table = WaitingPeriod.__table__  # type: ignore[assignment]
_OPEN = sorted(OPEN_STATUSES)


@dataclass(frozen=True)
class Notice:
    ticket_id: uuid.UUID
    subject: str
    organisation: str
    #: Business time left to respond, or by how much it is overdue (my-ticket notices only).
    left: str = ""
    #: Past its response target already.
    overdue: bool = False


@dataclass(frozen=True)
class Scan:
    tier1: dict[uuid.UUID, Notice]
    #: My unanswered tickets at risk or breached.
    at_risk_mine: dict[uuid.UUID, Notice]
    #: The tickets each part looked at: None for every ticket.
    tier1_scope: frozenset[uuid.UUID] | None = None
    mine_scope: frozenset[uuid.UUID] | None = None


def scan_replica(
    engine: Engine,
    clock: SlaClock,
    user_id: uuid.UUID | None,
    now: datetime,
    *,
    reload_lookups: bool = False,
    tier1_scope: frozenset[uuid.UUID] | None = None,
    mine_scope: frozenset[uuid.UUID] | None = None,
) -> Scan:
    """Open tier-1 tickets, and my unanswered tickets whose SLA is at risk or breached (worker
    thread); each part among the tickets of its scope only, when given one."""
    with engine.connect() as conn:
        if reload_lookups or not clock.loaded:
            clock.load(conn)
        joined = TICKETS.join(ORGS, ORGS.c.id == TICKETS.c.organisation_id)
        columns = (
            TICKETS.c.id,
            TICKETS.c.subject,
            TICKETS.c.arrived_at,
            TICKETS.c.urgency,
            ORGS.c.plan_id,
            ORGS.c.name,
        )
        # A scope's tickets are read by id and sorted out here: with the open-status filter
        # in the query, SQLite walks the index of every open ticket to find a thousand ids.
        wanted = (tier1_scope or frozenset()) | (mine_scope or frozenset())
        scoped = (
            conn.execute(
                select(
                    *columns,
                    TICKETS.c.status,
                    TICKETS.c.deleted,
                    TICKETS.c.assignee_id,
                    TICKETS.c.first_response_at,
                )
                .select_from(joined)
                .where(TICKETS.c.id.in_(list(wanted)))
            ).all()
            if wanted
            else []
        )
        scoped = [r for r in scoped if r.status in OPEN_STATUSES and not r.deleted]
        open_ = TICKETS.c.status.in_(_OPEN) & (TICKETS.c.deleted == false())
        tier1_rows: Sequence[Any]
        if tier1_scope is None:
            tier1_rows = conn.execute(
                select(*columns).select_from(joined).where(open_, TICKETS.c.urgency == 1)
            ).all()
        else:
            tier1_rows = [r for r in scoped if r.id in tier1_scope and r.urgency == 1]
        tier1 = {r.id: Notice(r.id, r.subject, r.name) for r in tier1_rows}
        mine: dict[uuid.UUID, Notice] = {}
        if user_id is not None:
            rows: Sequence[Any]
            if mine_scope is None:
                rows = conn.execute(
                    select(*columns)
                    .select_from(joined)
                    .where(
                        open_,
                        TICKETS.c.assignee_id == user_id,
                        TICKETS.c.first_response_at.is_(None),
                    )
                ).all()
            else:
                rows = [
                    r
                    for r in scoped
                    if r.id in mine_scope
                    and r.assignee_id == user_id
                    and r.first_response_at is None
                ]
            pauses: dict[uuid.UUID, list[tuple[datetime, datetime | None]]] = {}
            if rows:
                for w in conn.execute(
                    select(WAITS.c.ticket_id, WAITS.c.started_at, WAITS.c.ended_at).where(
                        WAITS.c.ticket_id.in_([r.id for r in rows]), WAITS.c.deleted == false()
                    )
                ):
                    pauses.setdefault(w.ticket_id, []).append((w.started_at, w.ended_at))
            for r in rows:
                inputs = SlaInputs(
                    r.arrived_at, r.urgency, r.plan_id, None, tuple(sorted(pauses.get(r.id, [])))
                )
                status = clock.status(inputs, now)
                if status is not None and status.state in (SlaState.AT_RISK, SlaState.BREACHED):
                    mine[r.id] = Notice(
                        r.id,
                        r.subject,
                        r.name,
                        duration_text(status.business_left),
                        overdue=status.state is SlaState.BREACHED,
                    )
    return Scan(tier1=tier1, at_risk_mine=mine, tier1_scope=tier1_scope, mine_scope=mine_scope)


class Notifier(QObject):
    """Decides what to announce; shows it on ``tray`` when there is one."""

    #: (title, message) of every announcement, tray or not.
    notified = Signal(str, str)
    #: The agent clicked a message: the ticket it was about.
    openRequested = Signal(object)

    DEBOUNCE_MS = 500
    SCOPE_LIMIT = 5_000
    CHECK_MS = 60_000
    MESSAGE_MS = 10_000

    def __init__(
        self,
        engine: Engine,
        user_id: uuid.UUID | None,
        store: QSettings,
        tray: QSystemTrayIcon | None = None,
        *,
        clock: SlaClock | None = None,
        now: Callable[[], datetime] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._engine = engine
        self._user_id = user_id
        self._store = store
        self._tray = tray
        self._clock = clock or SlaClock()
        self._now = now or (lambda: datetime.now(UTC))
        self._known_tier1: set[uuid.UUID] | None = None
        self._warned: set[uuid.UUID] = set()
        self._last_ticket: uuid.UUID | None = None
        self._running: background.Operation[Scan] | None = None
        #: Tickets changed since the last scan began (its tier-1 part looks at these only).
        self._changed: set[uuid.UUID] = set()
        #: The next scan reads every open tier-1 ticket (the baseline, or after a reset).
        self._all_tier1 = True
        #: A check asked for while a scan ran: runs after it (``_full_again``: every one of
        #: my tickets, not only the changed ones).
        self._again = False
        self._full_again = False
        self._reload = False
        self._stopped = False
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(self.DEBOUNCE_MS)
        self._debounce.timeout.connect(self._check_changes)
        self._periodic = QTimer(self)
        self._periodic.setInterval(self.CHECK_MS)
        self._periodic.timeout.connect(self.check)
        if tray is not None:
            tray.messageClicked.connect(self._clicked)

    def start(self) -> None:
        """Take the baseline now and check every minute from then on (once; later calls
        do nothing)."""
        if self._periodic.isActive() or self._stopped:
            return
        self._periodic.start()
        self.check()

    @property
    def started(self) -> bool:
        return self._periodic.isActive()

    def stop(self) -> None:
        self._stopped = True
        self._periodic.stop()
        self._debounce.stop()
        if self._tray is not None:
            self._tray.messageClicked.disconnect(self._clicked)

    def busy(self) -> bool:
        return self._running is not None and not self._running.done

    def on_change(self, change: ReplicaChange) -> None:
        """From :attr:`SyncBridge.changesArrived`: re-scan the changed tickets soon."""
        if not self.started:
            return  # the baseline is taken by start()
        if change.lookups or change.everything:
            self._reload = True
        if change.everything:
            self._all_tier1 = True
        self._changed |= change.ticket_ids
        if change.ticket_ids or change.everything or change.lookups:
            self._debounce.start()

    def check(self) -> None:
        """Scan the replica on a worker (every one of my unanswered tickets, since their SLA
        moves with the clock); announce what is new when it answers."""
        self._scan(all_mine=True)

    def _check_changes(self) -> None:
        self._scan(all_mine=self._full_again)

    def _scan(self, *, all_mine: bool) -> None:
        if self._stopped:
            return
        if self.busy():
            self._again = True
            self._full_again = self._full_again or all_mine
            return
        self._full_again = False
        changed = frozenset(self._changed)
        self._changed = set()
        # Past a few thousand tickets (a first sync) one pass over all is cheaper than a
        # query naming each, and stays within SQLite's limit on bound parameters.
        everything = len(changed) > self.SCOPE_LIMIT
        tier1_scope = (
            None if everything or self._all_tier1 or self._known_tier1 is None else changed
        )
        self._all_tier1 = False
        mine_scope = None if everything or all_mine or self._reload else changed
        engine, clock, user_id, now = self._engine, self._clock, self._user_id, self._now()
        reload_lookups, self._reload = self._reload, False

        def failed(exc: Exception) -> None:
            # Asked again with the next check: nothing changed is forgotten.
            self._changed |= changed
            self._all_tier1 = self._all_tier1 or tier1_scope is None
            self._reload = self._reload or reload_lookups
            self._scan_failed(exc)

        self._running = background.Operation(
            lambda: scan_replica(
                engine,
                clock,
                user_id,
                now,
                reload_lookups=reload_lookups,
                tier1_scope=tier1_scope,
                mine_scope=mine_scope,
            ),
            on_success=self._scanned,
            on_failure=failed,
            parent=self,
        )
        self._running.start()

    # ------------------------------------------------------------------ internals

    def _scan_failed(self, exc: Exception) -> None:
        log.warning("notification scan failed: %s", exc, exc_info=exc)
        self._after_scan()

    def _scanned(self, scan: Scan) -> None:
        if self._stopped:
            return
        known = self._known_tier1
        fresh = [n for tid, n in scan.tier1.items() if known is not None and tid not in known]
        if scan.tier1_scope is None or known is None:
            self._known_tier1 = set(scan.tier1)
        else:
            # In place, over the scope only (the known set is tens of thousands on a large
            # team): the scope's tickets no longer open tier-1 leave it, so one that comes
            # back is news again, as a full scan would find.
            known.difference_update(scan.tier1_scope - scan.tier1.keys())
            known.update(scan.tier1)
        if fresh and settings.NOTIFY_TIER1.read(self._store):  # none for the baseline
            if len(fresh) == 1:
                n = fresh[0]
                self._announce(
                    "New tier-1 ticket",
                    f"{n.organisation}: {n.subject}",
                    n.ticket_id,
                    critical=True,
                )
            else:
                self._announce(
                    f"{len(fresh)} new tier-1 tickets",
                    "; ".join(f"{n.organisation}: {n.subject}" for n in fresh[:3]),
                    fresh[0].ticket_id,
                    critical=True,
                )
        # Each of my tickets once, at risk or (if it got there unseen) breached: a ticket warned
        # at risk is not announced again when it breaches.
        due = [n for tid, n in scan.at_risk_mine.items() if tid not in self._warned]
        self._warned.update(n.ticket_id for n in due)
        # Forget tickets no longer at risk, so a ticket that comes back at risk warns again.
        if scan.mine_scope is None:
            self._warned.intersection_update(scan.at_risk_mine)
        else:
            self._warned.difference_update(scan.mine_scope - scan.at_risk_mine.keys())
        if due and settings.NOTIFY_BREACH.read(self._store):
            for n in due[:3]:
                if n.overdue:
                    self._announce(
                        "Ticket past its response target",
                        f"{n.subject} ({n.organisation}): overdue by {n.left}",
                        n.ticket_id,
                        critical=True,
                    )
                else:
                    self._announce(
                        "Ticket about to breach",
                        f"{n.subject} ({n.organisation}): {n.left} left to respond",
                        n.ticket_id,
                        critical=False,
                    )
            if len(due) > 3:
                self._announce(
                    f"{len(due) - 3} more of your tickets need a response",
                    "See the At risk and Breached views",
                    due[3].ticket_id,
                    critical=False,
                )
        self._after_scan()

    def _after_scan(self) -> None:
        if self._again and not self._stopped:
            self._again = False
            self._debounce.start()

    def _announce(self, title: str, message: str, ticket_id: uuid.UUID, *, critical: bool) -> None:
        self._last_ticket = ticket_id
        log.info("notification: %s", title)
        if self._tray is not None and self._tray.isVisible():
            icon = (
                QSystemTrayIcon.MessageIcon.Critical
                if critical
                else QSystemTrayIcon.MessageIcon.Warning
            )
            self._tray.showMessage(tray_text(title), tray_text(message), icon, self.MESSAGE_MS)
        self.notified.emit(title, message)

    def _clicked(self) -> None:
        if self._last_ticket is not None:
            self.openRequested.emit(self._last_ticket)
