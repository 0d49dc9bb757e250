"""The admin screens against a real embedded server with demo data: good changes are saved
through the server's rules and shown again, bad input is refused with a message naming the
field and changes nothing, and roles hold in the UI and at the server."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMenu
from pytestqt.qtbot import QtBot

from agentdesk.models import Role
from agentdesk.sync import admin as api
from agentdesk.sync.client import Forbidden, Unauthorized
from agentdesk.ui.admin import AdminDialog, calendar_preview, parse_hours
from agentdesk.ui.shell.main_window import MainWindow, Workspace
from tests.dashboard.conftest import LeadDesk, desk_for
from tests.ui.shell_fixtures import shell_settings

__all__ = ["shell_settings"]


@pytest.fixture
def dialog(qtbot: QtBot, lead_desk: LeadDesk) -> AdminDialog:
    d = AdminDialog(lead_desk.client, Role.LEAD)
    qtbot.addWidget(d)
    d.show()
    for tab in (d.people, d.calendars, d.plans, d.organisations):
        qtbot.waitUntil(lambda t=tab: t.items.count() > 0 or t.error.text() != "",  # type: ignore[misc]
                        timeout=15_000)
        assert tab.error.text() == ""
    return d


def _first_menu(window: MainWindow) -> QMenu:
    """The window's first menu (the app menu, where Admin... would be)."""
    menu = window.menuBar().actions()[0].menu()
    assert isinstance(menu, QMenu)
    return menu


def pick(qtbot: QtBot, tab: object, row: int = 0) -> None:
    tab.items.setCurrentRow(row)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: tab.current is not None)  # type: ignore[attr-defined]


def saved_or_refused(qtbot: QtBot, tab: object) -> str:
    qtbot.mouseClick(tab.save_button, Qt.MouseButton.LeftButton)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: tab.error.text() != "", timeout=15_000)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: tab.busy is None, timeout=15_000)  # type: ignore[attr-defined]
    return str(tab.error.text())  # type: ignore[attr-defined]


def test_calendar_bad_hours_are_refused_naming_the_field_and_change_nothing(
    qtbot: QtBot, dialog: AdminDialog, lead_desk: LeadDesk,
) -> None:
    tab = dialog.calendars
    pick(qtbot, tab)
    before = api.list_calendars(lead_desk.client)
    tab.hours["mon"].setText("17:00-08:00")  # ends before it starts: the rules refuse it
    message = saved_or_refused(qtbot, tab)
    assert message.startswith("Not saved: hours.mon")
    tab.hours["tue"].setText("8 to 5")  # not even an interval: refused before sending
    assert saved_or_refused(qtbot, tab).startswith("Not saved: hours.tue")
    assert api.list_calendars(lead_desk.client) == before


def test_calendar_change_is_saved_and_previewed(
    qtbot: QtBot, dialog: AdminDialog, lead_desk: LeadDesk,
) -> None:
    tab = dialog.calendars
    pick(qtbot, tab)
    chosen = tab.current
    assert chosen is not None
    for day in ("mon", "tue", "wed", "thu", "fri"):
        tab.hours[day].setText("09:00-12:00, 13:00-17:00")
    tab.holidays.setPlainText("2030-01-07")
    assert saved_or_refused(qtbot, tab) == "Saved."
    stored = next(c for c in api.list_calendars(lead_desk.client) if c["id"] == chosen["id"])
    assert stored["hours"]["mon"] == [["09:00", "12:00"], ["13:00", "17:00"]]
    assert "2030-01-07" in stored["holidays"]
    data = {k: v for k, v in stored.items() if k not in ("id", "version", "name")}
    lines = calendar_preview(data, date(2030, 1, 7))
    assert lines[0] == "Mon 07 Jan: holiday"
    assert lines[1] == "Tue 08 Jan: open from 09:00, 7h 00m in all"
    assert len(lines) == 14
    assert parse_hours("", "hours.sat") == []


