"""The billable timer: kept in the replica (so it survives a kill), one per person, switched
between tickets, today's raw vs billed time, manual entries and corrections, the idle prompt.

Time is a :class:`~tests.plugins.panels.FakeClock` the widget reads; nothing sleeps. The clock
starts 90 minutes in the past on the team's current day (the server refuses timer times in the
future, and today's totals are per local day).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMenu, QSystemTrayIcon
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agentdesk.models import RunningTimer, TimeEntry
from agentdesk.sync.engine import SyncEngine
from agentdesk.sync.replica import Replica
from agentdesk.ui import background
from agentdesk.ui.panel_widgets import local_text
from agentdesk.ui.settings import IDLE_MINUTES
from agentdesk.ui.timer.tray import TimerTray
from agentdesk.ui.timer.widget import TimerWidget
from tests.plugins.live_team import Desk, Team
from tests.plugins.panels import FakeClock, PanelDesk, new_ticket


@pytest.fixture(autouse=True)
def _inline_background(monkeypatch: pytest.MonkeyPatch) -> None:
    """The prepaid balance is computed by a background operation; here it runs inline."""
    monkeypatch.setattr(background, "SYNCHRONOUS", True)


def _settings(tmp_path: Path, idle_minutes: int = 10) -> QSettings:
    settings = QSettings(str(tmp_path / "timer.ini"), QSettings.Format.IniFormat)
    IDLE_MINUTES.write(settings, idle_minutes)
    return settings


def _timer(
    qtbot: QtBot, desk: Desk, clock: FakeClock, tmp_path: Path, idle_minutes: int = 10
) -> TimerWidget:
    timer = TimerWidget(desk.replica, clock=clock, settings=_settings(tmp_path, idle_minutes))
    qtbot.addWidget(timer)
    return timer


def _one_on_one(desk: Desk, team: Team, **kw: object) -> uuid.UUID:
    ticket_id = new_ticket(desk, team, **kw)
    desk.replica.mutate("escalate_ticket", {"ticket_id": ticket_id})
    return ticket_id


def _entries(replica: Replica) -> list[TimeEntry]:
    with replica.session() as s:
        return list(
            s.scalars(select(TimeEntry).order_by(TimeEntry.started_at, TimeEntry.created_at))
        )


def _live_timers(replica: Replica) -> list[RunningTimer]:
    with replica.session() as s:
        return list(s.scalars(select(RunningTimer).where(RunningTimer.deleted.is_(False))))


def _server_entries(team: Team) -> list[TimeEntry]:
    with team.db() as s:
        entries = list(
            s.scalars(select(TimeEntry).order_by(TimeEntry.started_at, TimeEntry.created_at))
        )
        s.expunge_all()
        return entries


def test_start_tick_and_stop_from_the_toolbar_and_the_tray(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk, panel_clock: FakeClock, tmp_path: Path
) -> None:
    desk = panel_desk("agent")
    ticket_id = new_ticket(desk, panel_team)
    timer = _timer(qtbot, desk, panel_clock, tmp_path)
    tray = TimerTray(timer)
    assert (tray.icon is None) == (not QSystemTrayIcon.isSystemTrayAvailable())
    assert not timer.toggle_button.isEnabled()
    assert timer.toggle_button.toolTip() == "Select a ticket to time its organisation"
    assert not tray.toggle_action.isEnabled()

    timer.set_current_ticket(ticket_id)
    t0 = panel_clock.now
    timer.toggle()  # the start/stop shortcut
    running = timer.running
    assert running is not None
    assert running.started_at == t0
    assert running.billable is False, "general support is not billable"
    assert timer.subject_label.text() == (
        "Not billable (general support) · Globex · Checkout is down"
    )
    [row] = _live_timers(desk.replica)  # persisted the moment it started
    assert (row.started_at, row.person_id, row.ticket_id) == (t0, desk.user_id, ticket_id)

    panel_clock.advance(seconds=75)
    timer.tick()
    assert timer.elapsed_label.text() == "0:01:15"
    assert tray.elapsed_action.text() == "Globex: 0:01:15"
    assert tray.toggle_action.text() == "Stop timer"
    assert not timer.switch_button.isEnabled()
    assert timer.switch_button.toolTip() == "The timer is already on this ticket"

    tray.toggle_action.trigger()
    assert timer.running is None
    assert _live_timers(desk.replica) == []
    [entry] = _entries(desk.replica)
    assert (entry.started_at, entry.ended_at) == (t0, t0 + timedelta(seconds=75))
    assert entry.billable is False
    assert entry.ticket_id == ticket_id
    assert tray.elapsed_action.text() == "No timer running"
    assert timer.toggle_button.text() == "Start"

    # Given the app's own tray icon, the timer joins its menu instead of making another icon.
    app_menu = QMenu()
    quit_action = app_menu.addAction("Quit")
    icon = QSystemTrayIcon()
    icon.setContextMenu(app_menu)
    joined = TimerTray(timer, icon)
    assert joined.icon is icon
    assert app_menu.actions()[0] is joined.elapsed_action
    assert app_menu.actions()[-1] is quit_action


def test_a_running_timer_survives_the_app_being_killed(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk, panel_clock: FakeClock, tmp_path: Path
) -> None:
    desk = panel_desk("consultant")
    ticket_id = _one_on_one(desk, panel_team)
    desk.sync()
    timer = TimerWidget(desk.replica, clock=panel_clock, settings=_settings(tmp_path))
    timer.set_current_ticket(ticket_id)
    t0 = panel_clock.now
    timer.toggle()
    assert timer.running is not None
    assert timer.running.billable is True
    panel_clock.advance(minutes=20)
    timer.tick()
    assert timer.elapsed_label.text() == "0:20:00"

    # Killed while offline: no stop, no sync, no close. The widget and the Replica object just
    # vanish (the old object is kept aside, unused, only so its file handles close after the
    # test), and a new app opens the same replica file.
    path = desk.replica.path
    graveyard = [desk.replica]
    shiboken6.delete(timer)
    del timer
    desk.replica = Replica(path)
    desk.engine = SyncEngine(desk.replica, desk.client)
    try:
        restored = _timer(qtbot, desk, panel_clock, tmp_path)
        restored.set_current_ticket(ticket_id)
        running = restored.running
        assert running is not None, "the timer is still running after the restart"
        assert running.started_at == t0, "from its original start"
        assert running.billable is True
        assert restored.elapsed_label.text() == "0:20:00"
        assert restored.toggle_button.text() == "Stop"

        desk.sync()  # the start, queued before the kill, reaches the server now
        with panel_team.db() as s:
            [server_timer] = s.scalars(select(RunningTimer))
            assert server_timer.started_at == t0

        panel_clock.advance(minutes=5)
        restored.toggle()
        assert restored.running is None
        desk.sync()
        desk.sync()  # a second sync must not send or apply anything again
        assert desk.replica.pending_count() == 0
        assert desk.replica.rejections() == []
        [entry] = _server_entries(panel_team)
        assert (entry.started_at, entry.ended_at) == (t0, t0 + timedelta(minutes=25))
        assert entry.billable is True
        assert entry.person_id == desk.user_id
        with panel_team.db() as s:
            assert (
                s.scalars(select(RunningTimer).where(RunningTimer.deleted.is_(False))).all() == []
            )
        assert [(e.id, e.started_at, e.ended_at) for e in _entries(desk.replica)] == [
            (entry.id, entry.started_at, entry.ended_at)
        ]
        totals = restored.totals
        assert totals is not None
        assert totals.raw == timedelta(minutes=25)
        assert totals.billed_minutes == 30
        assert restored.totals_label.text() == (
            "Today, Globex: 25m raw billable · 30m billed · next 30-min increment in 05:00"
        )
    finally:
        for old in graveyard:
            old.close()


def test_switching_ticket_stops_one_timer_and_starts_the_other(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk, panel_clock: FakeClock, tmp_path: Path
) -> None:
    desk = panel_desk("consultant")
    world = panel_team.world
    globex = _one_on_one(desk, panel_team)
    initech = new_ticket(
        desk,
        panel_team,
        organisation_id=str(world.orgs["initech"]),
        requester_id=str(world.contacts["dee"]),
        subject="Export fails",
    )
    timer = _timer(qtbot, desk, panel_clock, tmp_path)
    timer.set_current_ticket(globex)
    t0 = panel_clock.now
    timer.start()
    panel_clock.advance(minutes=7)
    queued = desk.replica.pending_count()

    timer.set_current_ticket(initech)
    assert timer.toggle_button.text() == "Stop"  # the toggle stops the running one
    assert timer.switch_button.isEnabled()
    timer.start()  # one running timer per person: refused, in words
    assert timer.message.text() == (
        "A timer is already running on Globex: stop it first (one running timer per person)"
    )
    timer.switch_button.click()
    assert desk.replica.pending_count() == queued + 2, "stop, then start: two mutations"
    running = timer.running
    assert running is not None
    assert (running.ticket_id, running.started_at) == (initech, t0 + timedelta(minutes=7))
    assert running.organisation_name == "Initech"
    assert not timer.switch_button.isEnabled()
    [entry] = _entries(desk.replica)
    assert (entry.ticket_id, entry.started_at, entry.ended_at) == (
        globex,
        t0,
        t0 + timedelta(minutes=7),
    )

    desk.sync()
    assert desk.replica.rejections() == []
    assert len(_server_entries(panel_team)) == 1
    with panel_team.db() as s:
        [live] = s.scalars(select(RunningTimer).where(RunningTimer.deleted.is_(False)))
        assert live.ticket_id == initech


def test_manual_time_corrections_and_today_raw_versus_billed(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk, panel_clock: FakeClock, tmp_path: Path
) -> None:
    desk = panel_desk("consultant")
    ticket_id = _one_on_one(desk, panel_team)
    timer = _timer(qtbot, desk, panel_clock, tmp_path)
    timer.set_current_ticket(ticket_id)
    t0 = panel_clock.now
    panel_clock.advance(minutes=60)
    now = panel_clock.now

    def add(start: datetime, end: datetime, replaces: uuid.UUID | None = None) -> None:
        timer.open_time_entry_dialog()
        dialog = timer.entry_dialog
        assert dialog is not None
        if replaces is not None:
            dialog.replaces_combo.setCurrentIndex(dialog.replaces_combo.findData(str(replaces)))
            assert dialog.save_button.text() == "Save correction"
        dialog.set_span(start, end)
        assert dialog.save_button.isEnabled(), dialog.error.text()
        dialog.save_button.click()
        assert not dialog.isVisible()

    # Bad input is explained in the dialog and never recorded.
    timer.open_time_entry_dialog()
    dialog = timer.entry_dialog
    assert dialog is not None
    for start, end, problem in (
        (t0 + timedelta(minutes=10), t0, "The end is before the start."),
        (t0, t0, "The entry is empty: the end equals the start."),
        (t0, now + timedelta(minutes=5), "The end is in the future"),
    ):
        dialog.set_span(start, end)
        assert not dialog.save_button.isEnabled()
        assert dialog.error.text().startswith(problem)
        dialog.save()  # even forced, nothing is queued
    dialog.reject()
    assert _entries(desk.replica) == []

    # Seed 001's example: 5 + 30 = 35 minutes in a day bills 60.
    add(t0, t0 + timedelta(minutes=5))
    add(t0 + timedelta(minutes=10), t0 + timedelta(minutes=40))
    assert timer.totals_label.text() == (
        "Today, Globex: 35m raw billable · 60m billed · next 30-min increment in 25:00"
    )
    five, thirty = _entries(desk.replica)

    # A correction is a new entry voiding the old one (5 -> 10 minutes)...
    add(t0, t0 + timedelta(minutes=10), replaces=five.id)
    assert timer.totals_label.text() == (
        "Today, Globex: 40m raw billable · 60m billed · next 30-min increment in 20:00"
    )
    # ...and voiding removes time, with a reason.
    timer.open_void_dialog()
    void = timer.void_dialog
    assert void is not None
    void.entry_combo.setCurrentIndex(void.entry_combo.findData(str(thirty.id)))
    void.save()
    assert void.error.text() == "Say why the time is removed"
    void.reason_edit.setText("Logged against the wrong customer")
    void.void_button.click()
    assert not void.isVisible()
    assert timer.totals_label.text() == (
        "Today, Globex: 10m raw billable · 30m billed · next 30-min increment in 20:00"
    )

    # The running timer counts provisionally, ticking.
    timer.toggle()
    panel_clock.advance(minutes=2, seconds=30)
    timer.tick()
    assert timer.totals_label.text() == (
        "Today, Globex: 12m raw billable · 30m billed · next 30-min increment in 17:30"
    )

    desk.sync()
    assert desk.replica.rejections() == []
    server = _server_entries(panel_team)
    assert len(server) == 4  # the 5, its correction, the 30 and the void
    voided = {e.voids_id for e in server if e.voids_id is not None}
    assert voided == {five.id, thirty.id}


def test_idle_time_can_be_kept_or_discarded(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk, panel_clock: FakeClock, tmp_path: Path
) -> None:
    desk = panel_desk("consultant")
    ticket_id = _one_on_one(desk, panel_team)
    timer = _timer(qtbot, desk, panel_clock, tmp_path, idle_minutes=10)
    timer.set_current_ticket(ticket_id)
    assert not timer.idle_monitor.watching, "no application-wide filter while no timer runs"
    t0 = panel_clock.now
    timer.start()
    qtbot.waitUntil(lambda: timer.idle_monitor.watching)

    panel_clock.advance(minutes=3)
    qtbot.keyClick(timer, Qt.Key.Key_A)  # any input anywhere in the app counts
    assert timer.idle_monitor.last_input == t0 + timedelta(minutes=3)
    panel_clock.advance(minutes=9)
    timer.tick()
    assert timer.idle_prompt is None, "9 idle minutes are under the 10-minute limit"
    panel_clock.advance(minutes=3)
    timer.tick()
    prompt = timer.idle_prompt
    assert prompt is not None
    assert prompt.isVisible()
    assert prompt.idle_start == t0 + timedelta(minutes=3)
    assert prompt.discard_button.text() == "Discard the idle 12 minutes"
    timer.tick()
    assert timer.idle_prompt is prompt, "one prompt at a time"

    prompt.discard_button.click()  # stop when idleness began, start again now
    [kept] = _entries(desk.replica)
    assert (kept.started_at, kept.ended_at) == (t0, t0 + timedelta(minutes=3))
    running = timer.running
    assert running is not None
    assert running.started_at == t0 + timedelta(minutes=15)
    assert timer.message.text() == "Discarded the idle 12 minutes; timing again"

    panel_clock.advance(minutes=10)
    timer.tick()
    assert timer.idle_prompt is not None
    timer.idle_prompt.keep_button.click()
    assert timer.running == running, "kept: the timer runs on"
    assert len(_entries(desk.replica)) == 1

    panel_clock.advance(minutes=11)
    timer.tick()
    assert timer.idle_prompt is not None
    timer.idle_prompt.discard_stop_button.click()
    assert timer.running is None
    qtbot.waitUntil(lambda: not timer.idle_monitor.watching)
    second = _entries(desk.replica)[-1]
    assert (second.started_at, second.ended_at) == (
        t0 + timedelta(minutes=15),
        t0 + timedelta(minutes=25),
    )

    desk.sync()
    assert desk.replica.rejections() == []
    assert [(e.started_at, e.ended_at) for e in _server_entries(panel_team)] == [
        (kept.started_at, kept.ended_at),
        (second.started_at, second.ended_at),
    ]

    # With the prompt turned off (0 minutes), idleness is never questioned.
    quiet = _timer(qtbot, desk, panel_clock, tmp_path, idle_minutes=0)
    quiet.set_current_ticket(ticket_id)
    quiet.start()
    panel_clock.advance(minutes=4)
    quiet.tick()
    assert quiet.idle_prompt is None


def test_escalating_the_ticket_makes_the_running_timer_billable_from_then_on(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk, panel_clock: FakeClock, tmp_path: Path
) -> None:
    desk = panel_desk("agent")
    ticket_id = new_ticket(desk, panel_team)
    timer = _timer(qtbot, desk, panel_clock, tmp_path)
    timer.set_current_ticket(ticket_id)
    t0 = panel_clock.now
    timer.start()
    assert timer.running is not None
    assert timer.running.billable is False
    panel_clock.advance(minutes=10)

    desk.replica.mutate("escalate_ticket", {"ticket_id": ticket_id})
    timer.refresh()  # the app refreshes on every replica change
    running = timer.running
    assert running is not None
    assert running.billable is True
    assert running.started_at == t0 + timedelta(minutes=10)
    [general] = _entries(desk.replica)
    assert (general.started_at, general.ended_at, general.billable) == (
        t0,
        t0 + timedelta(minutes=10),
        False,
    )
    assert timer.message.text().startswith("The ticket escalated to 1-on-1")

    desk.sync()
    assert desk.replica.rejections() == []
    [server_entry] = _server_entries(panel_team)
    assert server_entry.billable is False


def test_raw_minutes_never_read_as_zero_while_time_counts() -> None:
    from agentdesk.ui.timer.widget import _minutes_text

    assert _minutes_text(timedelta(0)) == "0m"
    assert _minutes_text(timedelta(seconds=2)) == "<1m"
    assert _minutes_text(timedelta(seconds=59)) == "<1m"
    assert _minutes_text(timedelta(minutes=1, seconds=59)) == "1m"
    assert _minutes_text(timedelta(hours=2, minutes=5)) == "2h 05m"


def test_the_prepaid_balance_and_what_expires_next(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk, panel_clock: FakeClock, tmp_path: Path
) -> None:
    """Seed 001: hours are used within 90 days of purchase or forfeited; the day's billed time
    (rounded) draws on the oldest valid block first; the running timer counts provisionally."""
    lead = panel_desk("lead")
    desk = panel_desk("consultant")
    ticket_id = _one_on_one(desk, panel_team)
    globex = str(panel_team.world.orgs["globex"])
    timer = _timer(qtbot, desk, panel_clock, tmp_path)
    timer.set_current_ticket(ticket_id)
    assert timer.prepaid_label.text() == "No prepaid hours"
    assert timer.balance is None

    now = panel_clock.now
    old, recent, lapsed = (
        now - timedelta(days=80),
        now - timedelta(days=10),
        now - timedelta(days=200),
    )
    for minutes, bought in ((600, old), (300, recent), (120, lapsed)):
        lead.replica.mutate(
            "record_hour_purchase",
            {
                "block_id": str(uuid.uuid4()),
                "organisation_id": globex,
                "minutes": minutes,
                "purchased_at": bought.isoformat(),
            },
        )
    lead.sync()
    desk.sync()
    timer.refresh()
    first_expiry = old + timedelta(days=90)
    assert timer.prepaid_label.text() == (
        f"Prepaid: 15h 00m left · 10h 00m expire {local_text(first_expiry)[:10]}"
    )
    tip = timer.prepaid_label.toolTip()
    assert "10h 00m, 0m used, 10h 00m left" in tip
    assert "within 90 days of purchase or they are forfeited" in tip
    assert "2h 00m" not in tip, "the lapsed block is not listed"

    # 5 + 30 minutes today bill 60, drawn from the oldest block.
    for start, length in ((0, 5), (10, 30)):
        desk.replica.mutate(
            "add_time_entry",
            {
                "entry_id": str(uuid.uuid4()),
                "organisation_id": globex,
                "ticket_id": str(ticket_id),
                "started_at": (now + timedelta(minutes=start)).isoformat(),
                "ended_at": (now + timedelta(minutes=start + length)).isoformat(),
            },
        )
    panel_clock.advance(minutes=45)
    timer.refresh()
    assert timer.balance is not None
    assert timer.balance.total_minutes == 900 - 60
    assert timer.prepaid_label.text().startswith("Prepaid: 14h 00m left · 9h 00m expire ")

    # A running timer past the next increment draws another 30 minutes, provisionally.
    timer.toggle()
    panel_clock.advance(minutes=26)
    timer.tick()
    assert timer.prepaid_label.text().startswith("Prepaid: 13h 30m left · 8h 30m expire ")
    timer.toggle()


def test_prepaid_text_when_every_block_expired_or_is_used_up() -> None:
    from agentdesk.policy import billing
    from agentdesk.queries.balances import Prepaid
    from agentdesk.ui.timer.widget import prepaid_text

    org = uuid.uuid4()
    when = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
    text, tip = prepaid_text(Prepaid(org, (), (), last_expired=when), None)
    assert text == "Prepaid hours expired"
    assert local_text(when) in tip
    used_up = billing.Balance(
        customer_id=str(org),
        as_of=when,
        blocks=(),
        total_minutes=0,
        next_expiry=None,
        next_expiry_minutes=0,
        overage_minutes=30,
    )
    text, tip = prepaid_text(Prepaid(org, (), ()), used_up)
    assert text == "Prepaid: none left"
    assert "invoiced as overage" in tip


def test_a_timer_left_running_for_days_stops_at_the_time_the_person_gives(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk, tmp_path: Path
) -> None:
    """Entries are capped at a day's work (MAX_SPAN), so "stop now" after a weekend would be
    refused for good; the widget asks when the work ended instead, within the allowed span."""
    desk = panel_desk("consultant")
    ticket_id = _one_on_one(desk, panel_team)
    clock = FakeClock(datetime.now(UTC) - timedelta(hours=50))
    timer = _timer(qtbot, desk, clock, tmp_path)
    timer.set_current_ticket(ticket_id)
    t0 = clock.now
    assert timer.start()
    clock.advance(hours=49)

    assert timer.stop() is False, "not stopped yet: the person is asked first"
    dialog = timer.forgotten_dialog
    assert dialog is not None
    assert dialog.isVisible()
    guess = t0 + timedelta(hours=8) - dialog.ended_at()
    assert timedelta(0) <= guess < timedelta(minutes=1), "a working day (to the minute) first"
    latest = dialog.end_edit.maximumDateTime().toSecsSinceEpoch()
    assert latest <= int((t0 + timedelta(hours=24)).timestamp())
    assert [e for e in _entries(desk.replica) if e.source == "timer"] == []

    dialog.end_edit.setDateTime(dialog.end_edit.dateTime().addSecs(-3 * 3600))
    qtbot.mouseClick(dialog.stop_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    assert timer.running is None
    [entry] = [e for e in _entries(desk.replica) if e.source == "timer"]
    assert entry.started_at == t0
    assert entry.ended_at == dialog.ended_at()
    assert timedelta(hours=4, minutes=59) < entry.ended_at - t0 <= timedelta(hours=5)


def test_the_timer_re_reads_only_for_changes_touching_what_it_shows(
    qtbot: QtBot,
    panel_team: Team,
    panel_desk: PanelDesk,
    panel_clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agentdesk.queries.timer import read_timer as real
    from agentdesk.ui.shell.sync_bridge import ReplicaChange

    desk = panel_desk("agent")
    ticket_id = new_ticket(desk, panel_team)  # Globex
    timer = _timer(qtbot, desk, panel_clock, tmp_path)
    timer.set_current_ticket(ticket_id)
    reads: list[object] = []

    def counted(*args: Any, **kw: Any) -> Any:
        reads.append(kw)
        return real(*args, **kw)

    monkeypatch.setattr("agentdesk.ui.timer.widget.read_timer", counted)
    world = panel_team.world

    def pull(
        *,
        tables: set[str],
        ticket_ids: set[uuid.UUID] | None = None,
        organisation_ids: set[uuid.UUID] | None = None,
        person_ids: set[uuid.UUID] | None = None,
    ) -> ReplicaChange:
        return ReplicaChange(
            kinds=frozenset({"pull"}),
            tables=frozenset(tables),
            ticket_ids=frozenset(ticket_ids or ()),
            organisation_ids=frozenset(organisation_ids or ()),
            person_ids=frozenset(person_ids or ()),
        )

    # A busy team's pull: other tickets, Initech's time, someone else's timer.
    timer.changes_arrived(
        pull(
            tables={"tickets", "time_entries", "running_timers"},
            ticket_ids={uuid.uuid4()},
            organisation_ids={world.orgs["initech"]},
            person_ids={world.users["coordinator"]},
        )
    )
    assert reads == []
    timer.changes_arrived(pull(tables={"time_entries"}, organisation_ids={world.orgs["globex"]}))
    assert len(reads) == 1, "time of the customer shown"
    timer.changes_arrived(pull(tables={"running_timers"}, person_ids={desk.user_id}))
    assert len(reads) == 2, "the user's own timer (started on another desktop)"
    timer.changes_arrived(pull(tables={"tickets"}, ticket_ids={ticket_id}))
    assert len(reads) == 3, "the selected ticket (escalated, say)"
    timer.changes_arrived(ReplicaChange(kinds=frozenset({"reset"}), everything=True))
    assert len(reads) == 4


def test_the_timer_reads_off_the_gui_thread_and_never_starts_on_the_previous_ticket(
    qtbot: QtBot,
    panel_team: Team,
    panel_desk: PanelDesk,
    panel_clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    desk = panel_desk("agent")
    first = new_ticket(desk, panel_team)  # Globex
    second = new_ticket(desk, panel_team, subject="Printer on fire")
    timer = _timer(qtbot, desk, panel_clock, tmp_path)
    timer.set_current_ticket(first)
    assert timer.toggle_button.isEnabled()
    monkeypatch.setattr(background, "SYNCHRONOUS", False)  # the app's way: a worker reads

    timer.set_current_ticket(second)
    # Until the read arrives, the widget still holds the first ticket: starting now would time
    # the wrong one, so start says why it waits.
    assert not timer.toggle_button.isEnabled()
    assert timer.toggle_button.toolTip() == "The selected ticket is still loading"
    assert timer.start() is False
    assert _live_timers(desk.replica) == []
    qtbot.waitUntil(timer.toggle_button.isEnabled)
    assert timer.start()
    qtbot.waitUntil(lambda: timer.running is not None)
    [row] = _live_timers(desk.replica)
    assert row.ticket_id == second


def test_the_idle_monitor_steps_aside_after_an_input(qtbot: QtBot) -> None:
    """After an input the application-wide filter is removed for a rest, so the GUI thread's
    other events (paints, timers, queued signals) do not each call into Python; then it
    watches again and the next input counts."""
    from PySide6.QtWidgets import QLineEdit

    from agentdesk.ui.timer.idle import IdleMonitor

    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    monitor = IdleMonitor(clock, rest_ms=200)
    field = QLineEdit()
    qtbot.addWidget(field)
    monitor.watch(True)
    try:
        assert monitor.watching
        assert not monitor.resting
        t1 = clock.advance(minutes=1)
        qtbot.keyClick(field, Qt.Key.Key_A)
        assert monitor.last_input == t1
        assert monitor.resting  # the filter is out: no call into Python per event meanwhile
        clock.advance(seconds=1)
        qtbot.keyClick(field, Qt.Key.Key_B)
        assert monitor.last_input == t1  # within the rest: known to within its length
        qtbot.waitUntil(lambda: not monitor.resting, timeout=2_000)
        t3 = clock.advance(minutes=2)
        qtbot.keyClick(field, Qt.Key.Key_C)
        assert monitor.last_input == t3
    finally:
        monitor.watch(False)
    assert not monitor.watching
    assert not monitor.resting
