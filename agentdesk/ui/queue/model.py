"""The work queue as a Qt table model: a thin adapter over the queue's read side.

What is listed, in what order, and how one list becomes another are Qt-free and live in
:mod:`agentdesk.queries.queue` (views, search, sort keys, the key query), :mod:`~agentdesk.
queries.queue_rows` (a row's cells) and :mod:`~agentdesk.queries.queue_diff` (planning the
changes). This module holds what Qt needs: roles, ``data()``, the signals, and the glue that
runs every read on Qt's thread pool (:mod:`agentdesk.ui.background`) so the GUI thread only
replays planned changes as signals. Built for 100,000 open tickets (``bench/queue_bench.py``
and ``bench/gui_latency_bench.py``):

**Only keys in memory.** The model holds one sort key per row (see
:mod:`agentdesk.queries.queue`) and an id -> key index; rows are binary-searched by key.

**Row data is lazy.** ``data()`` for a row whose ticket is not cached reads the block of 200
neighbouring rows in one primary-key query into a bounded LRU cache of 4,000 rows; nothing is
ever read for rows nobody looks at. Roles the model never provides return before any lookup,
so a full repaint costs little more than Qt's own text painting.

**Filtering in SQL, not in a proxy.** Saved views and search are WHERE clauses on the key query;
a ``QSortFilterProxyModel`` would call ``data()`` on all 100k rows, defeating the lazy cache, and
its filtering would run on the GUI thread. Every re-query (view switch, search, column sort, the
periodic At risk / Breached refresh) runs on a worker, which also plans how its result replaces
the list on screen (:func:`agentdesk.queries.queue_diff.prepare`); if a sync pull changed the
list meanwhile the snapshot is stale and the plan is redone on the GUI thread. Only the newest
request's result is applied; changes that arrive while a query runs are applied after it.

**Sync pulls** call :meth:`QueueModel.apply_changes` with the changed ticket ids. A worker
re-reads just those rows (with the current filter evaluated in the same query) and plans the
changes against a snapshot of the list (:func:`agentdesk.queries.queue_diff.plan_pull`); the GUI
thread then emits ``rowsRemoved``/``rowsInserted`` for the tickets that left or joined the view,
``rowsMoved`` for a few moved rows or one layout change for many, and ``dataChanged`` for the
changed cells. Never a reset for that; more than 20% of the rows (and more than 50) is a
re-query instead. One pull's work is in flight at a time; ids arriving meanwhile are merged
into the next.

**Countdown.** A 1 s timer emits ``dataChanged`` for the SLA and Age cells of the rows the view
reports visible (:meth:`QueueModel.set_visible_rows`): about 40 rows a second, whatever the queue
size. SLA clocks are cached per ticket (:mod:`agentdesk.queries.sla_clock`). Membership of the
At risk / Breached views drifts with time, so these views re-query every minute while shown.
"""

from __future__ import annotations

import bisect
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import shiboken6
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from ...policy.sla import SlaState, SlaStatus
from ...queries.dashboard import TicketFilter
from ...queries.queue import (
    SLA_VIEWS,
    VIEW_LABELS,
    Column,
    Key,
    QueueQuery,
    SavedView,
    fetch_keys,
    kid,
    queue_key,
)
from ...queries.queue_diff import (
    DiffPlan,
    Fetched,
    PullPlan,
    apply_mode,
    plan_pull,
    prepare,
)
from ...queries.queue_rows import QueueRow, read_changes, read_rows
from .. import background
from ..sla_display import SlaClock, age_text, sla_colour, sla_text, sla_tooltip

log = logging.getLogger(__name__)

__all__ = [
    "SLA_VIEWS",
    "VIEW_LABELS",
    "Column",
    "QueueModel",
    "QueueQuery",
    "QueueRow",
    "SavedView",
    "SlaStateRole",
    "TicketIdRole",
    "fetch_keys",
    "queue_key",
]

