"""The main window: the queue, the ticket and contact panels, the timer, the sync status.

The window exists before there is anything to show (local mode takes a few seconds to start the
first time): it opens on a message page, and :meth:`MainWindow.attach` later gives it a
:class:`Workspace` (a signed-in replica with its sync engine) and builds the panels over it;
:meth:`MainWindow.detach` takes them down again (sign out, switching servers, quitting) and
joins the sync thread. Which workspace, and when, is the start-up controller's business
(:mod:`agentdesk.ui.shell.app`).

Layout state (geometry, splitters, queue columns, the last saved view) is UI state, not a
preference: it lives in QSettings under ``ui/`` and is restored silently.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QSystemTrayIcon,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from ...sync.client import ApiClient, UserInfo
from ...sync.engine import SyncEngine, SyncStatus
from ...sync.replica import RejectionInfo, Replica
from .. import admin, background, dashboard, outbox, settings
from ..consultant.workbench import ConsultantWorkbench
from ..contacts.panel import ContactPanel
from ..icons import icon
from ..queue.model import VIEW_LABELS, QueueModel, SavedView
from ..queue.view import QueueView
from ..shown_time import set_display_zone
from ..theme import app_icon
from ..ticket.panel import TicketPanel
from ..timer.tray import TimerTray
from ..timer.widget import TimerWidget
from ..writer import MutationWriter
from .my_day import MyDayLabel
from .notifications import Notifier
from .settings_dialog import SettingsDialog
from .status_bar import SyncStatusBar
from .sync_bridge import ReplicaChange, SyncBridge

log = logging.getLogger(__name__)

__all__ = ["MainWindow", "Workspace"]

APP_TITLE = "AgentDesk"

#: QSettings keys of the window's layout (UI state, restored silently).
GEOMETRY_KEY = "ui/geometry"
WINDOW_STATE_KEY = "ui/window_state"
MAIN_SPLITTER_KEY = "ui/main_splitter"
SIDE_SPLITTER_KEY = "ui/queue_splitter"
QUEUE_HEADER_KEY = "ui/queue_header"
LAST_VIEW_KEY = "ui/last_view"

#: The contact panel's first height under the queue, in pixels: its verdict, facts and
#: action buttons without scrolling at the width the queue has on a 1366x768 screen.
CONTACT_PANE_HEIGHT = 340

_ROLE_NAMES = {
    "agent": "agent",
    "coordinator": "coordinator",
    "consultant": "consultant",
    "lead": "team lead",
    "admin": "administrator",
}


@dataclass
class Workspace:
    """One signed-in desktop: its replica, the client holding the token, the sync engine.

    Built by the start-up composition (:mod:`agentdesk.desktop`), owned by the window while
    attached, closed by whoever detaches it.
    """

    replica: Replica
    client: ApiClient
    engine: SyncEngine
    user: UserInfo
    #: How the server is named to the agent: "Local mode" or the team server's host.
    server_label: str
    #: The server part of the keyring entry (local mode's port changes every start).
    token_key: str
    local: bool = False

    @property
    def server_url(self) -> str:
        return self.client.base_url

    def close(self) -> None:
        MutationWriter.close_for(self.replica)  # clicks already queued are applied first
        self.client.close()
        self.replica.close()


def _restore(target: Any, store: QSettings, key: str) -> bool:
    value = store.value(key)
    if isinstance(value, QByteArray | bytes) and value:
        return bool(target(QByteArray(value)))
    return False


class MessagePage(QWidget):
    """What the window shows without a workspace: starting, signing in, signed out."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)  # may quote a server's words
        self.title.setObjectName("messageTitle")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail = QLabel()
        self.detail.setTextFormat(Qt.TextFormat.PlainText)
        self.detail.setObjectName("messageDetail")
        self.detail.setWordWrap(True)
        self.detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.setMaximumWidth(280)
        self.button = QPushButton()
        self.button.hide()
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addWidget(self.title)
        layout.addWidget(self.detail)
        layout.addSpacing(12)
        layout.addWidget(self.progress, 0, Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignCenter)
        layout.addStretch(3)

    def show_message(
        self, title: str, detail: str = "", *, busy: bool = False, button: str = ""
    ) -> None:
        self.title.setText(title)
        self.detail.setText(detail)
        self.detail.setVisible(bool(detail))
        self.progress.setVisible(busy)
        self.button.setText(button)
        self.button.setVisible(bool(button))