def test_plan_bad_input_is_refused_and_nothing_changes(
    qtbot: QtBot, dialog: AdminDialog, lead_desk: LeadDesk,
) -> None:
    tab = dialog.plans
    pick(qtbot, tab)
    before = api.list_plans(lead_desk.client)
    tab.targets[1].setText("5x")
    assert saved_or_refused(qtbot, tab).startswith("Not saved: response_targets.1")
    tab.targets[1].setText("15m")
    taken = next(p["key"] for p in before if p["id"] != tab.current["id"])  # type: ignore[index]
    tab.key.setText(taken)  # another plan's key: the server refuses the clash
    message = saved_or_refused(qtbot, tab)
    assert message.startswith("Not saved: key")
    assert api.list_plans(lead_desk.client) == before


def test_organisation_plan_and_review_counts(
    qtbot: QtBot, dialog: AdminDialog, lead_desk: LeadDesk,
) -> None:
    tab = dialog.organisations
    pick(qtbot, tab)
    org = tab.current
    assert org is not None
    tab.verified.setValue(30)
    tab.recent.setValue(12)
    other = next(i for i in range(tab.plan.count()) if tab.plan.itemData(i) != org["plan_id"])
    tab.plan.setCurrentIndex(other)
    assert saved_or_refused(qtbot, tab) == "Saved."
    stored = next(o for o in api.list_organisations(lead_desk.client) if o["id"] == org["id"])
    assert (stored["verified_reviews"], stored["recent_reviews"]) == (30, 12)
    assert stored["plan_id"] == tab.plan.itemData(other)


def test_people_add_refuse_and_deactivate(
    qtbot: QtBot, dialog: AdminDialog, lead_desk: LeadDesk, tmp_path: Path,
) -> None:
    tab = dialog.people
    qtbot.mouseClick(tab.new_button, Qt.MouseButton.LeftButton)
    tab.username.setText("newbie")
    tab.display_name.setText("New Bie")
    tab.password.setText("short")
    before = api.list_users(lead_desk.client)
    assert saved_or_refused(qtbot, tab).startswith("Not saved: password")
    assert api.list_users(lead_desk.client) == before
    assert tab.role.findData("admin") == -1  # a lead cannot grant the admin role
    # Deactivating an agent stops their sign-ins at once.
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    agent = desk_for(lead_desk.server, agent_dir, "agent", lead_desk.database)
    try:
        row = next(i for i, r in enumerate(tab.rows) if r["username"] == "agent")
        pick(qtbot, tab, row)
        tab.active.setChecked(False)
        assert saved_or_refused(qtbot, tab) == "Saved."
        with pytest.raises(Unauthorized):
            agent.client.me()
    finally:
        agent.client.close()
        agent.replica.close()


def test_agents_get_no_admin_screens_and_the_server_refuses_them(
    qtbot: QtBot, shell_settings: QSettings, lead_desk: LeadDesk, tmp_path: Path,
) -> None:
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    agent = desk_for(lead_desk.server, agent_dir, "agent", lead_desk.database)
    try:
        window = MainWindow(shell_settings)
        qtbot.addWidget(window)
        window.attach(Workspace(replica=agent.replica, client=agent.client,
                                engine=agent.engine, user=agent.user, server_label="test",
                                token_key=agent.server.url))
        names = [a.objectName() for a in _first_menu(window).actions()]
        assert "adminAction" not in names
        window.detach()
        calendar = api.list_calendars(agent.client)[0]
        with pytest.raises(Forbidden):
            api.save_calendar(agent.client, uuid.UUID(calendar["id"]),
                              {k: v for k, v in calendar.items()
                               if k not in ("id", "version")})
    finally:
        agent.client.close()
        agent.replica.close()


def test_leads_find_the_admin_screens_in_the_file_menu(
    qtbot: QtBot, shell_settings: QSettings, lead_desk: LeadDesk,
) -> None:
    window = MainWindow(shell_settings)
    qtbot.addWidget(window)
    window.attach(Workspace(replica=lead_desk.replica, client=lead_desk.client,
                            engine=lead_desk.engine, user=lead_desk.user, server_label="test",
                            token_key=lead_desk.server.url))
    action = next(a for a in _first_menu(window).actions()
                  if a.objectName() == "adminAction")
    action.trigger()
    dialog = window.admin_dialog  # type: ignore[attr-defined]
    assert isinstance(dialog, AdminDialog)
    qtbot.waitUntil(lambda: dialog.people.items.count() > 0, timeout=15_000)
    window.detach()
