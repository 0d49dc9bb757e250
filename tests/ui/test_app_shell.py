"""The main window's shell: layout state in QSettings, keyboard, title, status bar, settings,
theme, notifications, and taking a workspace down.

Workspaces here are desks of the real test server (``panel_team``): a replica, its client and
engine, signed in over HTTP - what agentdesk.desktop builds, minus local mode.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from agentdesk.sync.engine import SyncStatus
from agentdesk.sync.replica import RejectionInfo
from agentdesk.ui import settings
from agentdesk.ui.queue.model import Column, SavedView
from agentdesk.ui.shell.main_window import (
    GEOMETRY_KEY,
    LAST_VIEW_KEY,
    MAIN_SPLITTER_KEY,
    QUEUE_HEADER_KEY,
    SIDE_SPLITTER_KEY,
    MainWindow,
    Workspace,
)
from agentdesk.ui.shell.notifications import Notifier
from agentdesk.ui.shell.status_bar import RejectionsDialog, SyncStatusBar, relative_time
from agentdesk.ui.shell.sync_bridge import ReplicaChange
from agentdesk.ui.sla_display import SlaClock, SlaInputs, is_dark
from agentdesk.ui.theme import apply_theme
from tests.plugins.live_team import Desk, Team
from tests.plugins.panels import PanelDesk, new_ticket
from tests.ui.shell_fixtures import shell_settings, sync_threads

__all__ = ["shell_settings"]


def workspace_of(desk: Desk, team: Team) -> Workspace:
    return Workspace(
        replica=desk.replica,
        client=desk.client,
        engine=desk.engine,
        user=desk.login.user,
        server_label=team.url.removeprefix("http://"),
        token_key=team.url,
    )


class Opened:
    def __init__(self, window: MainWindow, desk: Desk) -> None:
        self.window = window
        self.desk = desk

    @property
    def model(self):  # type: ignore[no-untyped-def]
        assert self.window.queue_model is not None
        return self.window.queue_model

    @property
    def view(self):  # type: ignore[no-untyped-def]
        assert self.window.queue_view is not None
        return self.window.queue_view


def open_window(qtbot: QtBot, store: QSettings, desk: Desk, team: Team) -> Opened:
    window = MainWindow(store)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.attach(workspace_of(desk, team))
    opened = Opened(window, desk)
    qtbot.waitUntil(
        lambda: (
            window.status_bar.status() is not None
            and window.status_bar.status().state == "online"  # type: ignore[union-attr]
            and not opened.model.is_loading()
        ),
        timeout=10_000,
    )
    return opened


@pytest.fixture
def lead_window(
    qtbot: QtBot, shell_settings: QSettings, panel_team: Team, panel_desk: PanelDesk
) -> Iterator[Opened]:
    desk = panel_desk("lead")
    for urgency in (1, 2, 3):
        new_ticket(desk, panel_team, stated_urgency=urgency)
    desk.sync()
    opened = open_window(qtbot, shell_settings, desk, panel_team)
    qtbot.waitUntil(lambda: opened.model.rowCount() == 3, timeout=10_000)
    yield opened
    opened.window.detach()
    assert not sync_threads()


def test_layout_round_trip_through_qsettings(
    qtbot: QtBot,
    shell_settings: QSettings,
    panel_team: Team,
    lead_window: Opened,
) -> None:
    window = lead_window.window
    window.resize(740, 660)  # within the offscreen screen (800 x 800): restoring clamps to it
    qtbot.waitUntil(lambda: (window.width(), window.height()) == (740, 660))
    assert window.main_splitter is not None
    assert window.side_splitter is not None
    window.main_splitter.setSizes([420, 300])
    window.side_splitter.setSizes([330, 230])
    header = lead_window.view.table().horizontalHeader()
    header.resizeSection(Column.SUBJECT, 411)
    header.moveSection(header.visualIndex(Column.ORGANISATION), 0)
    unassigned = next(
        a for a in window.view_actions.actions() if a.data() == SavedView.UNASSIGNED.value
    )
    unassigned.trigger()
    assert lead_window.model.view() is SavedView.UNASSIGNED
    main_sizes = window.main_splitter.sizes()
    side_sizes = window.side_splitter.sizes()
    window.detach()
    window.close()

    for key in (
        GEOMETRY_KEY,
        MAIN_SPLITTER_KEY,
        SIDE_SPLITTER_KEY,
        QUEUE_HEADER_KEY,
        LAST_VIEW_KEY,
    ):
        assert shell_settings.contains(key), key
    assert (
        QSettings(shell_settings.fileName(), QSettings.Format.IniFormat).value(LAST_VIEW_KEY)
        == "unassigned"
    )

    again = open_window(qtbot, shell_settings, lead_window.desk, panel_team)
    w2 = again.window
    assert (w2.width(), w2.height()) == (740, 660)
    assert w2.main_splitter is not None
    assert w2.side_splitter is not None
    assert w2.main_splitter.sizes() == main_sizes
    assert w2.side_splitter.sizes() == side_sizes
    header2 = again.view.table().horizontalHeader()
    assert header2.sectionSize(Column.SUBJECT) == 411
    assert header2.visualIndex(Column.ORGANISATION) == 0
    assert again.model.view() is SavedView.UNASSIGNED
    assert again.view.view_selector().currentData() == SavedView.UNASSIGNED.value
    checked = [a.data() for a in w2.view_actions.actions() if a.isChecked()]
    assert checked == [SavedView.UNASSIGNED.value]
    w2.detach()


def test_title_names_the_user_and_the_server(panel_team: Team, lead_window: Opened) -> None:
    host = panel_team.url.removeprefix("http://")
    assert lead_window.window.windowTitle() == f"Lead (team lead) — {host} — AgentDesk"
    assert lead_window.window.status_bar.server_label.text() == host
    assert lead_window.window.sign_out_action.isEnabled()


def test_keyboard(qtbot: QtBot, lead_window: Opened) -> None:
    window = lead_window.window
    window.activateWindow()
    table = lead_window.view.table()
    table.setFocus()
    # Enter opens the current ticket: it shows in the panels and the composer takes the keys.
    qtbot.keyClick(table, Qt.Key.Key_J)
    first = lead_window.view.current_ticket_id()
    assert first is not None
    qtbot.keyClick(table, Qt.Key.Key_Return)
    panel = window.ticket_panel
    assert panel is not None
    assert panel.ticket_id == first
    assert panel.composer.hasFocus()
    # Ctrl+F searches the queue from anywhere in the window, here from the composer.
    qtbot.keyClick(panel.composer, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert lead_window.view.search_box().hasFocus()
    # Ctrl+2 is the second saved view (Unassigned); Ctrl+7 back to All open.
    qtbot.keyClick(lead_window.view.search_box(), Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert lead_window.model.view() is SavedView.UNASSIGNED
    qtbot.keyClick(table, Qt.Key.Key_7, Qt.KeyboardModifier.ControlModifier)
    assert lead_window.model.view() is SavedView.ALL_OPEN
    # Ctrl+T starts the timer on the selected ticket's organisation, and stops it.
    timer = window.timer_widget
    assert timer is not None
    qtbot.waitUntil(lambda: lead_window.view.current_ticket_id() == first)
    qtbot.waitUntil(timer.toggle_button.isEnabled)  # the timer reads the ticket on a worker
    qtbot.keyClick(table, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: timer.running is not None)
    assert timer.running is not None
    qtbot.keyClick(table, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: timer.running is None)
    assert timer.running is None
    # Settings has a shortcut even where the platform defines no "Preferences" key.
    assert not window.settings_action.shortcut().isEmpty()


def test_selection_follows_into_the_panels_and_pulls_update_rows(
    qtbot: QtBot,
    panel_team: Team,
    panel_desk: PanelDesk,
    lead_window: Opened,
) -> None:
    view = lead_window.view
    view.table().step(0)
    current = view.current_ticket_id()
    assert current is not None
    window = lead_window.window
    qtbot.waitUntil(
        lambda: window.ticket_panel is not None and window.ticket_panel.ticket_id == current
    )
    # Another desk adds a ticket: the pull inserts its row without resetting the model.
    resets: list[int] = []
    lead_window.model.modelReset.connect(lambda: resets.append(1))
    other = panel_desk("coordinator")
    added = new_ticket(other, panel_team, stated_urgency=4)
    other.sync()
    qtbot.waitUntil(lambda: lead_window.model.row_of(added) is not None, timeout=10_000)
    assert resets == []
    assert view.current_ticket_id() == current


def test_refusals_show_in_the_status_bar_and_are_marked_seen(
    qtbot: QtBot,
    shell_settings: QSettings,
    panel_team: Team,
    panel_desk: PanelDesk,
) -> None:
    coordinator = panel_desk("coordinator")
    agent = panel_desk("agent")
    ticket = new_ticket(coordinator, panel_team)
    coordinator.sync()
    agent.sync()
    coordinator.replica.mutate(
        "assign_ticket",
        {
            "ticket_id": str(ticket),
            "assignee_id": str(coordinator.user_id),
            "expected_assignee_id": None,
        },
    )
    coordinator.sync()
    agent.replica.mutate(
        "assign_ticket",
        {"ticket_id": str(ticket), "assignee_id": str(agent.user_id), "expected_assignee_id": None},
    )
    opened = open_window(qtbot, shell_settings, agent, panel_team)
    bar = opened.window.status_bar
    qtbot.waitUntil(lambda: bar.rejections_button.isVisible(), timeout=10_000)
    assert bar.rejections_button.text() == "⚠ 1 change refused"
    bar.rejections_button.click()
    dialogs = [
        w
        for w in QApplication.topLevelWidgets()
        if isinstance(w, RejectionsDialog) and w.isVisible()
    ]
    assert len(dialogs) == 1
    first = dialogs[0].table.topLevelItem(0)
    assert first is not None
    assert first.text(1) == "Assign ticket"
    dialogs[0].close()
    assert not bar.rejections_button.isVisible()
    qtbot.waitUntil(lambda: agent.replica.unseen_rejections() == [], timeout=5_000)
    opened.window.detach()


def test_detach_stops_syncing_and_returns_to_the_message_page(lead_window: Opened) -> None:
    window = lead_window.window
    bridge = window.detach()
    assert bridge is not None
    assert not bridge.running
    assert not sync_threads()
    assert window.workspace is None
    assert window.windowTitle() == "AgentDesk"
    assert window.stack.currentWidget() is window.message_page or window.stack.count() >= 1
    assert not window.sign_out_action.isEnabled()
    assert window.detach() is None


def test_status_bar_says_where_the_desktop_stands(qtbot: QtBot) -> None:
    bar = SyncStatusBar()
    qtbot.addWidget(bar)
    bar.show()
    now = datetime.now(UTC)
    bar.set_status(
        SyncStatus(
            "offline",
            3,
            now - timedelta(minutes=5),
            "cannot reach http://h: Connection refused",
            "http://h",
        )
    )
    assert bar.state_label.text() == "● Offline"
    assert "Connection refused" in bar.state_label.toolTip()
    assert bar.pending_label.text() == "3 changes waiting to sync"
    assert bar.pending_label.isVisible()
    assert bar.last_sync_label.text() == "Last synced 5 min ago"  # offline: not "Synced"
    bar.set_status(SyncStatus("online", 0, now, None, "http://h"))
    assert bar.state_label.text() == "● Online"
    assert not bar.pending_label.isVisible()
    assert bar.last_sync_label.text() == "Synced just now"
    bar.set_status(SyncStatus("syncing", 1, None, None, "http://h"))
    assert bar.last_sync_label.text() == "Not synced yet"
    assert bar.pending_label.text() == "1 change waiting to sync"

    refused = [
        RejectionInfo(uuid.uuid4(), n, "assign_ticket", "conflict", "taken", None, False, now)
        for n in (1, 2)
    ]
    bar.add_rejections(refused)
    bar.add_rejections(refused[:1])  # the same refusal twice counts once
    assert bar.rejections_button.text() == "⚠ 2 changes refused"
    with qtbot.waitSignal(bar.rejectionsSeen) as seen:
        bar.rejections_button.click()
    assert seen.args[0] == refused
    assert not bar.rejections_button.isVisible()


def test_relative_time() -> None:
    now = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
    assert relative_time(None, now) == "never"
    assert relative_time(now - timedelta(seconds=20), now) == "just now"
    assert relative_time(now - timedelta(minutes=1), now) == "1 min ago"
    assert relative_time(now - timedelta(minutes=59), now) == "59 min ago"
    assert relative_time(now - timedelta(hours=3), now) == "3 h ago"
    assert relative_time(now - timedelta(hours=30), now) == "yesterday"
    assert relative_time(now - timedelta(days=4), now) == "4 days ago"


def test_settings_dialog_edits_the_preferences(qtbot: QtBot, shell_settings: QSettings) -> None:
    window = MainWindow(shell_settings)
    qtbot.addWidget(window)
    dialog = window.open_settings()
    dialog.server.setText("ftp://nope")
    dialog.accept()
    assert dialog.isVisible()
    assert "https://" in dialog.error.text()
    assert settings.SERVER_URL.read(shell_settings) == ""  # nothing written
    dialog.server.setText("support.example.com")
    dialog.ca_bundle.setText("/no/such/bundle.pem")
    dialog.accept()
    assert "no CA bundle file" in dialog.error.text()
    dialog.ca_bundle.setText("")
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.idle_minutes.setValue(5)
    dialog.notify_tier1.setChecked(False)
    with qtbot.waitSignal(window.settingsApplied) as applied:
        dialog.accept()
    assert set(applied.args[0]) == {
        settings.SERVER_URL.key,
        settings.THEME.key,
        settings.IDLE_MINUTES.key,
        settings.NOTIFY_TIER1.key,
    }
    assert settings.SERVER_URL.read(shell_settings) == "https://support.example.com"
    assert settings.THEME.read(shell_settings) == "dark"
    assert settings.IDLE_MINUTES.read(shell_settings) == 5
    assert settings.NOTIFY_TIER1.read(shell_settings) is False
    assert settings.NOTIFY_BREACH.read(shell_settings) is True


def test_theme_override_and_back_to_the_system(qtbot: QtBot) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    system_dark = is_dark(app.palette())
    try:
        apply_theme(app, "dark")
        assert is_dark(app.palette())
        text = app.palette().color(QPalette.ColorRole.Text)
        base = app.palette().color(QPalette.ColorRole.Base)
        assert text.lightness() - base.lightness() > 150  # readable
        apply_theme(app, "light")
        assert not is_dark(app.palette())
    finally:
        apply_theme(app, "system")
    assert is_dark(app.palette()) == system_dark


def test_after_the_baseline_the_notifier_reads_only_the_changed_tickets(
    qtbot: QtBot,
    shell_settings: QSettings,
    panel_team: Team,
    panel_desk: PanelDesk,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the start-up baseline reads every open tier-1 ticket: on a large team that scan,
    after every pull, held the GIL against the GUI thread. A change re-reads its tickets; the
    minute's check reads my tickets only."""
    import agentdesk.ui.shell.notifications as notifications

    scopes: list[tuple[frozenset[uuid.UUID] | None, frozenset[uuid.UUID] | None]] = []
    real = notifications.scan_replica

    def spy(*args: object, **kwargs: object) -> notifications.Scan:
        scan = real(*args, **kwargs)  # type: ignore[arg-type]
        scopes.append((scan.tier1_scope, scan.mine_scope))
        return scan

    monkeypatch.setattr(notifications, "scan_replica", spy)
    desk = panel_desk("agent")
    known = new_ticket(desk, panel_team, stated_urgency=1)  # the baseline
    notifier = Notifier(desk.replica.engine, desk.user_id, shell_settings)
    heard: list[str] = []
    notifier.notified.connect(lambda title, _message: heard.append(title))
    notifier.start()
    qtbot.waitUntil(lambda: not notifier.busy())
    assert scopes == [(None, None)]

    fresh = new_ticket(desk, panel_team, stated_urgency=1, subject="Checkout is down again")
    notifier.on_change(
        ReplicaChange(kinds=frozenset({"pull"}), ticket_ids=frozenset({fresh, known}))
    )
    qtbot.waitUntil(lambda: len(heard) == 1, timeout=5_000)
    assert heard == ["New tier-1 ticket"]  # the baseline's ticket, changed too, is not news
    assert scopes[1] == (frozenset({fresh, known}), frozenset({fresh, known}))

    notifier.check()
    qtbot.waitUntil(lambda: not notifier.busy())
    assert scopes[2] == (frozenset(), None)  # no tier-1 ticket changed; all of my tickets
    notifier.on_change(ReplicaChange(kinds=frozenset({"pull"}), ticket_ids=frozenset({fresh})))
    qtbot.wait(700)
    qtbot.waitUntil(lambda: not notifier.busy())
    assert scopes[3] == (frozenset({fresh}), frozenset({fresh}))
    assert heard == ["New tier-1 ticket"]  # announced once
    # A change naming more tickets than a query should (a first sync): one pass over all.
    notifier.SCOPE_LIMIT = 1
    notifier.on_change(
        ReplicaChange(kinds=frozenset({"pull"}), ticket_ids=frozenset({fresh, known}))
    )
    qtbot.wait(700)
    qtbot.waitUntil(lambda: not notifier.busy())
    assert scopes[4] == (None, None)
    assert heard == ["New tier-1 ticket"]
    notifier.stop()