class MainWindow(QMainWindow):
    """The workstation window. ``MainWindow()`` alone opens empty, on the message page."""

    connectRequested = Signal()
    signOutRequested = Signal()
    #: The message page's button was pressed (e.g. "Sign in…" after signing out).
    messageActionRequested = Signal()
    #: Settings were saved: the keys that changed.
    settingsApplied = Signal(list)

    def __init__(self, store: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.store = store if store is not None else QSettings()
        set_display_zone(settings.TIME_ZONE.read(self.store))
        self.settingsApplied.connect(self._apply_settings)
        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(app_icon())
        self._fit_to_screen()
        self.workspace: Workspace | None = None
        self.bridge: SyncBridge | None = None
        self.queue_model: QueueModel | None = None
        self.queue_view: QueueView | None = None
        self.ticket_panel: TicketPanel | None = None
        self.contact_panel: ContactPanel | None = None
        self.timer_widget: TimerWidget | None = None
        self.timer_tray: TimerTray | None = None
        self.notifier: Notifier | None = None
        self.my_day: MyDayLabel | None = None
        self.main_splitter: QSplitter | None = None
        self.side_splitter: QSplitter | None = None
        self._shown_ticket: uuid.UUID | None = None
        self._ops: set[background.Operation[Any]] = set()
        self.dashboard_view: dashboard.DashboardView | None = None
        self.dashboard_actions: list[QAction] = []

        self.message_page = MessagePage()
        self.message_page.button.clicked.connect(self.messageActionRequested)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.message_page)
        self.setCentralWidget(self.stack)

        self.status_bar = SyncStatusBar()
        self.status_bar.rejectionsSeen.connect(self._rejections_seen)
        self.setStatusBar(self.status_bar)

        # Consultant workbench (issue 11): contracts, timesheet, appointments, statements.
        self.workbench: ConsultantWorkbench | None = None
        self.workbench_dock = QDockWidget("Consultant workbench", self)
        self.workbench_dock.setObjectName("consultantDock")
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.workbench_dock)
        self.workbench_dock.hide()
        self.workbench_dock.visibilityChanged.connect(
            lambda shown: shown and self.workbench is not None and self.workbench.refresh()
        )

        self.timer_bar = QToolBar("Timer")
        self.timer_bar.setObjectName("timerToolBar")
        self.timer_bar.setMovable(False)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.timer_bar)

        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(app_icon(), self)
            self.tray.setToolTip(APP_TITLE)
            menu = QMenu(self)
            menu.addAction(icon("show-window"), "Show AgentDesk", self._show_from_tray)
            menu.addSeparator()
            menu.addAction(icon("quit"), "Quit", self.close)
            self.tray.setContextMenu(menu)
            self.tray.activated.connect(self._tray_activated)
            self.tray.show()

        self._pick_ticket = QTimer(self)
        self._pick_ticket.setSingleShot(True)
        self._pick_ticket.setInterval(0)
        self._pick_ticket.timeout.connect(self._show_current_ticket)

        self._build_menus()
        self._restore_window()
        self.show_message("Welcome to AgentDesk")

    def _fit_to_screen(self) -> None:
        """Open at a comfortable size that fits the screen's free area (a 1366x768 laptop as
        well as a 1920x1080 monitor); a saved geometry replaces it in :meth:`_restore_window`."""
        screen = self.screen()
        if screen is None:
            self.resize(1440, 860)
            return
        free = screen.availableGeometry()
        self.resize(min(1600, free.width() * 96 // 100), min(1000, free.height() * 92 // 100))
        self.move(free.center() - self.rect().center())

    # ------------------------------------------------------------------ menus

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.connect_action = QAction("&Connect to a server…", self)
        self.connect_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.connect_action.triggered.connect(self.connectRequested)
        file_menu.addAction(self.connect_action)
        self.sign_out_action = QAction("Sign &out", self)
        self.sign_out_action.triggered.connect(self.signOutRequested)
        file_menu.addAction(self.sign_out_action)
        file_menu.addSeparator()
        self.new_ticket_action = QAction("&New ticket (phone or chat)…", self)
        self.new_ticket_action.setShortcut(QKeySequence("Ctrl+N"))
        self.new_ticket_action.triggered.connect(self.new_ticket)
        file_menu.addAction(self.new_ticket_action)
        file_menu.addSeparator()
        self.settings_action = QAction("&Settings…", self)
        # The platform's own binding (Cmd+, on macOS); most Linux desktops define none.
        preferences = QKeySequence.keyBindings(QKeySequence.StandardKey.Preferences)
        self.settings_action.setShortcuts(preferences or [QKeySequence("Ctrl+,")])
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.settings_action.triggered.connect(self.open_settings)
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.quit_action.triggered.connect(self.close)
        file_menu.addAction(self.quit_action)

        self.view_menu = bar.addMenu("&View")
        self.view_actions = QActionGroup(self)
        self.view_actions.setExclusive(True)
        for n, (view, text) in enumerate(VIEW_LABELS.items(), start=1):
            action = QAction(text, self)
            action.setCheckable(True)
            action.setData(view.value)
            if n <= 9:
                action.setShortcut(QKeySequence(f"Ctrl+{n}"))
            action.triggered.connect(lambda _checked=False, v=view: self.set_view(v))
            self.view_actions.addAction(action)
            self.view_menu.addAction(action)
        self.view_menu.addSeparator()
        self.search_action = QAction("&Search the queue", self)
        self.search_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Find))
        self.search_action.triggered.connect(self.focus_search)
        self.view_menu.addAction(self.search_action)
        self.timer_action = QAction("Start/stop the &timer", self)
        self.timer_action.setShortcut(QKeySequence("Ctrl+T"))
        self.timer_action.triggered.connect(self.toggle_timer)
        self.view_menu.addAction(self.timer_action)
        self.workbench_action = self.workbench_dock.toggleViewAction()
        self.workbench_action.setText("Consultant &workbench")
        self.workbench_action.setShortcut(QKeySequence("Ctrl+Shift+W"))
        self.view_menu.addAction(self.workbench_action)

        for action, name, tip in (
            (self.connect_action, "connect", "Sign in to a team server, or work in local mode"),
            (self.sign_out_action, "sign-out", "Sign out of this server (your changes are kept)"),
            (self.new_ticket_action, "new-ticket", "Log a phone call or chat as a ticket"),
            (self.settings_action, "settings", "Server, theme, time zone, notifications"),
            (self.quit_action, "quit", "Quit AgentDesk"),
            (self.search_action, "search", "Search the queue (Ctrl+F)"),
            (self.timer_action, "timer", "Start or stop the timer on the shown ticket"),
        ):
            action.setIcon(icon(name))
            action.setToolTip(tip)
            action.setStatusTip(tip)
        help_menu = bar.addMenu("&Help")
        about = QAction("&About AgentDesk", self)
        about.setMenuRole(QAction.MenuRole.AboutRole)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)
        self._update_actions()

    def _update_actions(self) -> None:
        attached = self.workspace is not None
        for action in (
            self.sign_out_action,
            self.search_action,
            self.timer_action,
            self.new_ticket_action,
            self.workbench_action,
            *self.view_actions.actions(),
        ):
            action.setEnabled(attached)

    # ------------------------------------------------------------------ pages

    def show_message(
        self, title: str, detail: str = "", *, busy: bool = False, button: str = ""
    ) -> None:
        """Show the message page (no workspace attached)."""
        self.message_page.show_message(title, detail, busy=busy, button=button)
        self.stack.setCurrentWidget(self.message_page)

    def show_starting(self, local: bool) -> None:
        if local:
            self.show_message(
                "Starting local server and loading the demo team…",
                "Local mode runs the AgentDesk server on this computer. The first start "
                "creates a demo team with its queue; it takes a few seconds.",
                busy=True,
            )
        else:
            self.show_message("Opening your workspace…", busy=True)
        self.status_bar.clear_status("Starting…")

    # ------------------------------------------------------------------ workspace

    def attach(self, workspace: Workspace) -> SyncBridge:
        """Show ``workspace`` and start syncing it. Returns the bridge (already started)."""
        if self.workspace is not None:
            raise RuntimeError("detach the current workspace first")
        self.workspace = workspace
        replica = workspace.replica
        user = workspace.user

        view = self._saved_view()
        self.queue_model = QueueModel(replica.engine, user_id=user.id, view=view, parent=self)
        self.queue_view = QueueView(self.queue_model)
        self.queue_view.setObjectName("queueView")
        self._take_over_find_shortcut(self.queue_view)
        self.queue_view.openRequested.connect(self.open_ticket)
        self.queue_view.table().selectionModel().currentRowChanged.connect(
            lambda *_: self._pick_ticket.start()
        )
        self.queue_view.view_selector().currentIndexChanged.connect(self._view_changed)
        self.queue_model.modelReset.connect(self._pick_ticket.start)
        # The shown ticket may leave the list (resolved, changed elsewhere): the panel says so.
        for signal in (
            self.queue_model.rowsRemoved,
            self.queue_model.rowsInserted,
            self.queue_model.modelReset,
            self.queue_model.loadingChanged,
        ):
            signal.connect(lambda *_: self._check_shown_listed())

        self.ticket_panel = TicketPanel(replica, asynchronous=True)
        self.ticket_panel.setObjectName("ticketPanel")
        self.contact_panel = ContactPanel(replica)
        self.contact_panel.setObjectName("contactPanel")

        # The queue with the requester's contact panel below it, the ticket card beside them
        # at full height: its history and composer need the height more than the queue needs
        # its last rows, and the contact panel's facts and actions read well in the queue's
        # width (issue 15: at 1366x768 a stacked card and contact panel left the history five
        # lines and the contact actions below a scroll bar).
        self.side_splitter = QSplitter(Qt.Orientation.Vertical)
        self.side_splitter.setObjectName("queueSplitter")
        self.side_splitter.addWidget(self.queue_view)
        self.side_splitter.addWidget(self.contact_panel)
        self.side_splitter.setStretchFactor(0, 1)
        self.side_splitter.setStretchFactor(1, 0)
        self.side_splitter.setChildrenCollapsible(False)
        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.main_splitter.setObjectName("mainSplitter")
        self.main_splitter.addWidget(self.side_splitter)
        self.main_splitter.addWidget(self.ticket_panel)
        self.main_splitter.setStretchFactor(0, 1)
        self.main_splitter.setStretchFactor(1, 1)
        self.main_splitter.setChildrenCollapsible(False)
        width = max(self.width(), 900)
        self.main_splitter.setSizes([width // 2, width - width // 2])
        height = max(self.height(), 600)
        # Enough for the contact's facts and its actions (no ticket is shown yet, so its own
        # size hint cannot tell), never more than half the height.
        contact = min(max(self.contact_panel.sizeHint().height(), CONTACT_PANE_HEIGHT), height // 2)
        self.side_splitter.setSizes([height - contact, contact])
        self.stack.addWidget(self.main_splitter)
        self.stack.setCurrentWidget(self.main_splitter)

        self.timer_widget = TimerWidget(replica, settings=self.store)
        self.timer_widget.setObjectName("timerWidget")
        self.timer_bar.addWidget(self.timer_widget)
        self.timer_tray = TimerTray(self.timer_widget, self.tray)

        bridge = SyncBridge(replica, workspace.engine, parent=self)
        self.bridge = bridge
        bridge.statusChanged.connect(self._status_changed)
        bridge.changesArrived.connect(self._replica_changed)
        bridge.changesArrived.connect(self.ticket_panel.changes_arrived)
        bridge.changesArrived.connect(self.contact_panel.changes_arrived)
        bridge.changesArrived.connect(self.timer_widget.changes_arrived)
        bridge.rejectionsArrived.connect(self.status_bar.add_rejections)
        self.workbench = ConsultantWorkbench(replica)
        self.workbench_dock.setWidget(self.workbench)
        self.contact_panel.statementRequested.connect(self.workbench.open_statement)
        bridge.replicaChanged.connect(self.workbench.replica_changed)

        self.notifier = Notifier(replica.engine, user.id, self.store, self.tray, parent=self)
        self.notifier.notified.connect(self._notified)
        self.notifier.openRequested.connect(self._open_from_notification)
        bridge.changesArrived.connect(self.notifier.on_change)

        self.my_day = MyDayLabel(replica, user.id, parent=self.status_bar)
        self.status_bar.addWidget(self.my_day)
        bridge.changesArrived.connect(self.my_day.changes_arrived)

        self.status_bar.clear_status()
        self.status_bar.set_server(workspace.server_label, workspace.server_url)
        role = _ROLE_NAMES.get(user.role.value, user.role.value)
        self.status_bar.set_user(f"{user.display_name} · {role}", f"Signed in as {user.username}")
        self.status_bar.set_connecting()
        self.status_bar.set_rejections(replica.unseen_rejections())
        self._restore_layout()
        self._update_title()
        self._update_actions()
        self._check_view_action(view)
        dashboard.attach(self, workspace, bridge)  # the dashboard page (leads, coordinators)
        admin.attach(self, workspace)  # File > Team administration… (leads, admins)
        outbox.attach(self, workspace, bridge)  # File > Email notifications… (leads, admins)
        bridge.start()
        return bridge

    def detach(self, timeout: float = 15.0) -> SyncBridge | None:
        """Stop syncing and take the workspace's widgets down.

        Returns the bridge, stopped (``running`` False) unless its thread outlived ``timeout``
        (a request in flight); the caller closes the workspace once it has ended, and disposes
        of the bridge. None when nothing was attached.
        """
        if self.workspace is None:
            return None
        self.save_layout()
        dashboard.detach(self)
        admin.detach(self)
        outbox.detach(self)
        # Every click already queued is applied (into the outbox) before anything stops; the
        # writer waits for the replica's write lock at most, never for the network.
        MutationWriter.close_for(self.workspace.replica)
        bridge, self.bridge = self.bridge, None
        if bridge is not None:
            bridge.stop(timeout)
        if self.notifier is not None:
            self.notifier.stop()
            self.notifier.deleteLater()
            self.notifier = None
        if self.timer_tray is not None:
            # Its actions may sit in the tray's menu: they go with the menu that owns them.
            self.timer_tray.menu.deleteLater()
            self.timer_tray = None
        self.workbench_dock.hide()
        if self.my_day is not None:
            self.status_bar.removeWidget(self.my_day)
        for widget in (self.timer_widget, self.main_splitter, self.workbench, self.my_day):
            if widget is not None:
                widget.hide()
                widget.setParent(None)
                widget.deleteLater()
        if self.queue_model is not None:
            self.queue_model.deleteLater()
        self.timer_widget = self.main_splitter = self.side_splitter = None
        self.workbench = self.my_day = None
        self.queue_view = self.queue_model = None
        self.ticket_panel = self.contact_panel = None
        self._shown_ticket = None
        self.workspace = None
        self.status_bar.clear_status()
        self._update_title()
        self._update_actions()
        return bridge

    # ------------------------------------------------------------------ actions

    def set_view(self, view: SavedView) -> None:
        if self.queue_view is not None:
            self.queue_view.set_view(view)

    def focus_search(self) -> None:
        if self.queue_view is not None:
            self.queue_view.focus_search()

    def toggle_timer(self) -> None:
        if self.timer_widget is not None:
            self.timer_widget.toggle()

    def new_ticket(self) -> QDialog | None:
        """Log a phone call or chat as a ticket (``ui.intake``); opens it once created."""
        if self.workspace is None:
            return None
        from ..intake.new_ticket import NewTicketDialog

        dialog = NewTicketDialog(self.workspace.replica, parent=self)
        dialog.created.connect(lambda ticket_id: self.open_ticket(ticket_id))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def open_ticket(self, ticket_id: uuid.UUID) -> None:
        """Show the ticket in the panels and move the keyboard to its composer."""
        if self.queue_view is not None and self.queue_view.current_ticket_id() != ticket_id:
            self.queue_view.select_ticket(ticket_id)
        self._show_ticket(ticket_id)
        if self.ticket_panel is not None:
            self.ticket_panel.composer.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def _open_from_notification(self, ticket_id: uuid.UUID) -> None:
        self._show_from_tray()
        self.open_ticket(ticket_id)

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.store, self)
        dialog.applied.connect(self.settingsApplied)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def show_about(self) -> QMessageBox:
        from .about import show_about

        return show_about(self, self.workspace)

    # ------------------------------------------------------------------ layout state

    def _restore_window(self) -> None:
        _restore(self.restoreGeometry, self.store, GEOMETRY_KEY)
        _restore(self.restoreState, self.store, WINDOW_STATE_KEY)

    def _restore_layout(self) -> None:
        if self.main_splitter is not None:
            _restore(self.main_splitter.restoreState, self.store, MAIN_SPLITTER_KEY)
        if self.side_splitter is not None:
            _restore(self.side_splitter.restoreState, self.store, SIDE_SPLITTER_KEY)
        if self.queue_view is not None:
            _restore(self.queue_view.restore_header_state, self.store, QUEUE_HEADER_KEY)

    def save_layout(self) -> None:
        """Write geometry, splitters, columns and the saved view to QSettings."""
        self.store.setValue(GEOMETRY_KEY, self.saveGeometry())
        self.store.setValue(WINDOW_STATE_KEY, self.saveState())
        if self.main_splitter is not None:
            self.store.setValue(MAIN_SPLITTER_KEY, self.main_splitter.saveState())
        if self.side_splitter is not None:
            self.store.setValue(SIDE_SPLITTER_KEY, self.side_splitter.saveState())
        if self.queue_view is not None and self.queue_model is not None:
            self.store.setValue(QUEUE_HEADER_KEY, self.queue_view.header_state())
            self.store.setValue(LAST_VIEW_KEY, self.queue_model.view().value)
        self.store.sync()

    def _saved_view(self) -> SavedView:
        raw = self.store.value(LAST_VIEW_KEY, SavedView.ALL_OPEN.value)
        try:
            return SavedView(str(raw))
        except ValueError:
            return SavedView.ALL_OPEN

    # ------------------------------------------------------------------ internals

    def _take_over_find_shortcut(self, view: QueueView) -> None:
        """Ctrl+F searches the queue from anywhere in the window (the View menu's action), so
        the queue's own Ctrl+F, active only while it has focus, would make it ambiguous."""
        find = QKeySequence(QKeySequence.StandardKey.Find)
        for shortcut in view.findChildren(QShortcut):
            if shortcut.key() == find:
                shortcut.setEnabled(False)

    def _update_title(self) -> None:
        ws = self.workspace
        if ws is None:
            self.setWindowTitle(APP_TITLE)
            return
        role = _ROLE_NAMES.get(ws.user.role.value, ws.user.role.value)
        self.setWindowTitle(f"{ws.user.display_name} ({role}) — {ws.server_label} — {APP_TITLE}")

    def _check_view_action(self, view: SavedView) -> None:
        for action in self.view_actions.actions():
            if action.data() == view.value:
                action.setChecked(True)

    def _view_changed(self, _index: int) -> None:
        if self.queue_view is None:
            return
        value = self.queue_view.view_selector().currentData()
        if value:
            self._check_view_action(SavedView(value))
            self.store.setValue(LAST_VIEW_KEY, value)

    def _show_current_ticket(self) -> None:
        if self.queue_view is None:
            return
        ticket_id = self.queue_view.current_ticket_id()
        if ticket_id is not None:
            self._show_ticket(ticket_id)

    def _show_ticket(self, ticket_id: uuid.UUID | None) -> None:
        if ticket_id == self._shown_ticket:
            return
        self._shown_ticket = ticket_id
        if self.ticket_panel is not None:
            self.ticket_panel.show_ticket(ticket_id)
        if self.contact_panel is not None:
            self.contact_panel.show_ticket(ticket_id)
        if self.timer_widget is not None:
            self.timer_widget.set_current_ticket(ticket_id)
        self._check_shown_listed()

    def _check_shown_listed(self) -> None:
        """Tell the ticket panel whether its ticket is still in the queue's list (it stays on
        show either way, until the agent picks another)."""
        model, panel, shown = self.queue_model, self.ticket_panel, self._shown_ticket
        if model is None or panel is None or model.is_loading():
            return
        listed = shown is None or model.row_of(shown) is not None
        where = VIEW_LABELS.get(model.view(), "this view")
        panel.set_left_view(
            None if listed else (f"the “{where}” view" + (" and search" if model.search() else ""))
        )

    def _status_changed(self, status: SyncStatus) -> None:
        self.status_bar.set_status(status)
        if self.ticket_panel is not None:
            # Syncing or starting still reaches the server: only these states queue work.
            self.ticket_panel.set_online(status.state not in ("offline", "signed_out"))
        # Notifications start from the first sync's outcome: the tickets a first pull brings
        # are the baseline, not news.
        if self.notifier is not None and status.state in ("online", "offline"):
            self.notifier.start()

    def _replica_changed(self, change: ReplicaChange) -> None:
        model = self.queue_model
        if model is None:
            return
        if change.everything or change.lookups:
            model.invalidate_lookups()
        if change.ticket_ids and not change.everything:
            model.apply_changes(change.ticket_ids)

    def _apply_settings(self, changed: list[str]) -> None:
        if settings.TIME_ZONE.key in changed:
            set_display_zone(settings.TIME_ZONE.read(self.store))
            # Everything that shows a time draws it again on the new clock.
            for panel in (self.ticket_panel, self.contact_panel, self.timer_widget):
                if panel is not None:
                    panel.replica_changed()
            if self.queue_view is not None:
                self.queue_view.table().viewport().update()

    def _rejections_seen(self, seen: list[RejectionInfo]) -> None:
        if self.workspace is None:
            return
        replica = self.workspace.replica
        op: background.Operation[None] = background.Operation(
            lambda: replica.mark_rejections_seen(seen), parent=self
        )
        self._ops.add(op)
        op.succeeded.connect(lambda _r: self._ops.discard(op))
        op.failed.connect(lambda _e: self._ops.discard(op))
        op.start()

    def _notified(self, title: str, message: str) -> None:
        if self.tray is None or not self.tray.isVisible():
            self.status_bar.showMessage(f"{title}: {message}", 15_000)

    def _tray_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self._show_from_tray()

    def _show_from_tray(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_layout()
        super().closeEvent(event)