HEADERS: dict[Column, tuple[str, str]] = {
    Column.TIER: ("Tier", "Severity tier (1 = production down); untriaged: the stated urgency"),
    Column.SLA: ("SLA", "Business time left to the first-response target"),
    Column.PLAN: ("Plan", "The organisation's support plan"),
    Column.ORGANISATION: ("Organisation", "The customer organisation"),
    Column.REQUESTER: ("Requester", "Who asked; ✓ validated support contact, ⚠ not validated"),
    Column.SUBJECT: ("Subject", ""),
    Column.CHANNEL: ("Channel", "Where the request came in"),
    Column.LEVEL: ("Level", "Level 1 general usage, Level 2 API/SSO/integrations"),
    Column.STATUS: ("Status", ""),
    Column.ASSIGNEE: ("Assignee", ""),
    Column.AGE: ("Age", "Wall-clock time since the request arrived"),
}

#: Custom roles: the row's ticket id (uuid.UUID) and its SLA state (an SlaState value string, or
#: None; Qt hands a str subclass back as a plain str).
TicketIdRole = int(Qt.ItemDataRole.UserRole) + 1
SlaStateRole = int(Qt.ItemDataRole.UserRole) + 2

_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_ALIGN = int(Qt.ItemDataRole.TextAlignmentRole)
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren
_ROLES = frozenset({_DISPLAY, _TOOLTIP, _FOREGROUND, _ALIGN, TicketIdRole, SlaStateRole})
_ROOT = QModelIndex()


def _engine_of(source: Engine | sessionmaker[Any]) -> Engine:
    if isinstance(source, Engine):
        return source
    bind = source.kw.get("bind")
    if not isinstance(bind, Engine):
        raise TypeError("the sessionmaker must be bound to an Engine")
    return bind


class _Gone:
    """Cache marker: the row vanished from the replica before the sync said so."""


_GONE = _Gone()


# ----------------------------------------------------------------------------------- model


