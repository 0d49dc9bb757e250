"""The workstation's layout and clock (issue 15 items 9 and 11, and the coordinator request).

Layout is checked at the sizes a person has: the window a 1366x768 laptop leaves after the
title bar and task bar, and a 1920x1080 monitor. The screenshots behind these numbers were
taken under Xvfb at both sizes and looked at (see the branch report).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QSettings
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agentdesk.models import EventKind, TicketEvent
from agentdesk.policy.calendar import BusinessCalendar
from agentdesk.sync.engine import SyncStatus
from agentdesk.sync.replica import RejectionInfo
from agentdesk.ui import settings, shown_time
from agentdesk.ui.queue.model import Column
from agentdesk.ui.queue.view import QueueView
from agentdesk.ui.shell.main_window import MainWindow
from agentdesk.ui.shell.settings_dialog import SettingsDialog
from agentdesk.ui.sla_display import SlaClock
from agentdesk.ui.ticket.panel import TicketPanel
from agentdesk.ui.timer.widget import TimerWidget
from tests.plugins.live_team import Team
from tests.plugins.panels import PanelDesk, new_ticket
from tests.ui.queue_fixtures import OFFICE, queue_db
from tests.ui.shell_fixtures import (
    Shell,
    shell_app,
    shell_keyring,
    shell_local_data,
    shell_local_template,
    shell_settings,
)
from tests.ui.test_agent_day import _online

__all__ = [
    "shell_app",
    "shell_keyring",
    "shell_local_data",
    "shell_local_template",
    "shell_settings",
]

#: What a maximised window gets on a 1366x768 laptop (title bar and task bar taken off).
LAPTOP = (1311, 706)


@pytest.fixture(autouse=True)
def computer_clock() -> Iterator[None]:
    """Each test starts and ends on the computer's own zone (the zone is process state)."""
    shown_time.set_display_zone("")
    yield
    shown_time.set_display_zone("")


# ------------------------------------------------------------------------------ layout


def test_the_window_opens_inside_the_screen(qtbot: QtBot, shell_settings: QSettings) -> None:
    window = MainWindow(shell_settings)
    qtbot.addWidget(window)
    screen = window.screen()
    assert screen is not None
    free = screen.availableGeometry()
    assert window.width() <= free.width()
    assert window.height() <= free.height()
    assert free.contains(window.geometry())


def test_the_queue_shows_the_whole_subject_in_half_a_laptop_screen(
    qtbot: QtBot, tmp_path: Path
) -> None:
    from agentdesk.ui.queue.model import QueueModel

    data = queue_db(tmp_path, 50)
    engine = data.engine()
    model = QueueModel(
        engine,
        asynchronous=False,
        now=lambda: data.now,
        sla_clock=SlaClock(BusinessCalendar.from_dict(OFFICE)),
    )
    view = QueueView(model)
    model.setParent(view)
    qtbot.addWidget(view)
    view.resize(560, 500)  # the queue's half of a 1366x768 window
    view.show()
    qtbot.waitExposed(view)
    header = view.table().horizontalHeader()
    start = header.sectionViewportPosition(Column.SUBJECT)
    width = header.sectionSize(Column.SUBJECT)
    assert width >= 300
    assert start >= 0
    assert start + width <= view.table().viewport().width()
    view.close()
    engine.dispose()


def test_long_timer_texts_give_way_instead_of_widening_the_window(
    qtbot: QtBot, panel_desk: PanelDesk, shell_settings: QSettings
) -> None:
    desk = panel_desk("agent")
    timer = TimerWidget(desk.replica, settings=shell_settings)
    qtbot.addWidget(timer)
    long = "Today, Vantage Retail Holdings International: 3h 10m raw billable · 3h 30m billed"
    timer.totals_label.setText(long)
    timer.prepaid_label.setText("Prepaid: 11h 30m left · 1h 30m expire 2027-01-12 " * 2)
    timer.subject_label.setText("A subject that goes on and on " * 4)
    # Everything still fits the laptop's toolbar, with room for the window's other panes.
    assert timer.minimumSizeHint().width() < LAPTOP[0] // 2
    timer.resize(600, timer.sizeHint().height())
    timer.show()
    qtbot.waitExposed(timer)
    assert timer.more_button.geometry().right() <= timer.width()
    assert timer.totals_label.text() == long  # elided on screen, whole for the tooltip


def _many_notes(panel: TicketPanel, count: int) -> None:
    panel.note_mode.setChecked(True)
    for n in range(count):
        panel.composer.setPlainText(f"Note {n}\nsecond line\nthird line")
        panel.send()