def test_notifications_for_new_tier1_and_my_tickets_about_to_breach_or_breached(
    qtbot: QtBot,
    shell_settings: QSettings,
    panel_team: Team,
    panel_desk: PanelDesk,
) -> None:
    desk = panel_desk("agent")
    new_ticket(desk, panel_team, stated_urgency=1)  # open before start: the baseline
    clock = SlaClock()
    moment = [datetime.now(UTC)]
    notifier = Notifier(
        desk.replica.engine, desk.user_id, shell_settings, clock=clock, now=lambda: moment[0]
    )
    heard: list[tuple[str, str]] = []
    notifier.notified.connect(lambda title, message: heard.append((title, message)))
    notifier.start()
    qtbot.waitUntil(lambda: not notifier.busy())
    assert heard == []

    fresh = new_ticket(desk, panel_team, stated_urgency=1, subject="Checkout is down again")
    notifier.on_change(ReplicaChange(kinds=frozenset({"pull"}), ticket_ids=frozenset({fresh})))
    qtbot.waitUntil(lambda: len(heard) == 1, timeout=5_000)
    assert heard[0] == ("New tier-1 ticket", "Globex: Checkout is down again")

    # My ticket, one business minute before its response is due: about to breach.
    desk.replica.mutate(
        "assign_ticket",
        {"ticket_id": str(fresh), "assignee_id": str(desk.user_id), "expected_assignee_id": None},
    )
    with desk.replica.engine.connect() as conn:
        clock.load(conn)
    from agentdesk.models import Organisation, Ticket

    with desk.replica.session() as s:
        t = s.get(Ticket, fresh)
        assert t is not None
        plan_id = s.get(Organisation, t.organisation_id).plan_id  # type: ignore[union-attr]
        inputs = SlaInputs(t.arrived_at, t.urgency, plan_id, None, ())
    status = clock.status(inputs, t.arrived_at)
    assert status is not None
    moment[0] = status.due - timedelta(minutes=1)
    notifier.check()
    qtbot.waitUntil(lambda: len(heard) == 2, timeout=5_000)
    assert heard[1][0] == "Ticket about to breach"
    assert heard[1][1].startswith("Checkout is down again (Globex):")
    notifier.check()  # announced once only
    qtbot.waitUntil(lambda: not notifier.busy())
    assert len(heard) == 2
    # Once it breaches it is not announced again: the agent was warned.
    moment[0] = status.due + timedelta(minutes=5)
    notifier.check()
    qtbot.waitUntil(lambda: not notifier.busy())
    assert len(heard) == 2

    # A ticket assigned to me only after its target passed (never seen at risk): overdue.
    late = new_ticket(desk, panel_team, stated_urgency=2, subject="Export is slow")
    desk.replica.mutate(
        "assign_ticket",
        {"ticket_id": str(late), "assignee_id": str(desk.user_id), "expected_assignee_id": None},
    )
    with desk.replica.session() as s:
        t2 = s.get(Ticket, late)
        assert t2 is not None
        late_status = clock.status(
            SlaInputs(t2.arrived_at, t2.urgency, plan_id, None, ()), t2.arrived_at
        )
    assert late_status is not None
    moment[0] = max(moment[0], late_status.due + timedelta(hours=1))
    notifier.on_change(ReplicaChange(kinds=frozenset({"mutate"}), ticket_ids=frozenset({late})))
    qtbot.waitUntil(lambda: len(heard) == 3, timeout=5_000)
    assert heard[2][0] == "Ticket past its response target"
    assert heard[2][1].startswith("Export is slow (Globex): overdue by ")
    notifier.check()
    qtbot.waitUntil(lambda: not notifier.busy())
    assert len(heard) == 3

    # Switched off in Settings: nothing more is said.
    settings.NOTIFY_TIER1.write(shell_settings, False)
    third = new_ticket(desk, panel_team, stated_urgency=1)
    notifier.on_change(ReplicaChange(kinds=frozenset({"pull"}), ticket_ids=frozenset({third})))
    qtbot.wait(700)
    qtbot.waitUntil(lambda: not notifier.busy())
    assert len(heard) == 3
    notifier.stop()
    assert threading.current_thread() is threading.main_thread()