class QueueModel(QAbstractTableModel):
    """The queue's table model. See the module docstring for how it stays fast."""

    #: True while a re-query runs on the worker thread.
    loadingChanged = Signal(bool)
    #: A re-query's result was applied (the rows now match the current query).
    queryApplied = Signal()
    #: A re-query (or re-reading a pull's tickets) failed; the message is for a status line
    #: (details are logged).
    queryFailed = Signal(str)
    #: Every change given to :meth:`apply_changes` so far is on screen.
    changesApplied = Signal()

    BLOCK = 200
    CACHE_ROWS = 4000
    RESET_SHARE = Fraction(1, 5)
    MAX_RUNS = 256
    #: apply_changes with at most this many ids never re-queries, whatever the queue size.
    SMALL_CHANGE = 50
    COUNTDOWN_MS = 1000
    SLA_VIEW_REFRESH_MS = 60_000

    def __init__(
        self,
        source: Engine | sessionmaker[Any],
        *,
        user_id: uuid.UUID | None = None,
        tenant_id: uuid.UUID | None = None,
        view: SavedView = SavedView.ALL_OPEN,
        sla_clock: SlaClock | None = None,
        now: Callable[[], datetime] | None = None,
        asynchronous: bool = True,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._engine = _engine_of(source)
        self._now_fn = now or (lambda: datetime.now(UTC))
        self.sla_clock = sla_clock or SlaClock()
        self._async = asynchronous
        self._query = QueueQuery(view=view, user_id=user_id, tenant_id=tenant_id)
        self._wanted = self._query
        self._keys: list[Key] = []
        self._pos: dict[bytes, Key] = {}
        self._desc = False
        self._rows: OrderedDict[bytes, QueueRow | _Gone] = OrderedDict()
        self._last: tuple[Key, QueueRow | None] | None = None
        self._generation = 0
        #: Bumped by every change of the key list, so a diff computed off-thread against a
        #: snapshot is only used if the list is still that snapshot.
        self._version = 0
        self._loading = False
        self._pending: set[uuid.UUID] = set()
        #: Changed tickets waiting for the worker, and the worker's batch in flight (True while
        #: a synchronous one runs).
        self._changes: set[uuid.UUID] = set()
        self._change_op: background.Operation[PullPlan] | bool | None = None
        self._applied_after_changes = False
        self._ops: set[background.Operation[Any]] = set()
        #: Blocks of rows being read (their first list index), and a count of the times
        #: cached rows were dropped: a block read across one is not cached (it may be older).
        self._blocks: set[int] = set()
        self._epoch = 0
        self._visible: tuple[int, int] | None = None
        self._palette: QPalette = QGuiApplication.palette()
        self._colours: dict[SlaState | None, QColor | None] = {}
        self._muted = self._palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        self._timer = QTimer(self)
        self._timer.setInterval(self.COUNTDOWN_MS)
        self._timer.timeout.connect(self.tick)
        self._membership_timer = QTimer(self)
        self._membership_timer.setInterval(self.SLA_VIEW_REFRESH_MS)
        self._membership_timer.timeout.connect(self._refresh_sla_view)
        self._request(self._query)

    # ------------------------------------------------------------------ Qt model interface

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._keys)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(Column)

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        return _FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(Column):
            return None
        if role == _DISPLAY:
            return HEADERS[Column(section)][0]
        if role == _TOOLTIP:
            return HEADERS[Column(section)][1] or None
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        # Hot path: a repaint asks ~7 roles of every visible cell. Roles this model never
        # provides, and cells without a colour or alignment, return before any row lookup.
        if role not in _ROLES:
            return None
        col = index.column()
        if role == _ALIGN:
            return _RIGHT if col == Column.SLA or col == Column.AGE else None
        if role == _FOREGROUND and col != Column.SLA and col != Column.ASSIGNEE:
            return None
        n = len(self._keys)
        r = index.row()
        if not 0 <= r < n or not index.isValid():
            return None
        i = n - 1 - r if self._desc else r
        row = self._row_at(i)
        if row is None:
            if role == TicketIdRole and self._rows.get(kid(self._keys[i])) is None:
                # Still being read (not gone from the replica): the key knows the ticket.
                return uuid.UUID(bytes=kid(self._keys[i]))
            return "…" if role == _DISPLAY else None
        if role == TicketIdRole:
            return row.id
        if role == _DISPLAY:
            if col == Column.SLA:
                return sla_text(self._sla(row))
            if col == Column.AGE:
                return age_text(row.arrived_at, self._now_fn())
            return row.display[col]
        if role == _FOREGROUND:
            if col == Column.SLA:
                status = self._sla(row)
                return self._colour(status.state if status else None)
            return self._muted if row.assignee_id is None else None
        if role == _TOOLTIP:
            if col == Column.SLA:
                now = self._now_fn()
                plan = self.sla_clock.plan(row.plan_id)
                return sla_tooltip(
                    self._sla(row),
                    tier=row.urgency,
                    triaged=row.tier is not None,
                    calendar=self.sla_clock.calendar(row.plan_id),
                    plan_name=plan.name if plan else None,
                    now=now,
                )
            return row.tooltip(col)
        status = self._sla(row)  # SlaStateRole
        return status.state.value if status else None

    def _colour(self, state: SlaState | None) -> QColor | None:
        if state not in self._colours:
            self._colours[state] = sla_colour(state, self._palette)
        return self._colours[state]

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Column sorts keep the queue order among equal values; -1 is the queue order."""
        if column >= len(Column):
            return
        descending = order == Qt.SortOrder.DescendingOrder and column >= 0
        self._change(sort_column=max(column, -1), descending=descending)

    # ------------------------------------------------------------------ public API

    def query(self) -> QueueQuery:
        """The query whose rows are shown (a newer one may be loading)."""
        return self._query

    def view(self) -> SavedView:
        return self._wanted.view

    def set_view(self, view: SavedView) -> None:
        self._change(view=SavedView(view))

    def search(self) -> str:
        return self._wanted.search

    def set_search(self, text: str) -> None:
        """Filter as typed (the view debounces keystrokes); words must all match somewhere."""
        self._change(search=" ".join(text.split()))

    def set_user_id(self, user_id: uuid.UUID | None) -> None:
        self._change(user_id=user_id)

    def scope(self) -> TicketFilter | None:
        return self._wanted.scope

    def set_scope(self, scope: TicketFilter | None) -> None:
        """List exactly a dashboard figure's tickets (with the view and search as they are:
        the caller picks "All open" and clears the search for an exact click-through)."""
        self._change(scope=scope)

    def reset_order(self) -> None:
        """Back to the queue order (seed 003)."""
        self._change(sort_column=-1, descending=False)

    def sort_column(self) -> int:
        return self._wanted.sort_column

    def is_loading(self) -> bool:
        return self._loading

    def refresh(self) -> None:
        """Re-read the whole list (applied as a diff, or a reset when much changed)."""
        self._request(self._wanted)

    def ticket_id(self, row: int) -> uuid.UUID | None:
        n = len(self._keys)
        if not 0 <= row < n:
            return None
        return uuid.UUID(bytes=kid(self._keys[n - 1 - row if self._desc else row]))

    def row_of(self, ticket_id: uuid.UUID) -> int | None:
        """The ticket's row, or None when it is not listed. O(log n)."""
        key = self._pos.get(ticket_id.bytes)
        if key is None:
            return None
        return self._row_of_index(self._index_of_key(key))

    def set_visible_rows(self, first: int, last: int) -> None:
        """The view's visible row range: only these get the 1 s countdown repaint."""
        if first < 0 or last < first:
            self._visible = None
            self._timer.stop()
            return
        self._visible = (first, last)
        if not self._timer.isActive():
            self._timer.start()

    def set_palette(self, palette: QPalette) -> None:
        """Follow a light/dark palette switch: the SLA colours depend on it."""
        self._palette = QPalette(palette)
        self._colours = {}
        self._muted = self._palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        self._emit_all_changed([_FOREGROUND])

    def tick(self) -> None:
        """Repaint the countdown (SLA) and age cells of the visible rows."""
        if self._visible is None or not self._keys:
            return
        last_row = len(self._keys) - 1
        first, last = min(self._visible[0], last_row), min(self._visible[1], last_row)
        for col in (Column.SLA, Column.AGE):
            self.dataChanged.emit(
                self.index(first, col), self.index(last, col), [_DISPLAY, _FOREGROUND, _TOOLTIP]
            )

    def invalidate_lookups(self) -> None:
        """Plans, calendars, organisations, contacts or users changed: re-read what shows them.

        Visible rows re-read lazily after one ``dataChanged`` over the table; the key list is
        re-queried (as a diff) too, since a rename can change a search match or a column sort.
        The plans and calendars are re-read on a worker first (the GUI thread never reads the
        replica); until then the rows show what they showed.
        """
        engine, clock = self._engine, self.sla_clock

        def load() -> None:
            with engine.connect() as conn:
                clock.load(conn)

        if not self._async:
            load()
            self._lookups_loaded()
            return

        def done(result: object) -> None:
            if not shiboken6.isValid(self):
                return  # the model was deleted while the worker read
            QTimer.singleShot(0, self, lambda: self._ops.discard(op))
            if isinstance(result, Exception):  # the rows are still re-read: names may differ
                log.error("re-reading plans and calendars failed: %s", result, exc_info=result)
            self._lookups_loaded()

        op: background.Operation[None] = background.Operation(
            load, on_success=done, on_failure=done
        )
        self._ops.add(op)
        op.start()

    def _lookups_loaded(self) -> None:
        self._rows.clear()
        self._epoch += 1
        self._last = None
        self._emit_all_changed([])
        self._request(self._wanted)

    def apply_changes(self, changed_ticket_ids: Iterable[uuid.UUID]) -> None:
        """A sync pull changed these tickets (rows, events or waiting periods): update in place.

        Call it on the GUI thread (from a pull running elsewhere, through a queued signal), after
        the pull's transaction committed. The rows are re-read, and the changes planned, on a
        worker (:func:`~agentdesk.queries.queue_rows.read_changes`,
        :func:`~agentdesk.queries.queue_diff.plan_pull`); :attr:`changesApplied` says when
        they are on screen.

        Emits ``rowsMoved``/``rowsRemoved``/``rowsInserted``/``dataChanged`` for the affected
        rows only (many moved rows: one layout change instead). More than 20% of the rows (and
        more than :attr:`SMALL_CHANGE`): one re-query instead, applied as a diff or a reset
        (see :mod:`agentdesk.queries.queue_diff`).
        """
        ids = {t if isinstance(t, uuid.UUID) else uuid.UUID(str(t)) for t in changed_ticket_ids}
        if not ids:
            return
        if self._loading:
            self._pending |= ids  # the list in flight may predate these: applied after it
            return
        if len(ids) > max(Fraction(self.SMALL_CHANGE), len(self._keys) * self.RESET_SHARE):
            for tid in ids:
                self._forget(tid.bytes)
            self._request(self._wanted)
            return
        self._changes |= ids
        if self._change_op is None:
            self._start_changes()

    def _start_changes(self) -> None:
        """Re-read and plan the waiting changes on the worker; one batch in flight at a time."""
        ids, self._changes = frozenset(self._changes), set()
        engine, clock, query, now = self._engine, self.sla_clock, self._query, self._now_fn()
        version, limit = self._version, self.SMALL_CHANGE
        snapshot = list(self._keys)  # the GUI thread edits its list in place meanwhile
        pos, old = self._pos, {}
        for tid in ids:  # UUID.bytes is a Python property: read once per ticket
            k = tid.bytes
            key = pos.get(k)
            if key is not None:
                old[k] = key

        def work() -> PullPlan:
            with engine.connect() as conn:
                rows = read_changes(conn, clock, query, list(ids), now)
            return plan_pull(query, snapshot, old, ids, rows, version, limit)

        if not self._async:
            self._change_op = True
            try:
                plan = work()
            finally:
                self._change_op = None
            self._changes_planned(plan)
            return

        def finished(result: object) -> None:
            if not shiboken6.isValid(self):
                return  # the model was deleted while the worker read
            QTimer.singleShot(0, self, lambda: self._ops.discard(op))
            if isinstance(result, Exception):
                self._change_op = None
                log.error("re-reading changed tickets failed: %s", result, exc_info=result)
                for tid in ids:
                    self._forget(tid.bytes)
                self.queryFailed.emit(str(result) or type(result).__name__)
                self._after_changes()
                return
            assert isinstance(result, PullPlan)
            self._changes_planned(result)

        op: background.Operation[PullPlan] = background.Operation(
            work, on_success=finished, on_failure=finished
        )
        self._change_op = op
        self._ops.add(op)
        op.start()

    def _changes_planned(self, plan: PullPlan) -> None:
        self._change_op = None
        if self._loading:
            self._pending |= plan.ids  # a re-query replaces the list: applied after it
        elif plan.query != self._query or (
            plan.keys is not None and plan.base_version != self._version
        ):
            self._changes |= plan.ids  # read for another query, or planned on an old list
        else:
            self._apply_pull(plan)
        self._after_changes()

    def _after_changes(self) -> None:
        if self._loading:  # a re-query replaces the list: these are applied after it
            self._pending |= self._changes
            self._changes = set()
        if self._changes:
            self._start_changes()
            return
        if self._change_op is None and not self._changes:
            self.changesApplied.emit()
            if self._applied_after_changes and not self._loading:
                self._applied_after_changes = False
                self.queryApplied.emit()

    def _apply_pull(self, plan: PullPlan) -> None:
        """Replay a pull's planned changes as signals (see :class:`PullPlan`)."""
        for tid in plan.ids:
            entry = plan.rows.get(tid.bytes)
            if entry is not None and entry.key is not None:
                self._cache(tid.bytes, entry.row)
            else:
                self._forget(tid.bytes)
        if plan.keys is not None:
            assert plan.membership is not None
            assert plan.moved is not None
            self._apply_plan(plan.membership, forget=False)
            pos = self._pos  # the runs updated it for the rows that left or joined
            for key in plan.moved:
                pos[kid(key)] = key
            self._relayout(plan.keys, self._desc, pos)
            self._emit_all_changed([])
            return
        for tid in sorted(plan.ids, key=lambda t: t.bytes):
            k = tid.bytes
            old = self._pos.get(k)
            entry = plan.rows.get(k)
            new = entry.key if entry is not None else None
            if old is None and new is None:
                continue
            if new is None:
                assert old is not None
                self._remove_range(self._index_of_key(old), 1)
            elif old is None:
                self._insert_range(bisect.bisect_left(self._keys, new), [new])
            else:
                r_final = self._move(self._index_of_key(old), new)
                self.dataChanged.emit(
                    self.index(r_final, 0), self.index(r_final, len(Column) - 1), []
                )

    # ------------------------------------------------------------------ re-queries

    def _change(self, **changes: Any) -> None:
        query = replace(self._wanted, **changes)
        if query != self._wanted:
            self._request(query)

    def _refresh_sla_view(self) -> None:
        if not self._loading and self._wanted.view in SLA_VIEWS:
            self._request(self._wanted)

    def _request(self, query: QueueQuery) -> None:
        """Fetch the query's keys on the worker, with everything O(n) about applying them
        (the id index, the diff against the list on screen) computed there too: the GUI
        thread then only emits the signals."""
        self._wanted = query
        self._generation += 1
        generation = self._generation
        engine, clock, now = self._engine, self.sla_clock, self._now_fn()
        base_version, mode = self._version, apply_mode(self._query, query)
        snapshot = list(self._keys) if mode != "reset" else []

        def work() -> Fetched:
            with engine.connect() as conn:
                keys = fetch_keys(conn, clock, query, now)
            return prepare(query, keys, snapshot, base_version, mode)

        if not self._async:
            self._install(work())
            return
        self._set_loading(True)

        def finished(result: object) -> None:
            if not shiboken6.isValid(self):
                return  # the model was deleted (its window closed) while the query ran
            # Dropped on the next loop iteration, never inside its own signal emission.
            QTimer.singleShot(0, self, lambda: self._ops.discard(op))
            if generation != self._generation:
                return  # superseded by a newer request
            self._set_loading(False)
            if isinstance(result, Exception):
                log.error("queue query failed: %s", result, exc_info=result)
                self.queryFailed.emit(str(result) or type(result).__name__)
                return
            assert isinstance(result, Fetched)
            self._install(result)

        op: background.Operation[Fetched] = background.Operation(
            work, on_success=finished, on_failure=finished
        )
        self._ops.add(op)
        op.start()

    def _set_loading(self, loading: bool) -> None:
        if loading != self._loading:
            self._loading = loading
            self.loadingChanged.emit(loading)

    def _install(self, fetched: Fetched) -> None:
        self._applied_after_changes = False
        query, keys = fetched.query, fetched.keys
        if fetched.base_version != self._version:
            # The list changed while the query ran (a sync pull): redo the O(n) part here.
            fetched = prepare(
                query, keys, self._keys, self._version, apply_mode(self._query, query)
            )
        self._query = query
        desc = query.descending and query.sort_column >= 0
        if fetched.mode == "reset":
            self._reset(keys, desc, fetched.pos)
        elif fetched.mode == "layout":
            if fetched.same_rows:
                self._relayout(keys, desc, fetched.pos)
            else:
                self._reset(keys, desc, fetched.pos)
        else:
            plan = fetched.plan
            assert plan is not None
            n_old, n_new = len(self._keys), len(keys)
            if not plan.changed:
                pass
            elif (
                not n_old
                or not n_new
                or plan.changed > self.RESET_SHARE * max(n_old, n_new)
                or plan.runs > self.MAX_RUNS
            ):
                self._reset(keys, desc, fetched.pos)
            else:
                self._apply_plan(plan)
        if query.view in SLA_VIEWS:
            if not self._membership_timer.isActive():
                self._membership_timer.start()
        else:
            self._membership_timer.stop()
        pending, self._pending = self._pending, set()
        if pending:
            # queryApplied once these are on screen too: the rows then match the query.
            self._applied_after_changes = True
            self.apply_changes(pending)
            if self._loading:  # they re-query: that result's install says it
                self._applied_after_changes = False
        else:
            self.queryApplied.emit()

    def _reset(self, keys: list[Key], desc: bool, pos: dict[bytes, Key]) -> None:
        self.beginResetModel()
        self._keys = keys
        self._desc = desc
        self._pos = pos
        self._version += 1
        self.endResetModel()

    def _relayout(self, keys: list[Key], desc: bool, pos: dict[bytes, Key]) -> None:
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        ids = [self.ticket_id(p.row()) if p.isValid() else None for p in persistent]
        self._keys = keys
        self._desc = desc
        self._pos = pos
        self._version += 1
        moved = []
        for p, tid in zip(persistent, ids, strict=True):
            row = self.row_of(tid) if tid is not None else None
            moved.append(self.index(row, p.column()) if row is not None else QModelIndex())
        self.changePersistentIndexList(persistent, moved)
        self.layoutChanged.emit()

    def _apply_plan(self, plan: DiffPlan, *, forget: bool = True) -> None:
        """Removal runs from the end (earlier indices stay valid), then insertion runs in
        ascending order (each lands where the new list has it). ``forget``: drop the inserted
        rows' cached cells (a re-query's rows may have changed while not listed; a pull's
        were just re-read)."""
        for start, count in reversed(plan.removals):
            self._remove_range(start, count)
        for start, new_keys in plan.insertions:
            if forget:
                for key in new_keys:
                    self._forget(kid(key))
            self._insert_range(start, new_keys)

    # ------------------------------------------------------------------ list surgery

    def _row_of_index(self, i: int, n: int | None = None) -> int:
        n = len(self._keys) if n is None else n
        return n - 1 - i if self._desc else i

    def _index_of_key(self, key: Key) -> int:
        i = bisect.bisect_left(self._keys, key)
        if i >= len(self._keys) or self._keys[i] != key:
            raise LookupError("key not in the list")  # the list and _pos disagree: a bug
        return i

    def _remove_range(self, start: int, count: int) -> None:
        n = len(self._keys)
        if self._desc:
            first, last = n - start - count, n - start - 1
        else:
            first, last = start, start + count - 1
        self.beginRemoveRows(QModelIndex(), first, last)
        for key in self._keys[start : start + count]:
            self._pos.pop(kid(key), None)
        del self._keys[start : start + count]
        self._version += 1
        self.endRemoveRows()

    def _insert_range(self, start: int, keys: list[Key]) -> None:
        n, count = len(self._keys), len(keys)
        if self._desc:
            first, last = n - start, n - start + count - 1
        else:
            first, last = start, start + count - 1
        self.beginInsertRows(QModelIndex(), first, last)
        self._keys[start:start] = keys
        for key in keys:
            self._pos[kid(key)] = key
        self._version += 1
        self.endInsertRows()

    def _move(self, src: int, new_key: Key) -> int:
        """Give the key at list index ``src`` a new key, moving its row; returns the final row."""
        n = len(self._keys)
        dst = bisect.bisect_left(self._keys, new_key)
        if dst > src:
            dst -= 1
        k = kid(new_key)
        self._version += 1
        if dst == src:
            self._keys[src] = new_key
            self._pos[k] = new_key
            return self._row_of_index(src)
        src_row, final_row = self._row_of_index(src, n), self._row_of_index(dst, n)
        destination = final_row + 1 if final_row > src_row else final_row
        ok = self.beginMoveRows(QModelIndex(), src_row, src_row, QModelIndex(), destination)
        if not ok:  # cannot happen for a single row moving elsewhere; stay correct anyway
            raise RuntimeError(f"Qt refused to move row {src_row} to {destination}")
        del self._keys[src]
        self._keys.insert(dst, new_key)
        self._pos[k] = new_key
        self.endMoveRows()
        return final_row

    def _emit_all_changed(self, roles: list[int]) -> None:
        if self._keys:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._keys) - 1, len(Column) - 1), roles
            )

    # ------------------------------------------------------------------ row cache

    def _cache(self, k: bytes, row: QueueRow | _Gone) -> None:
        self._last = None
        self._rows[k] = row
        self._rows.move_to_end(k)
        while len(self._rows) > self.CACHE_ROWS:
            self._rows.popitem(last=False)

    def _row_at(self, i: int) -> QueueRow | None:
        key = self._keys[i]
        last = self._last
        if last is not None and last[0] is key:  # a view asks for every role of every cell
            return last[1]
        k = kid(key)
        row = self._rows.get(k)
        if row is None:
            self._fetch_block(i)
            row = self._rows.get(k)
        else:
            self._rows.move_to_end(k)
        found = row if isinstance(row, QueueRow) else None
        self._last = (key, found)
        return found

    def _forget(self, k: bytes) -> None:
        self._rows.pop(k, None)
        self._last = None
        self._epoch += 1

    def _fetch_block(self, i: int) -> None:
        """Read the block of rows around list index ``i`` that are not cached, in one query.

        Asynchronous (the application's model): on a worker, the cells showing "…" until the
        rows arrive, then one ``dataChanged`` repaints them. A block read holds the GIL tens
        of milliseconds (two hundred rows and their SLA clocks), too long for the GUI thread.
        """
        start = i - i % self.BLOCK
        if start in self._blocks:
            return  # already on its way
        wanted = [
            uuid.UUID(bytes=kid(k))
            for k in self._keys[start : start + self.BLOCK]
            if kid(k) not in self._rows
        ]
        if not wanted:
            return
        engine, clock = self._engine, self.sla_clock
        if not self._async:
            with engine.connect() as conn:
                found = read_rows(conn, clock, wanted)
            for tid in wanted:
                self._cache(tid.bytes, found.get(tid.bytes, _GONE))
            return
        epoch = self._epoch

        def read() -> dict[bytes, QueueRow]:
            with engine.connect() as conn:
                return read_rows(conn, clock, wanted)

        def done(result: object) -> None:
            if not shiboken6.isValid(self):
                return  # the model was deleted while the worker read
            QTimer.singleShot(0, self, lambda: self._ops.discard(op))
            self._blocks.discard(start)
            if isinstance(result, Exception):
                log.error("reading queue rows failed: %s", result, exc_info=result)
                self.queryFailed.emit(str(result) or type(result).__name__)
                return
            assert isinstance(result, dict)
            if epoch == self._epoch:  # else a pull or a lookup change forgot rows meanwhile
                for tid in wanted:
                    if tid.bytes not in self._rows:  # a pull's newer read stays
                        self._cache(tid.bytes, result.get(tid.bytes, _GONE))
            # The rows may have moved meanwhile: repaint what is visible (the view asks
            # again, and reads what is still missing).
            self._emit_all_changed([])

        self._blocks.add(start)
        op: background.Operation[dict[bytes, QueueRow]] = background.Operation(
            read, on_success=done, on_failure=done
        )
        self._ops.add(op)
        op.start()

    def _sla(self, row: QueueRow) -> SlaStatus | None:
        now = self._now_fn()
        second = int(now.timestamp())
        if row.sla_second != second:
            row.sla_status = self.sla_clock.status(row.inputs, now)
            row.sla_second = second
        return row.sla_status
