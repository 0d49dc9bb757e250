"""The team lead's dashboard (see :mod:`.view`) and its place in the main window.

:func:`attach` is all the main window calls: leads, admins and coordinators get the dashboard
page, with View-menu entries (Ctrl+D, Ctrl+Shift+Q) to switch between it and the queue, and the
window reopens on the page they last had (a lead who lives on the dashboard gets it as home;
the first start shows the queue, as local mode's single user expects). A figure's
click-through shows the queue filtered to exactly its tickets (a visible, removable filter).
Agents and consultants do not get it (the server would not refuse them the replica's counts,
but the page is not theirs; it stays out of their way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence

from ...models import Role
from ...queries.dashboard import TicketFilter
from ..queue.model import SavedView
from .view import DashboardView

if TYPE_CHECKING:
    from ..shell.main_window import MainWindow, Workspace
    from ..shell.sync_bridge import SyncBridge

__all__ = [
    "DASHBOARD_ROLES",
    "DashboardView",
    "attach",
    "detach",
    "show_dashboard",
    "show_filtered",
]

DASHBOARD_ROLES = frozenset({Role.LEAD, Role.ADMIN, Role.COORDINATOR})


def attach(window: MainWindow, workspace: Workspace, bridge: SyncBridge) -> DashboardView | None:
    """Add the dashboard page for a lead, admin or coordinator (None for other roles)."""
    if workspace.user.role not in DASHBOARD_ROLES:
        return None
    view = DashboardView(workspace.replica, window.store, username=workspace.user.username)
    window.stack.addWidget(view)
    view.filterRequested.connect(lambda flt: show_filtered(window, flt))
    bridge.changesArrived.connect(view.changes_arrived)
    show = QAction("&Dashboard", window)
    show.setShortcut(QKeySequence("Ctrl+D"))
    show.triggered.connect(lambda: show_dashboard(window))
    queue = QAction("&Queue", window)
    queue.setShortcut(QKeySequence("Ctrl+Shift+Q"))
    queue.triggered.connect(lambda: _show_queue(window))
    window.view_menu.insertActions(window.view_menu.actions()[0], [show, queue])
    window.dashboard_view = view
    window.dashboard_actions = [show, queue]
    view.start()
    if window.store.value(_home_key(workspace), "") == "dashboard":
        window.stack.setCurrentWidget(view)  # where they left off
    return view


def _home_key(workspace: Workspace) -> str:
    return f"dashboard/{workspace.user.username}/home"


def detach(window: MainWindow) -> None:
    view: DashboardView | None = getattr(window, "dashboard_view", None)
    if view is None:
        return
    view.stop()
    if window.workspace is not None:
        shown = "dashboard" if window.stack.currentWidget() is view else "queue"
        window.store.setValue(_home_key(window.workspace), shown)
    for action in getattr(window, "dashboard_actions", []):
        window.view_menu.removeAction(action)
        action.deleteLater()
    window.stack.removeWidget(view)
    view.deleteLater()
    window.dashboard_view = None
    window.dashboard_actions = []


def show_dashboard(window: MainWindow) -> None:
    view = getattr(window, "dashboard_view", None)
    if view is not None:
        window.stack.setCurrentWidget(view)
        view.refresh()


def _show_queue(window: MainWindow) -> None:
    if window.main_splitter is not None:
        window.stack.setCurrentWidget(window.main_splitter)


def show_filtered(window: MainWindow, flt: TicketFilter) -> None:
    """The queue, listing exactly ``flt``'s tickets: "All open" view, no search, the filter
    shown above the table with a button that removes it."""
    if window.queue_view is None or window.queue_model is None:
        return
    window.set_view(SavedView.ALL_OPEN)
    window.queue_view.search_box().clear()
    window.queue_view.flush_search()
    window.queue_model.set_scope(flt)
    _show_queue(window)
