"""The work-queue widget: saved-view selector, search box and the ticket table.

A thin view over :class:`~agentdesk.ui.queue.model.QueueModel` (no proxy model: filtering and
sorting happen in SQL on the model's worker, see that module). What this widget adds:

* **Search as you type, debounced.** Keystrokes restart a 150 ms timer; only the pause sends the
  text to the model, whose query runs off the GUI thread. Typing "invoice" is one query, not seven.
* **Only visible rows tick.** After every scroll, resize or row change the widget tells the model
  which rows are on screen; the model's 1 s countdown repaints just those SLA and Age cells.
* **Keyboard first.** J/K move down/up (the arrows work natively), Enter or a double click emits
  :attr:`QueueView.openRequested` with the ticket id, Ctrl+F focuses the search box, Escape in the
  search box clears it and a second Escape (or Down) returns to the table.
* **The default order is one click away**: the "Queue order" button, or clicking a sorted
  header until its indicator clears (seed 003's order: tier, plan, arrival).
* **The current ticket survives re-queries.** Diffs keep the selection by themselves; across a
  reset (another saved view, a large change) the widget re-selects the same ticket if it is
  still listed.
* **The selection never moves by itself.** When the current ticket's row leaves the list
  (resolved, changed on another desktop), Qt would make a neighbour current and the panels
  would follow it; the widget clears the current row instead, so the agent's ticket stays on
  show until they pick another.
* **The subject is never cut off** by default: it stands third, after tier and SLA, so it
  fits a laptop's half screen (issue 15).
* Column widths and order are saved with :meth:`QueueView.header_state` and restored with
  :meth:`QueueView.restore_header_state`; the main window keeps them in QSettings.

Qt's type-to-search (``keyboardSearch``) is switched off: it walks rows calling ``data()`` and
would read the whole queue from the replica.
"""

from __future__ import annotations

import uuid

