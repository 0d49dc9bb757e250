"""The Notifications view: what the team's emails did - queued, sent or failed, to whom, and why -
with a Retry for the failed ones.

Delivery state lives on the server only, so the view reads it through
:mod:`agentdesk.sync.outbox` on a worker thread (:mod:`agentdesk.ui.background`); the table model
is a thin adapter over the rows it gets back, and a retry replaces its one row in place. Leads
and admins open it from File > Email notifications…; the server answers nobody else (403), so
other roles do not get the menu entry. A refusal, a server out of reach or one that does not
send mail at all (no SMTP: local mode) is said above the table, in words.
"""

from __future__ import annotations

import uuid
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QColor
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

__all__ = ["OUTBOX_ROLES", "OutboxDialog", "OutboxModel", "attach", "detach", "error_text"]

OUTBOX_ROLES = frozenset({Role.LEAD, Role.ADMIN})

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

    def set_rows(self, rows: tuple[api.Delivery, ...]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

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
    """The outbox table, a status filter, Refresh, and Retry for the selected failed delivery."""

    openTicket = Signal(uuid.UUID)

    def __init__(self, client: ApiClient, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.client = client
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
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(self.message)
        layout.addWidget(self.table, 1)
        self.busy: background.Operation[Any] | None = None
        self.delivery_on: bool | None = None

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

    def reload(self) -> None:
        status = self.status()
        self.say("Loading…")

        def done(outbox: api.Outbox) -> None:
            self.busy = None
            if status != self.status():
                return  # the filter changed meanwhile: its own reload shows its rows
            self.delivery_on = outbox.delivery
            self.banner.setVisible(not outbox.delivery)
            self.banner.setText(
                "Email delivery is off: this server has no mail server configured, so these "
                "messages are kept here and not sent."
            )
            self.model.set_rows(outbox.deliveries)
            shown = len(outbox.deliveries)
            self.say("" if shown else "No deliveries to show.")
            self._update_retry()

        def failed(exc: Exception) -> None:
            self.busy = None
            self.model.set_rows(())
            self.say(error_text(exc))
            self._update_retry()

        self.busy = background.run_in_background(
            lambda: api.list_deliveries(self.client, status), done, failed, parent=self
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
            self.busy = None
            self.model.replace(changed)
            self.say(f"Queued again for {changed.email}.")
            self._update_retry()

        def failed(exc: Exception) -> None:
            self.busy = None
            self.say(
                f"Not retried: {getattr(exc, 'message', None) or exc}"
                if not isinstance(exc, Forbidden | Offline | Unauthorized)
                else error_text(exc)
            )
            self._update_retry()

        self.busy = background.run_in_background(
            lambda: api.retry_delivery(self.client, chosen.id), done, failed, parent=self
        )

    def _open(self, index: QModelIndex) -> None:
        d = self.model.delivery(index.row())
        if d is not None and d.ticket_id is not None:
            self.openTicket.emit(d.ticket_id)


def attach(window: Any, workspace: Any) -> QAction | None:
    """File > Email notifications… for leads and admins (None for other roles)."""
    if workspace.user.role not in OUTBOX_ROLES:
        return None
    action = QAction("Email &notifications…", window)
    action.setObjectName("outboxAction")

    def open_dialog() -> None:
        dialog = OutboxDialog(workspace.client, window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.openTicket.connect(window.open_ticket)
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
