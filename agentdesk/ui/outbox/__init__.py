"""The Notifications view: what the team's emails did - queued, sent or failed, to whom, and why -
with a Retry for the failed ones.

Delivery state lives on the server only, so the view reads it through
:mod:`agentdesk.sync.outbox` on a worker thread (:mod:`agentdesk.ui.background`); the table model
is a thin adapter over the rows it gets back, and a retry replaces its one row in place. Leads
and admins open it from File > Email notifications…; the server answers nobody else (403), so
other roles do not get the menu entry. A refusal, a server out of reach or one that does not
send mail at all (no SMTP: local mode) is said above the table, in words.

The view starts with the newest page (500) of the chosen status; Load more adds the next older
page (the server's ``next`` cursor, so a page boundary is exact however many rows arrive
meanwhile). It keeps itself up to date while open: a pull that brought changes (the server
writes a notification in the transaction of the change that causes it, and a sent or failed
delivery adds a line to its ticket's history, so a pull follows every delivery about a ticket),
and a slow timer for what no pull announces (a retry's backoff, mail about no ticket), re-read
exactly the range the view holds (``through`` its last row) and merge it into the model: new
rows are inserted, changed ones updated, rows that left the filter removed, so the selection and
scroll position stay where they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ...models import Role
from ...policy import intake
from ...sync import outbox as api
from ...sync.client import ApiClient, Forbidden, Offline, Unauthorized
from .. import background
from ..panel_widgets import local_text
from ..shell.sync_bridge import ReplicaChange

__all__ = ["OUTBOX_ROLES", "OutboxDialog", "OutboxModel", "attach", "detach", "error_text"]

OUTBOX_ROLES = frozenset({Role.LEAD, Role.ADMIN})
#: After a pull that brought changes, refresh within this long (and at most this often).
REFRESH_DELAY_MS = 1500
#: And this often anyway while open, for what no pull announces.
REFRESH_EVERY_MS = 30_000

T = TypeVar("T")

Index = QModelIndex | QPersistentModelIndex

#: (header, what the column shows) - the order of the table's columns.
COLUMNS = ("Status", "Recipient", "Subject", "Ticket", "Attempts", "Last error", "Time")
STATUS_WORDS = {"queued": "Queued", "sending": "Sending", "sent": "Sent", "failed": "Failed"}
_FAILED_COLOUR = QColor("#c62828")


def error_text(exc: Exception) -> str:
    """Why the outbox could not be read or changed, in words a lead can act on."""
    if isinstance(exc, Forbidden):
        return f"Not allowed: only team leads and admins can see the email outbox ({exc.message})."
    if isinstance(exc, Unauthorized):
        return f"Signed out: sign in again to see the email outbox ({exc.message})."
    if isinstance(exc, Offline):
        return f"The server cannot be reached, so the outbox cannot be shown: {exc.message}"
    return f"Could not read the outbox: {getattr(exc, 'message', None) or exc}"


class OutboxModel(QAbstractTableModel):
    """The deliveries as rows; a retried delivery changes its own row only."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[api.Delivery] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation is Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        d = self._rows[index.row()]
        column = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(d, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == "Last error" and d.last_error:
                return d.last_error
            if column == "Subject":
                return d.subject
            if column == "Status" and d.status == "queued" and d.attempts:
                return f"Next attempt {local_text(d.next_attempt_at)}"
            return None
        if (
            role == Qt.ItemDataRole.ForegroundRole
            and d.status == "failed"
            and column in ("Status", "Last error")
        ):
            return _FAILED_COLOUR
        if role == Qt.ItemDataRole.UserRole:
            return d
        return None

    @staticmethod
    def _text(d: api.Delivery, column: str) -> str:
        if column == "Status":
            return STATUS_WORDS.get(d.status, d.status)
        if column == "Recipient":
            return f"{d.name} <{d.email}>" if d.name else d.email
        if column == "Subject":
            return d.subject
        if column == "Ticket":
            return intake.reference(str(d.ticket_id)) if d.ticket_id else "—"
        if column == "Attempts":
            return str(d.attempts)
        if column == "Last error":
            return d.last_error.splitlines()[0] if d.last_error else ""
        # Time: when it went out, else when it was written.
        return local_text(d.sent_at or d.created_at)

    def set_rows(self, rows: Sequence[api.Delivery]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def append(self, rows: Sequence[api.Delivery]) -> int:
        """Add an older page below the rows shown (any already shown are skipped); returns
        how many rows were added."""
        known = {d.id for d in self._rows}
        new = [d for d in rows if d.id not in known]
        if new:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self._rows.extend(new)
            self.endInsertRows()
        return len(new)

    def merge(self, rows: Sequence[api.Delivery]) -> None:
        """Show ``rows`` - the server's answer for the whole range shown, in its order - with
        the least change: rows no longer in it are removed, new ones inserted where the order
        puts them, changed ones updated in place. A delivery's place in the order never changes
        (its keys are fixed when it is written), so the rows kept are already in order."""
        wanted = {d.id for d in rows}
        end = len(self._rows)
        while end > 0:  # removals, bottom up, a block of neighbours at a time
            if self._rows[end - 1].id in wanted:
                end -= 1
                continue
            start = end - 1
            while start > 0 and self._rows[start - 1].id not in wanted:
                start -= 1
            self.beginRemoveRows(QModelIndex(), start, end - 1)
            del self._rows[start:end]
            self.endRemoveRows()
            end = start
        present = {d.id for d in self._rows}
        at = 0
        new_at = 0
        while new_at < len(rows):
            d = rows[new_at]
            if at < len(self._rows) and self._rows[at].id == d.id:
                if self._rows[at] != d:
                    self._rows[at] = d
                    self.dataChanged.emit(self.index(at, 0), self.index(at, len(COLUMNS) - 1))
                at += 1
                new_at += 1
                continue
            if d.id in present:  # out of order: not expected, but never show a wrong table
                self.set_rows(rows)
                return
            run_end = new_at
            while run_end < len(rows) and rows[run_end].id not in present:
                run_end += 1
            self.beginInsertRows(QModelIndex(), at, at + run_end - new_at - 1)
            self._rows[at:at] = rows[new_at:run_end]
            self.endInsertRows()
            at += run_end - new_at
            new_at = run_end

    def delivery(self, row: int) -> api.Delivery | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def replace(self, changed: api.Delivery) -> int | None:
        """Show ``changed`` in place of the row with its id; returns that row (None: absent)."""
        for row, d in enumerate(self._rows):
            if d.id == changed.id:
                self._rows[row] = changed
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
                return row
        return None


class OutboxDialog(QDialog):
    """The outbox table, a status filter, Refresh, Load more, and Retry for the selected failed
    delivery; kept up to date while open (see the module's docstring)."""

    openTicket = Signal(uuid.UUID)

    def __init__(
        self,
        client: ApiClient,
        parent: QWidget | None = None,
        *,
        page_size: int = api.PAGE,
        refresh_delay_ms: int = REFRESH_DELAY_MS,
        refresh_every_ms: int = REFRESH_EVERY_MS,
    ) -> None:
        super().__init__(parent)
        self.client = client
        self.page_size = page_size
        self.setObjectName("outboxDialog")
        self.setWindowTitle("Email notifications")
        self.resize(1180, 560)
        self.filter = QComboBox()
        self.filter.setAccessibleName("Show deliveries")
        self.filter.addItem("All", None)
        for status, word in STATUS_WORDS.items():
            self.filter.addItem(word, status)
        self.filter.currentIndexChanged.connect(lambda _i: self.reload())
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.reload)
        self.retry_button = QPushButton("Retry")
        self.retry_button.setToolTip("Send this failed email again (to this recipient only)")
        self.retry_button.setEnabled(False)
        self.retry_button.clicked.connect(self.retry_selected)
        self.more_button = QPushButton("Load more")
        self.more_button.setObjectName("outboxLoadMore")
        self.more_button.setToolTip("Show the next older page of deliveries")
        self.more_button.setEnabled(False)
        self.more_button.clicked.connect(self.load_more)
        self.count = QLabel()
        self.count.setObjectName("outboxCount")
        self.count.setTextFormat(Qt.TextFormat.PlainText)
        self.banner = QLabel()
        self.banner.setObjectName("outboxDeliveryOff")
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.TextFormat.PlainText)
        self.banner.hide()
        self.message = QLabel()
        self.message.setObjectName("outboxMessage")
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.hide()
        self.model = OutboxModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in zip(
            range(len(COLUMNS)), (70, 210, 290, 120, 70, 200, 140), strict=True
        ):
            header.resizeSection(column, width)
        header.setStretchLastSection(True)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._update_retry())
        self.table.doubleClicked.connect(self._open)
        top = QHBoxLayout()
        top.addWidget(QLabel("Show:"))
        top.addWidget(self.filter)
        top.addStretch(1)
        top.addWidget(self.refresh_button)
        top.addWidget(self.retry_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.count)
        bottom.addStretch(1)
        bottom.addWidget(self.more_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(self.message)
        layout.addWidget(self.table, 1)
        layout.addLayout(bottom)
        self.busy: background.Operation[Any] | None = None
        self.delivery_on: bool | None = None
        #: Where the rows shown end: the ``next`` of the last page read (None: no more rows).
        self.end: str | None = None
        self.loaded = False
        #: Bumped by a reload: answers for an earlier filter are dropped.
        self._generation = 0
        self._refresh_wanted = False
        #: A pull brought changes: refresh once the throttle's time is up (at most that often).
        self.refresh_soon = QTimer(self)
        self.refresh_soon.setSingleShot(True)
        self.refresh_soon.setInterval(refresh_delay_ms)
        self.refresh_soon.timeout.connect(self.refresh)
        #: What no pull announces (a retry's backoff, mail about no ticket): a slow poll.
        self.poll = QTimer(self)
        self.poll.setInterval(refresh_every_ms)
        self.poll.timeout.connect(self.refresh)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.poll.start()

    def hideEvent(self, event: QHideEvent) -> None:
        self.poll.stop()
        self.refresh_soon.stop()
        super().hideEvent(event)

    def say(self, text: str) -> None:
        """The line above the table: loading, a refusal, an outage, a retry's outcome."""
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def show_status(self, status: str | None) -> None:
        """Show only deliveries with ``status`` (None: all)."""
        self.filter.setCurrentIndex(max(self.filter.findData(status), 0))

    def status(self) -> str | None:
        value = self.filter.currentData()
        return None if value is None else str(value)

    def _start(
        self,
        fn: Callable[[], T],
        done: Callable[[T], None],
        failed: Callable[[Exception], None],
        *,
        current_only: bool = True,
    ) -> None:
        """Run ``fn`` on a worker; its answer is dropped if the filter changed meanwhile
        (``current_only``). One call at a time: refreshes asked for meanwhile wait."""
        generation = self._generation
        op: background.Operation[T] | None = None

        def ok(result: T) -> None:
            if self.busy is op:
                self.busy = None
            if not current_only or generation == self._generation:
                done(result)
            self._settled()

        def bad(exc: Exception) -> None:
            if self.busy is op:
                self.busy = None
            if not current_only or generation == self._generation:
                failed(exc)
            self._settled()

        op = background.run_in_background(fn, ok, bad, parent=self)
        if not op.done:
            self.busy = op

    def _settled(self) -> None:
        self._update_buttons()
        if self._refresh_wanted and self.busy is None:
            self.refresh_soon.start()

    def _show_outbox(self, outbox: api.Outbox) -> None:
        self.delivery_on = outbox.delivery
        self.banner.setVisible(not outbox.delivery)
        self.banner.setText(
            "Email delivery is off: this server has no mail server configured, so these "
            "messages are kept here and not sent."
        )

    def _update_buttons(self) -> None:
        shown = self.model.rowCount()
        if not self.loaded:
            self.count.setText("")
        elif self.end is None:
            self.count.setText(f"{shown} {'delivery' if shown == 1 else 'deliveries'}, all shown.")
        else:
            self.count.setText(
                f"The newest {shown} {'delivery' if shown == 1 else 'deliveries'}; "
                "older ones: Load more."
            )
        self.more_button.setEnabled(self.loaded and self.end is not None and self.busy is None)
        self._update_retry()

    def reload(self) -> None:
        """Read the newest page again for the chosen filter (the table starts over)."""
        status = self.status()
        self._generation += 1
        self._refresh_wanted = False
        self.refresh_soon.stop()
        self.loaded = False
        self.say("Loading…")

        def done(outbox: api.Outbox) -> None:
            self._show_outbox(outbox)
            self.model.set_rows(outbox.deliveries)
            self.end = outbox.next
            self.loaded = True
            self.say("" if outbox.deliveries else "No deliveries to show.")

        def failed(exc: Exception) -> None:
            self.model.set_rows(())
            self.end = None
            self.say(error_text(exc))

        self._start(lambda: api.list_deliveries(self.client, status, self.page_size), done, failed)

    def load_more(self) -> None:
        """Add the next older page below the rows shown."""
        if self.busy is not None or not self.loaded or self.end is None:
            return
        status, before = self.status(), self.end
        self.more_button.setEnabled(False)

        def done(outbox: api.Outbox) -> None:
            self._show_outbox(outbox)
            self.model.append(outbox.deliveries)
            self.end = outbox.next

        def failed(exc: Exception) -> None:
            self.say(f"No more loaded: {error_text(exc)}")

        self._start(
            lambda: api.list_deliveries(self.client, status, self.page_size, before=before),
            done,
            failed,
        )

    def changes_arrived(self, change: ReplicaChange) -> None:
        """A pull brought changes: one of them may have queued, sent or failed an email (a
        local change alone has not reached the server yet: its pull will tell)."""
        if change.tables or change.everything:
            self.refresh_later()

    def refresh_later(self) -> None:
        """Refresh soon: at most once per ``refresh_delay_ms``, however many pulls arrive."""
        if self.isVisible() and self.loaded and not self.refresh_soon.isActive():
            self.refresh_soon.start()

    def refresh(self) -> None:
        """Re-read the range shown and merge it into the table (see :meth:`OutboxModel.merge`)."""
        if not self.isVisible() or not self.loaded:
            return
        if self.busy is not None:
            self._refresh_wanted = True
            return
        self._refresh_wanted = False
        status, through = self.status(), self.end

        def done(outbox: api.Outbox) -> None:
            self._show_outbox(outbox)
            self.model.merge(outbox.deliveries)
            if self.message.text().startswith(("No deliveries", "Not refreshed")):
                self.say("" if outbox.deliveries else "No deliveries to show.")
            elif not outbox.deliveries:
                self.say("No deliveries to show.")

        def failed(exc: Exception) -> None:
            self.say(f"Not refreshed: {error_text(exc)}")

        self._start(
            lambda: api.list_through(self.client, status, through, self.page_size), done, failed
        )

    def selected(self) -> api.Delivery | None:
        return self.model.delivery(self.table.currentIndex().row())

    def _update_retry(self) -> None:
        chosen = self.selected()
        self.retry_button.setEnabled(chosen is not None and chosen.status == "failed")

    def retry_selected(self) -> None:
        chosen = self.selected()
        if chosen is None or chosen.status != "failed":
            return
        self.retry_button.setEnabled(False)

        def done(changed: api.Delivery) -> None:
            self.model.replace(changed)
            self.say(f"Queued again for {changed.email}.")

        def failed(exc: Exception) -> None:
            self.say(
                f"Not retried: {getattr(exc, 'message', None) or exc}"
                if not isinstance(exc, Forbidden | Offline | Unauthorized)
                else error_text(exc)
            )

        self._start(
            lambda: api.retry_delivery(self.client, chosen.id), done, failed, current_only=False
        )

    def _open(self, index: QModelIndex) -> None:
        d = self.model.delivery(index.row())
        if d is not None and d.ticket_id is not None:
            self.openTicket.emit(d.ticket_id)


def attach(window: Any, workspace: Any, bridge: Any = None) -> QAction | None:
    """File > Email notifications… for leads and admins (None for other roles); an open view
    refreshes after each pull that brought changes (``bridge``: the window's sync bridge)."""
    if workspace.user.role not in OUTBOX_ROLES:
        return None
    action = QAction("Email &notifications…", window)
    action.setObjectName("outboxAction")

    def open_dialog() -> None:
        dialog = OutboxDialog(workspace.client, window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.openTicket.connect(window.open_ticket)
        if bridge is not None:
            bridge.changesArrived.connect(dialog.changes_arrived)
        window.outbox_dialog = dialog
        dialog.show()
        dialog.reload()

    action.triggered.connect(open_dialog)
    window.file_menu_outbox = action
    window.menuBar().actions()[0].menu().insertAction(window.settings_action, action)
    return action


def detach(window: Any) -> None:
    action = getattr(window, "file_menu_outbox", None)
    if action is not None:
        window.menuBar().actions()[0].menu().removeAction(action)
        action.deleteLater()
        window.file_menu_outbox = None
    dialog = getattr(window, "outbox_dialog", None)
    if dialog is not None:
        dialog.close()
        window.outbox_dialog = None