from PySide6.QtCore import (
    QByteArray,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QHideEvent, QKeyEvent, QKeySequence, QResizeEvent, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..icons import icon
from .model import VIEW_LABELS, Column, QueueModel, SavedView, TicketIdRole

__all__ = ["QueueTable", "QueueView"]

#: Default column widths in pixels.
DEFAULT_WIDTHS: dict[Column, int] = {
    Column.TIER: 48,
    Column.SLA: 120,
    Column.PLAN: 90,
    Column.ORGANISATION: 170,
    Column.REQUESTER: 190,
    Column.SUBJECT: 340,
    Column.CHANNEL: 70,
    Column.LEVEL: 48,
    Column.STATUS: 130,
    Column.ASSIGNEE: 130,
    Column.AGE: 60,
}
#: Where the subject stands by default: right after the urgency and the clock, so that on a
#: laptop's half screen (about 560 px at 1366x768) what the ticket is about is never cut off.
#: The agent may move it; the moved order is saved with the widths.
SUBJECT_POSITION = 2


class QueueTable(QTableView):
    """The table itself, with the queue's keys."""

    openRequested = Signal(object)
    #: The table was resized (so its viewport may show other rows).
    resized = Signal()

    def resizeEvent(self, event: QResizeEvent) -> None:
        # Not an event filter on the viewport: that would call into Python (and wait for the
        # GIL) on every paint and mouse move of the table.
        super().resizeEvent(event)
        self.resized.emit()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        plain = modifiers == Qt.KeyboardModifier.NoModifier
        if plain and key in (Qt.Key.Key_J, Qt.Key.Key_K):
            self.step(1 if key == Qt.Key.Key_J else -1)
            event.accept()
            return
        if plain and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._open(self.currentIndex())
            event.accept()
            return
        super().keyPressEvent(event)

    def keyboardSearch(self, search: str) -> None:
        """Disabled: it would call data() on row after row and load the whole queue."""

    def step(self, delta: int) -> None:
        """Move the current row by ``delta``, keeping it visible."""
        model = self.model()
        rows = model.rowCount() if model is not None else 0
        if not rows:
            return
        current = self.currentIndex()
        row = current.row() + delta if current.isValid() else 0
        row = max(0, min(rows - 1, row))
        index = model.index(row, max(current.column(), 0))
        flags = (
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows
        )
        self.selectionModel().setCurrentIndex(index, flags)
        self.scrollTo(index)

    def _open(self, index: QModelIndex) -> None:
        if index.isValid():
            ticket_id = index.siblingAtColumn(0).data(TicketIdRole)
            if ticket_id is not None:
                self.openRequested.emit(ticket_id)


class QueueView(QWidget):
    """The queue panel of the main window."""

    #: A ticket should open (Enter or double click): the ``uuid.UUID`` of the ticket.
    openRequested = Signal(object)

    SEARCH_DEBOUNCE_MS = 150

    def __init__(self, model: QueueModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self._restore_id: uuid.UUID | None = None
        self._losing_current = False

        self._views = QComboBox()
        self._views.setAccessibleName("Saved view")
        for view, text in VIEW_LABELS.items():
            self._views.addItem(text, view.value)
        self._views.setCurrentIndex(self._views.findData(model.view().value))
        self._views.currentIndexChanged.connect(self._view_chosen)

        self._search = QLineEdit()
        self._search.setPlaceholderText(
            "Search subject, organisation, requester, assignee (Ctrl+F)"
        )
        self._search.setClearButtonEnabled(True)
        self._search.setAccessibleName("Search the queue")
        self._search.installEventFilter(self)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(self.SEARCH_DEBOUNCE_MS)
        self._debounce.timeout.connect(self.flush_search)
        self._search.textChanged.connect(lambda _text: self._debounce.start())

        self._order = QToolButton()
        self._order.setText("Queue order")
        self._order.setToolTip("Back to the queue order: tier, then plan, then arrival")
        self._order.clicked.connect(self.reset_order)
        self._order.setIcon(icon("queue-order"))
        self._order.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)

        self._status = QLabel()
        self._status.setAccessibleName("Queue status")

        # A dashboard figure's filter: visible while it applies, removable with one click.
        self._scope_label = QLabel()
        self._scope_label.setTextFormat(Qt.TextFormat.PlainText)
        self._scope_label.setAccessibleName("Dashboard filter")
        self._scope_clear = QToolButton()
        self._scope_clear.setText("Remove filter")
        self._scope_clear.setToolTip("Show the whole view again")
        self._scope_clear.clicked.connect(lambda: self._model.set_scope(None))
        self._scope_bar = QWidget()
        self._scope_bar.setObjectName("scopeBar")
        scope_row = QHBoxLayout(self._scope_bar)
        scope_row.setContentsMargins(0, 0, 0, 0)
        scope_row.addWidget(self._scope_label, 1)
        scope_row.addWidget(self._scope_clear)
        self._scope_bar.setVisible(False)

        self._table = QueueTable()
        # Before setModel: this must see the current row before the selection model moves it
        # to a neighbour (slots run in connection order).
        model.rowsAboutToBeRemoved.connect(self._rows_about_to_go)
        self._table.setModel(model)
        self._configure_table()
        self._table.openRequested.connect(self.openRequested)
        self._table.doubleClicked.connect(self._table._open)

        bar = QHBoxLayout()
        bar.addWidget(self._views)
        bar.addWidget(self._search, 1)
        bar.addWidget(self._order)
        bar.addWidget(self._status)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self._scope_bar)
        layout.addWidget(self._table, 1)

        find = QShortcut(QKeySequence(QKeySequence.StandardKey.Find), self)
        find.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        find.activated.connect(self.focus_search)

        for signal in (
            model.rowsInserted,
            model.rowsRemoved,
            model.modelReset,
            model.layoutChanged,
            model.rowsMoved,
        ):
            signal.connect(self._rows_changed)
        model.loadingChanged.connect(lambda _loading: self._update_status())
        model.queryFailed.connect(self._query_failed)
        model.modelAboutToBeReset.connect(self._remember_current)
        model.modelReset.connect(self._restore_current)
        model.rowsRemoved.connect(self._rows_gone)
        self._table.verticalScrollBar().valueChanged.connect(self.update_visible_rows)
        self._table.resized.connect(lambda: QTimer.singleShot(0, self, self.update_visible_rows))
        self._update_status()

    # ------------------------------------------------------------------ public API

    def model(self) -> QueueModel:
        return self._model

    def table(self) -> QueueTable:
        return self._table

    def search_box(self) -> QLineEdit:
        return self._search

    def view_selector(self) -> QComboBox:
        return self._views

    def set_view(self, view: SavedView) -> None:
        self._views.setCurrentIndex(self._views.findData(SavedView(view).value))

    def focus_search(self) -> None:
        self._search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self._search.selectAll()

    def flush_search(self) -> None:
        """Send the search text now (the debounce timer calls this)."""
        self._debounce.stop()
        self._model.set_search(self._search.text())

    def reset_order(self) -> None:
        self._table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self._model.reset_order()

    def current_ticket_id(self) -> uuid.UUID | None:
        index = self._table.currentIndex()
        return self._model.ticket_id(index.row()) if index.isValid() else None

    def select_ticket(self, ticket_id: uuid.UUID) -> bool:
        row = self._model.row_of(ticket_id)
        if row is None:
            return False
        index = self._model.index(row, 0)
        flags = (
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows
        )
        self._table.selectionModel().setCurrentIndex(index, flags)
        self._table.scrollTo(index)
        return True

    def header_state(self) -> QByteArray:
        """Column widths, order and sort indicator, for QSettings."""
        return self._table.horizontalHeader().saveState()

    def restore_header_state(self, state: QByteArray | bytes) -> bool:
        """Restore :meth:`header_state`; False (and nothing changed) for unusable data."""
        header = self._table.horizontalHeader()
        ok = header.restoreState(QByteArray(state))
        if ok and header.count() != len(Column):  # saved by a build with other columns
            self._set_default_widths()
            return False
        if ok:  # the saved sort comes back with the state: make the model follow it
            self._model.sort(header.sortIndicatorSection(), header.sortIndicatorOrder())
        return ok

    def update_visible_rows(self) -> None:
        """Tell the model which rows are on screen (only those get the countdown repaint)."""
        if not self.isVisible() or self._model.rowCount() == 0:
            self._model.set_visible_rows(-1, -1)
            return
        viewport = self._table.viewport()
        first = self._table.rowAt(0)
        last = self._table.rowAt(viewport.height() - 1)
        if first < 0:
            self._model.set_visible_rows(-1, -1)
            return
        if last < 0:
            last = self._model.rowCount() - 1
        self._model.set_visible_rows(first, last)

    # ------------------------------------------------------------------ Qt overrides

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._search and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            key = event.key()
            if key == Qt.Key.Key_Escape:
                if self._search.text():
                    self._search.clear()
                    self.flush_search()
                else:
                    self._table.setFocus(Qt.FocusReason.OtherFocusReason)
                return True
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.flush_search()
                self._table.setFocus(Qt.FocusReason.OtherFocusReason)
                if not self._table.currentIndex().isValid():
                    self._table.step(0)
                return True
        return super().eventFilter(watched, event)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        QTimer.singleShot(0, self, self.update_visible_rows)

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._model.set_visible_rows(-1, -1)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._model.set_palette(self.palette())
        super().changeEvent(event)

    # ------------------------------------------------------------------ internals

    def _configure_table(self) -> None:
        table = self._table
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setWordWrap(False)
        table.setTextElideMode(Qt.TextElideMode.ElideRight)
        table.setShowGrid(False)
        table.setAlternatingRowColors(True)
        vertical = table.verticalHeader()
        vertical.hide()
        # Fixed row heights: with 100k rows anything measuring content would read every row.
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(table.fontMetrics().height() + 8)
        header = table.horizontalHeader()
        header.setSectionsMovable(True)
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSortIndicatorClearable(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        table.setSortingEnabled(True)
        self._set_default_widths()

    def _set_default_widths(self) -> None:
        """The default layout: these widths, and the subject early (:data:`SUBJECT_POSITION`)."""
        header = self._table.horizontalHeader()
        for column, width in DEFAULT_WIDTHS.items():
            header.resizeSection(column, width)
        for logical in range(header.count()):  # the model's own order first
            header.moveSection(header.visualIndex(logical), logical)
        header.moveSection(header.visualIndex(Column.SUBJECT), SUBJECT_POSITION)

    def _view_chosen(self, _index: int) -> None:
        value = self._views.currentData()
        if value:
            self._model.set_view(SavedView(value))

    def _rows_changed(self) -> None:
        self._update_status()
        QTimer.singleShot(0, self, self.update_visible_rows)

    def scope_bar(self) -> tuple[QLabel, QToolButton]:
        return self._scope_label, self._scope_clear

    def _update_scope(self) -> None:
        scope = self._model.scope()
        self._scope_bar.setVisible(scope is not None)
        self._scope_label.setText(f"Filtered from the dashboard: {scope.label}" if scope else "")

    def _update_status(self) -> None:
        self._update_scope()
        if self._model.is_loading():
            self._status.setText("Loading…")
            return
        count = self._model.rowCount()
        self._status.setText(f"{count:,} ticket{'s' if count != 1 else ''}")

    def _query_failed(self, message: str) -> None:
        self._status.setText("Could not load the queue")
        self._status.setToolTip(message)

    def _rows_about_to_go(self, _parent: QModelIndex, first: int, last: int) -> None:
        current = self._table.currentIndex()
        self._losing_current = current.isValid() and first <= current.row() <= last

    def _rows_gone(self, *_args: object) -> None:
        if self._losing_current:
            self._losing_current = False
            self._table.selectionModel().clear()

    def _remember_current(self) -> None:
        self._restore_id = self.current_ticket_id()

    def _restore_current(self) -> None:
        ticket_id, self._restore_id = self._restore_id, None
        if ticket_id is not None:
            self.select_ticket(ticket_id)
