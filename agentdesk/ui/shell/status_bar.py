"""The status bar: is this desktop in sync, and if not, what is waiting.

An agent working offline needs to trust that nothing is lost, so the bar always says where the
desktop stands: online / syncing / offline (with the reason in the tooltip), how many local
changes wait in the outbox, when the last successful sync was, which server, and - a button,
shown only when needed - changes the server refused that the agent has not looked at yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QStatusBar,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...policy.sla import SlaState
from ...sync.engine import SyncStatus
from ...sync.replica import RejectionInfo
from ..panel_widgets import ElidedLabel
from ..shown_time import to_local
from ..sla_display import is_dark, sla_colour

__all__ = ["RejectionsDialog", "SyncStatusBar", "mutation_label", "relative_time"]

_STATE_TEXT = {
    "online": ("Online", "In sync with the server; changes are sent as you make them."),
    "syncing": ("Syncing…", "Sending local changes and fetching the team's."),
    "offline": (
        "Offline",
        "Working offline: your changes are kept on this computer and sent "
        "when the server can be reached again.",
    ),
    "signed_out": (
        "Signed out",
        "The server no longer accepts this sign-in: sign in again to sync. Local changes are kept.",
    ),
}


def relative_time(then: datetime | None, now: datetime | None = None) -> str:
    """ "just now", "4 min ago", "2 h ago", "yesterday", "3 days ago" - for a status line."""
    if then is None:
        return "never"
    now = now or datetime.now(UTC)
    delta = now - then
    if delta < timedelta(seconds=45):
        return "just now"
    if delta < timedelta(minutes=59, seconds=30):
        return f"{max(1, round(delta.total_seconds() / 60))} min ago"
    if delta < timedelta(hours=23, minutes=30):
        return f"{round(delta.total_seconds() / 3600)} h ago"
    days = max(1, round(delta.total_seconds() / 86400))
    return "yesterday" if days == 1 else f"{days} days ago"


def mutation_label(name: str) -> str:
    """ "assign_ticket" -> "Assign ticket"."""
    return name.replace("_", " ").capitalize()


def _online_colour(palette: QPalette) -> QColor:
    return QColor("#3fb950" if is_dark(palette) else "#1a7f37")


class RejectionsDialog(QDialog):
    """The server's refusals, newest last, each with the rule that refused it."""

    def __init__(self, rejections: Sequence[RejectionInfo], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Changes the server refused")
        self.resize(640, 320)
        intro = QLabel(
            "The server refused these changes made on this desktop, so they were undone here. "
            "Usually someone else changed the ticket first; check it and try again."
        )
        intro.setWordWrap(True)
        self.table = QTreeWidget()
        self.table.setRootIsDecorated(False)
        self.table.setHeaderLabels(["Received", "Change", "Why"])
        self.table.setAccessibleName("Refused changes")
        for r in rejections:
            item = QTreeWidgetItem(
                [
                    to_local(r.received_at).strftime("%a %H:%M"),
                    mutation_label(r.name),
                    r.message,
                ]
            )
            where = f", field: {r.field}" if r.field else ""
            item.setToolTip(2, f"{r.message}\n(code: {r.code}{where})")
            self.table.addTopLevelItem(item)
        header = self.table.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)