def test_the_history_scrolls_to_what_was_just_sent(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("agent")
    ticket_id = new_ticket(desk, panel_team)
    panel = TicketPanel(desk.replica)
    qtbot.addWidget(panel)
    panel.resize(700, 700)
    panel.show()
    qtbot.waitExposed(panel)
    panel.show_ticket(ticket_id)
    _many_notes(panel, 12)
    bar = panel.history.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.triggerAction(bar.SliderAction.SliderToMinimum)  # the agent reads from the top
    assert bar.value() == 0
    panel.composer.setPlainText("The last word")
    panel.send()
    qtbot.waitUntil(lambda: bar.value() == bar.maximum() and bar.value() > 0)
    # Reading back up is left alone when something else arrives.
    bar.triggerAction(bar.SliderAction.SliderToMinimum)
    panel.refresh()
    assert bar.value() == 0


def _ready_on_a_ticket(qtbot: QtBot, shell: Shell, size: tuple[int, int]) -> MainWindow:
    window = shell.window
    window.resize(*size)
    _online(shell, qtbot)
    view = window.queue_view
    assert view is not None
    view.table().setFocus()
    view.table().step(0)
    panel = window.ticket_panel
    assert panel is not None
    qtbot.waitUntil(lambda: panel.ticket_id is not None and panel.view is not None)
    return window


@pytest.mark.parametrize("size", [LAPTOP, (1600, 993)], ids=["1366x768", "1920x1080"])
def test_the_workstation_fits_and_keeps_its_panes_usable(
    qtbot: QtBot, shell_app: Shell, size: tuple[int, int]
) -> None:
    window = _ready_on_a_ticket(qtbot, shell_app, size)
    panel, contacts, timer = window.ticket_panel, window.contact_panel, window.timer_widget
    assert panel is not None
    assert contacts is not None
    assert timer is not None
    qtbot.waitUntil(
        lambda: (
            contacts.validate_button.isVisibleTo(contacts)
            or contacts.redirect_button.isVisibleTo(contacts)
            or contacts.body.isVisible()
        )
    )
    qtbot.waitUntil(timer.toggle_button.isEnabled)  # the timer reads the ticket on a worker
    timer.start()
    qtbot.waitUntil(lambda: timer.running is not None)
    QApplication.processEvents()
    # The window keeps the size it was given: nothing in it asks for more.
    assert (window.width(), window.height()) == size
    hint = window.minimumSizeHint()
    assert hint.width() <= LAPTOP[0]
    assert hint.height() <= LAPTOP[1]
    # The history shows well over five lines.
    lines = panel.history.viewport().height() // panel.history.fontMetrics().lineSpacing()
    assert lines >= 8
    # The contact panel's action buttons are on screen without scrolling.
    viewport = contacts.body.viewport()
    for button in (contacts.validate_button, contacts.redirect_button):
        bottom = button.mapTo(viewport, QPoint(0, button.height())).y()
        assert bottom <= viewport.height(), button.text()
    # The timer's menu button is inside the window.
    right = timer.more_button.mapTo(window, QPoint(timer.more_button.width(), 0)).x()
    assert right <= window.width()
    timer.stop()


def test_a_busy_status_bar_never_widens_the_window(qtbot: QtBot, shell_app: Shell) -> None:
    """Changes waiting, refusals, a long server address and a long name at once, on a laptop.

    The status bar's labels used to ask for their whole text: a timer start's "1 change
    waiting to sync", shown while the push was on its way, widened the window by ~100 px
    (an intermittent failure of the test above on a busy machine)."""
    window = _ready_on_a_ticket(qtbot, shell_app, LAPTOP)
    bar = window.status_bar
    bar.set_status(
        SyncStatus(
            state="online",
            pending=1234,
            last_sync_at=datetime.now(UTC) - timedelta(minutes=3),
            last_error=None,
            server_url="https://support-desk.a-rather-long-company-name.example.com:8443",
        )
    )
    bar.set_server("support-desk.a-rather-long-company-name.example.com:8443")
    bar.set_user("Maximiliana Alexandra Fitzgerald-Montgomery (coordinator, Premium Support)")
    bar.set_rejections(
        [
            RejectionInfo(
                client_id=uuid.uuid4(),
                mutation_id=n,
                name="add_note",
                code="forbidden",
                message="no",
                field=None,
                seen=False,
                received_at=datetime.now(UTC),
            )
            for n in range(12)
        ]
    )
    QApplication.processEvents()
    assert (window.width(), window.height()) == LAPTOP
    assert window.minimumSizeHint().width() <= LAPTOP[0]
    # What is cut short is still there in full for whoever hovers or reads it out.
    assert bar.pending_label.isVisible()
    assert "1234 changes waiting to sync" in bar.pending_label.text()


def test_a_ticket_with_every_next_step_shown_fits_a_laptop(qtbot: QtBot, shell_app: Shell) -> None:
    """Which workflow buttons show depends on the ticket; in one row they set the card's
    minimum width, and a ticket with many widened the window (the first test's intermittent
    failure, after a timer start had changed the ticket's next steps)."""
    window = _ready_on_a_ticket(qtbot, shell_app, LAPTOP)
    panel = window.ticket_panel
    assert panel is not None
    buttons = (
        panel.redirect_button,
        panel.tell_button,
        panel.wait_button,
        panel.resume_button,
        panel.escalate_button,
        panel.resolve_button,
        panel.close_button,
        panel.reopen_button,
    )
    for button in buttons:
        button.setVisible(True)
    QApplication.processEvents()
    assert (window.width(), window.height()) == LAPTOP
    assert window.minimumSizeHint().width() <= LAPTOP[0]
    for button in buttons:  # wrapped, not cut: each whole and inside the card
        assert button.isVisible()
        right = button.mapTo(panel, QPoint(button.width(), 0)).x()
        assert right <= panel.width(), button.text()
        assert button.width() >= button.sizeHint().width(), button.text()


# ------------------------------------------------------------------------------ clock


def test_times_follow_the_persons_zone_setting() -> None:
    at = datetime(2026, 12, 1, 23, 1, tzinfo=UTC)
    assert shown_time.set_display_zone("Asia/Tokyo") is None
    assert shown_time.local_text(at) == "2026-12-02 08:01 JST"
    now = at + timedelta(hours=2, minutes=5)
    assert shown_time.ago_text(at, now) == "2 h ago, 08:01 JST"
    assert shown_time.ago_text(now - timedelta(seconds=20), now).startswith("just now")
    assert shown_time.ago_text(at, at + timedelta(days=3)) == "3 d ago, Wed 08:01 JST"
    assert shown_time.clock_text(at, at + timedelta(days=30)) == "Wed 2 Dec 2026 08:01 JST"
    problem = shown_time.set_display_zone("Mars/Olympus_Mons")
    assert problem is not None
    assert "Mars/Olympus_Mons" in problem
    assert shown_time.display_zone() is None  # the computer's own, not a half-set zone


def test_the_settings_dialog_takes_a_zone_and_refuses_an_unknown_one(
    qtbot: QtBot, shell_settings: QSettings
) -> None:
    dialog = SettingsDialog(shell_settings)
    qtbot.addWidget(dialog)
    assert dialog.time_zone.currentText() == ""  # the computer's own by default
    dialog.time_zone.setCurrentText("Nowhere/Atlantis")
    problem = dialog.problem()
    assert problem is not None
    assert "Nowhere/Atlantis" in problem[0]
    dialog.time_zone.setCurrentText("Europe/Berlin")
    assert dialog.problem() is None
    assert settings.TIME_ZONE.key in dialog.save()
    assert settings.TIME_ZONE.read(shell_settings) == "Europe/Berlin"


def test_the_ticket_card_shows_the_persons_clock_and_how_long_ago(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk, shell_settings: QSettings
) -> None:
    desk = panel_desk("agent")
    ticket_id = new_ticket(desk, panel_team)
    settings.TIME_ZONE.write(shell_settings, "Pacific/Auckland")
    window = MainWindow(shell_settings)  # reads the setting
    qtbot.addWidget(window)
    panel = TicketPanel(desk.replica)
    qtbot.addWidget(panel)
    panel.show_ticket(ticket_id)
    assert panel.view is not None
    arrived = panel.fields["arrived"].text()
    assert " ago, " in arrived or arrived.startswith("just now")
    assert "NZ" in arrived  # NZDT / NZST: the chosen zone, not UTC nor the computer's
    assert "NZ" in panel.fields["sla"].text()
    assert "your time" in panel.fields["sla"].toolTip()  # the plan's hours are New York's


# ------------------------------------------------------------------------------ requests


def test_asking_a_coordinator_twice_makes_one_request(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("agent")
    ticket_id = new_ticket(desk, panel_team)
    panel = TicketPanel(desk.replica)
    qtbot.addWidget(panel)
    panel.show_ticket(ticket_id)
    panel.assign_me_button.click()
    panel.ask_for_triage()
    assert panel.message.kind != "error", panel.message.text()
    assert not panel.ask_triage_button.isEnabled()
    assert "asked already" in panel.ask_triage_button.toolTip()
    panel.ask_for_triage()  # a second click (a keyboard shortcut, a stale button)
    assert panel.message.kind == "error"

    def requests() -> list[Any]:
        with desk.replica.session() as s:
            return [
                e
                for e in s.scalars(
                    select(TicketEvent).where(
                        TicketEvent.ticket_id == ticket_id, TicketEvent.kind == EventKind.NOTE
                    )
                )
                if "asks a coordinator to triage" in e.body
            ]

    assert len(requests()) == 1
    assert isinstance(ticket_id, uuid.UUID)


# ------------------------------------------------------------------------------ my day


def test_my_day_counts_off_the_gui_thread_and_follows_my_work(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from agentdesk.ui.shell import my_day
    from agentdesk.ui.shell.sync_bridge import ReplicaChange

    threads: list[threading.Thread] = []
    real = my_day.agent_stats  # type: ignore[attr-defined]  # patched where it is used

    def counted(*args: Any) -> Any:
        threads.append(threading.current_thread())
        return real(*args)

    monkeypatch.setattr(my_day, "agent_stats", counted)
    coordinator = panel_desk("coordinator")
    ticket_id = new_ticket(coordinator, panel_team)  # filed by someone else
    coordinator.sync()
    desk = panel_desk("agent")
    user_id = desk.replica.state.user_id
    assert user_id is not None
    label = my_day.MyDayLabel(desk.replica, user_id)
    qtbot.addWidget(label)
    qtbot.waitUntil(lambda: label.text().startswith("Today: 0 handled"))
    assert threads
    assert all(t is not threading.main_thread() for t in threads)

    panel = TicketPanel(desk.replica)
    qtbot.addWidget(panel)
    panel.show_ticket(ticket_id)
    panel.assign_me_button.click()
    label.changes_arrived(ReplicaChange(kinds=frozenset({"mutate"})))
    qtbot.waitUntil(lambda: label.text().startswith("Today: 1 handled"))
    # A pull that touched no ticket does not read again.
    reads = len(threads)
    label.changes_arrived(ReplicaChange(kinds=frozenset({"pull"}), tables=frozenset({"users"})))
    qtbot.wait(label.DEBOUNCE_MS + 200)
    assert len(threads) == reads


# ------------------------------------------------------------------------------ the look


def _stroke_lightness(image_icon: QIcon) -> float:
    image = image_icon.pixmap(32, 32).toImage()
    values = [image.pixelColor(x, y) for x in range(image.width()) for y in range(image.height())]
    drawn = [c.lightness() for c in values if c.alpha() > 128]
    assert drawn, "the icon drew nothing"
    return sum(drawn) / len(drawn)


def test_the_icon_set_is_bundled_with_its_licence_and_follows_the_theme(qapp: Any) -> None:
    from agentdesk.ui import icons
    from agentdesk.ui.theme import dark_palette, light_palette

    folder = icons.icons_dir()
    assert folder is not None
    assert "ISC License" in (folder / "LICENSE").read_text(encoding="utf-8")
    assert "lucide-static" in (folder / "SOURCE.md").read_text(encoding="utf-8")
    for name, drawn in icons.ICONS.items():
        for variant in icons.VARIANTS:
            assert (folder / variant / f"{drawn}.svg").is_file(), (name, variant)
        assert not icons.icon(name).isNull(), name
    with pytest.raises(KeyError):
        icons.icon("no-such-icon")
    before = qapp.palette()
    try:
        qapp.setPalette(light_palette())
        on_light = _stroke_lightness(icons.icon("resolve"))
        qapp.setPalette(dark_palette())
        on_dark = _stroke_lightness(icons.icon("resolve"))
    finally:
        qapp.setPalette(before)
    assert on_light < 100 < 160 < on_dark


def test_the_ticket_actions_have_icons_and_say_what_they_do(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("agent")
    ticket_id = new_ticket(desk, panel_team)
    panel = TicketPanel(desk.replica)
    qtbot.addWidget(panel)
    panel.show_ticket(ticket_id)
    for button in (
        panel.tell_button,
        panel.wait_button,
        panel.resolve_button,
        panel.assign_me_button,
        panel.send_button,
        panel.reopen_button,
    ):
        assert not button.icon().isNull(), button.text()
        assert button.toolTip(), button.text()