class SyncStatusBar(QStatusBar):
    """Shows a :class:`~agentdesk.sync.engine.SyncStatus`; the main window feeds it."""

    #: The agent opened the refusals; they are seen now (the list of ``RejectionInfo``).
    rejectionsSeen = Signal(list)

    REFRESH_MS = 15_000

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("syncStatusBar")
        self._status: SyncStatus | None = None
        self._rejections: list[RejectionInfo] = []
        self._dialog: RejectionsDialog | None = None

        self.state_label = QLabel()
        self.state_label.setObjectName("syncState")
        self.state_label.setAccessibleName("Sync state")
        # Elided, not widening: on a laptop the labels' whole texts together ("1 change waiting
        # to sync" while a push is on its way, a long name and server address) asked ~200 px
        # more than the window had. Each keeps its whole text in its tooltip.
        self.pending_label = ElidedLabel()
        self.pending_label.setObjectName("pendingChanges")
        self.pending_label.setAccessibleName("Changes waiting to sync")
        self.last_sync_label = ElidedLabel()
        self.last_sync_label.setObjectName("lastSync")
        self.last_sync_label.setAccessibleName("Last successful sync")
        self.server_label = ElidedLabel()  # plain text: names and URLs as typed
        self.server_label.setObjectName("serverName")
        self.server_label.setAccessibleName("Server")
        self.user_label = ElidedLabel()  # plain text: names and URLs as typed
        self.user_label.setObjectName("signedInUser")
        self.user_label.setAccessibleName("Signed in as")
        self.user_label.setContentsMargins(4, 0, 8, 0)
        self.rejections_button = QToolButton()
        self.rejections_button.setObjectName("refusedChanges")
        self.rejections_button.setAutoRaise(True)
        self.rejections_button.setToolTip("Show the changes the server refused")
        self.rejections_button.clicked.connect(self.show_rejections)
        self.rejections_button.hide()

        self.addWidget(self.user_label)
        self.addPermanentWidget(self.rejections_button)
        for label in (
            self.pending_label,
            self.last_sync_label,
            self.server_label,
            self.state_label,
        ):
            label.setContentsMargins(8, 0, 8, 0)
            self.addPermanentWidget(label)

        self._timer = QTimer(self)
        self._timer.setInterval(self.REFRESH_MS)
        self._timer.timeout.connect(self._refresh_times)
        self._timer.start()
        self.clear_status()

    # ------------------------------------------------------------------ feeding

    def clear_status(self, message: str = "Not connected") -> None:
        """No workspace (starting, or signed out)."""
        self._status = None
        self.state_label.setText(message)
        self.state_label.setToolTip("")
        self.state_label.setStyleSheet("")
        self.pending_label.hide()
        self.last_sync_label.hide()
        self.server_label.hide()
        self.user_label.clear()
        self.set_rejections([])

    def set_server(self, label: str, tooltip: str = "") -> None:
        self.server_label.setText(label)
        self.server_label.setToolTip(f"{label}\n{tooltip}" if tooltip else label)
        self.server_label.setVisible(bool(label))

    def set_user(self, text: str, tooltip: str = "") -> None:
        self.user_label.setText(text)
        self.user_label.setToolTip(f"{text}\n{tooltip}" if tooltip else text)

    def set_connecting(self) -> None:
        self.state_label.setText("Connecting…")
        self.state_label.setToolTip("Reaching the server for the first time this session.")
        self.state_label.setStyleSheet("")

    def set_status(self, status: SyncStatus) -> None:
        self._status = status
        text, tip = _STATE_TEXT.get(status.state, (status.state.capitalize(), ""))
        if status.last_error and status.state in ("offline", "signed_out"):
            tip = f"{tip}\n\nReason: {status.last_error}"
        self.state_label.setText(f"● {text}")
        self.state_label.setToolTip(tip)
        self.state_label.setAccessibleDescription(tip)
        self._paint_state()
        pending = status.pending
        self.pending_label.setVisible(pending > 0)
        waiting = f"{pending} change{'s' if pending != 1 else ''} waiting to sync"
        self.pending_label.setText(waiting)
        self.pending_label.setToolTip(
            f"{waiting}: changes made on this desktop that the server has not confirmed yet. "
            "They are kept on this computer until it does."
        )
        self._refresh_times()

    def status(self) -> SyncStatus | None:
        return self._status

    def set_rejections(self, rejections: Sequence[RejectionInfo]) -> None:
        self._rejections = list(rejections)
        self._update_rejections_button()

    def add_rejections(self, rejections: Sequence[RejectionInfo]) -> None:
        known = {(r.client_id, r.mutation_id) for r in self._rejections}
        self._rejections.extend(r for r in rejections if (r.client_id, r.mutation_id) not in known)
        self._update_rejections_button()

    def rejections(self) -> list[RejectionInfo]:
        return list(self._rejections)

    # ------------------------------------------------------------------ actions

    def show_rejections(self) -> None:
        if not self._rejections:
            return
        seen, self._rejections = self._rejections, []
        self._update_rejections_button()
        self._dialog = RejectionsDialog(seen, self.window())
        self._dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._dialog.open()
        self.rejectionsSeen.emit(seen)

    # ------------------------------------------------------------------ internals

    def _update_rejections_button(self) -> None:
        n = len(self._rejections)
        self.rejections_button.setText(f"⚠ {n} change{'s' if n != 1 else ''} refused")
        self.rejections_button.setVisible(n > 0)

    def _refresh_times(self) -> None:
        status = self._status
        if status is None:
            return
        when = status.last_sync_at
        self.last_sync_label.setVisible(True)
        if when is None:
            text = "Not synced yet"
        elif status.state not in ("offline", "signed_out"):
            text = f"Synced {relative_time(when)}"
        else:
            # Offline (maybe with changes waiting): "Synced just now" would claim too much.
            text = f"Last synced {relative_time(when)}"
        self.last_sync_label.setText(text)
        self.last_sync_label.setToolTip(
            to_local(when).strftime("Last successful sync: %A %d %B %Y, %H:%M:%S")
            if when
            else "This desktop has not completed a sync with this server yet."
        )

    def _paint_state(self) -> None:
        status = self._status
        if status is None:
            self.state_label.setStyleSheet("")
            return
        palette = self.palette()
        colour: QColor | None
        if status.state == "online":
            colour = _online_colour(palette)
        elif status.state == "offline":
            colour = sla_colour(SlaState.AT_RISK, palette)
        elif status.state == "signed_out":
            colour = sla_colour(SlaState.BREACHED, palette)
        else:
            colour = None
        # Only the text colour: the background stays the palette's, light or dark.
        self.state_label.setStyleSheet(f"color: {colour.name()};" if colour else "")

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._paint_state()
        super().changeEvent(event)
