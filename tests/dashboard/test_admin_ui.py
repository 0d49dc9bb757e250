"""The admin screens against a real embedded server with demo data: good changes are saved
through the server's rules and shown again, bad input is refused with a message naming the
field and changes nothing, and roles hold in the UI and at the server."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QLabel, QLineEdit, QMenu, QPushButton
from pytestqt.qtbot import QtBot
from sqlalchemy import select
from sqlalchemy.orm import Session

from agentdesk.models import (
    Calendar,
    Organisation,
    Plan,
    Role,
    Ticket,
    TicketStatus,
    WaitingPeriod,
)
from agentdesk.models.db import make_engine, sqlite_url
from agentdesk.policy.calendar import BusinessCalendar
from agentdesk.policy.sla import response_instants
from agentdesk.policy.workflow import OPEN_STATUSES
from agentdesk.sync import admin as api
from agentdesk.sync.client import ApiClient, Forbidden, Unauthorized
from agentdesk.ui.admin import (
    AdminDialog,
    PasswordDialog,
    PeopleTab,
    calendar_preview,
    parse_hours,
)
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
        assert tab is not None
        qtbot.waitUntil(
            lambda t=tab: t.items.count() > 0 or t.error.text() != "",  # type: ignore[misc]
            timeout=15_000,
        )
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
    qtbot: QtBot,
    dialog: AdminDialog,
    lead_desk: LeadDesk,
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
    qtbot: QtBot,
    dialog: AdminDialog,
    lead_desk: LeadDesk,
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
    qtbot: QtBot,
    dialog: AdminDialog,
    lead_desk: LeadDesk,
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
    qtbot: QtBot,
    dialog: AdminDialog,
    lead_desk: LeadDesk,
) -> None:
    tab = dialog.organisations
    assert tab is not None
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


def test_organisation_membership_and_member_since_are_edited_through_the_server(
    qtbot: QtBot,
    dialog: AdminDialog,
    lead_desk: LeadDesk,
) -> None:
    """Membership and "member since" were only editable through the REST API. In the
    organisations screen: a date that is not one is refused by the server, whose message names
    the field, and nothing (not even the membership changed with it) is saved; a good change is
    stored and shown again; the date can be cleared."""
    tab = dialog.organisations
    assert tab is not None
    pick(qtbot, tab)
    org = tab.current
    assert org is not None
    client = lead_desk.client
    before = api.list_organisations(client)
    lapsed = tab.membership.findData("lapsed")
    assert lapsed >= 0
    assert [tab.membership.itemData(i) for i in range(3)] == ["active", "trial", "lapsed"]
    other = next(s for s in ("active", "trial", "lapsed") if s != org["membership"])
    tab.membership.setCurrentIndex(tab.membership.findData(other))
    tab.member_since.setText("2026-02-30")
    message = saved_or_refused(qtbot, tab)
    assert message.startswith("Not saved: member_since: "), message
    assert "day" in message  # the server's own words: the day is out of range
    tab.member_since.setText("last spring")
    message = saved_or_refused(qtbot, tab)
    assert message.startswith("Not saved: member_since: "), message
    assert api.list_organisations(client) == before

    tab.member_since.setText("2019-04-01")
    assert saved_or_refused(qtbot, tab) == "Saved."
    stored = next(o for o in api.list_organisations(client) if o["id"] == org["id"])
    assert stored["membership"] == other
    assert stored["member_since"] == "2019-04-01T00:00:00Z"
    untouched = {k: v for k, v in org.items() if k not in ("membership", "member_since", "version")}
    assert {k: stored[k] for k in untouched} == untouched

    qtbot.waitUntil(lambda: tab.busy is None, timeout=15_000)  # the list is read again
    row = next(
        i
        for i in range(tab.items.count())
        if tab.items.item(i).data(Qt.ItemDataRole.UserRole) == org["id"]
    )
    tab.items.setCurrentRow(row + 1)  # another organisation, then this one again
    assert tab.member_since.text() != "2019-04-01"
    tab.items.setCurrentRow(row)
    assert tab.current is not None
    assert tab.current["id"] == org["id"]
    assert tab.member_since.text() == "2019-04-01"
    assert tab.membership.currentData() == other
    tab.member_since.setText("")
    assert saved_or_refused(qtbot, tab) == "Saved."
    stored = next(o for o in api.list_organisations(client) if o["id"] == org["id"])
    assert stored["member_since"] is None
    assert stored["membership"] == other


def test_people_add_refuse_and_deactivate(
    qtbot: QtBot,
    dialog: AdminDialog,
    lead_desk: LeadDesk,
    tmp_path: Path,
) -> None:
    tab = dialog.people
    qtbot.mouseClick(tab.new_button, Qt.MouseButton.LeftButton)
    tab.username.setText("newbie")
    tab.display_name.setText("New Bie")
    tab.password.setText("short")
    before = api.list_users(lead_desk.client)
    assert saved_or_refused(qtbot, tab).startswith("Not saved: password")
    assert api.list_users(lead_desk.client) == before
    # A lead cannot grant the admin role: it is listed (an admin's row shows it) but disabled.
    model = tab.role.model()
    assert isinstance(model, QStandardItemModel)
    assert not model.item(tab.role.findData("admin")).isEnabled()
    admin_row = next(i for i, r in enumerate(tab.rows) if r["role"] == "admin")
    pick(qtbot, tab, admin_row)
    assert tab.role.currentData() == "admin"
    qtbot.mouseClick(tab.new_button, Qt.MouseButton.LeftButton)
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


def test_agents_see_admin_read_only_and_the_server_refuses_their_writes(
    qtbot: QtBot,
    shell_settings: QSettings,
    lead_desk: LeadDesk,
    tmp_path: Path,
) -> None:
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    agent = desk_for(lead_desk.server, agent_dir, "agent", lead_desk.database)
    try:
        window = MainWindow(shell_settings)
        qtbot.addWidget(window)
        window.attach(
            Workspace(
                replica=agent.replica,
                client=agent.client,
                engine=agent.engine,
                user=agent.user,
                server_label="test",
                token_key=agent.server.url,
            )
        )
        action = next(a for a in _first_menu(window).actions() if a.objectName() == "adminAction")
        action.trigger()
        dialog = window.admin_dialog  # type: ignore[attr-defined]
        assert isinstance(dialog, AdminDialog)
        assert dialog.read_only
        assert dialog.findChild(QLabel, "adminReadOnlyNote") is not None
        assert [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())] == [
            "People",
            "Calendars",
            "Plans",
        ]
        for tab in (dialog.people, dialog.calendars, dialog.plans):
            qtbot.waitUntil(
                lambda t=tab: t.items.count() > 0,  # type: ignore[misc]
                timeout=15_000,
            )
            pick(qtbot, tab)
            assert not any(b.isVisible() for b in tab.findChildren(QPushButton)), tab
            assert all(e.isReadOnly() for e in tab.findChildren(QLineEdit))
        assert dialog.calendars.name.text() == dialog.calendars.current["name"]  # type: ignore[index]
        assert not dialog.people.active.isEnabled()
        assert not dialog.plans.calendar.isEnabled()
        window.detach()
        # The server refuses every admin write of theirs, whatever a client sends.
        calendar = api.list_calendars(agent.client)[0]
        plan = api.list_plans(agent.client)[0]
        lead_id = uuid.UUID(str(lead_desk.user.id))
        writes: list[Callable[[], object]] = [
            lambda: api.save_calendar(
                agent.client,
                uuid.UUID(calendar["id"]),
                {k: v for k, v in calendar.items() if k not in ("id", "version")},
            ),
            lambda: api.save_plan(
                agent.client,
                uuid.UUID(plan["id"]),
                {k: v for k, v in plan.items() if k not in ("id", "version")},
            ),
            lambda: api.create_user(
                agent.client,
                {
                    "username": "sneaky",
                    "display_name": "Sneaky",
                    "role": "lead",
                    "password": "a long enough secret",
                },
            ),
            lambda: api.update_user(agent.client, lead_id, {"active": False}),
            lambda: api.reset_password(agent.client, lead_id, "a long enough secret"),
        ]
        before = (
            api.list_calendars(lead_desk.client),
            api.list_plans(lead_desk.client),
            api.list_users(lead_desk.client),
        )
        for write in writes:
            with pytest.raises(Forbidden):
                write()
        assert (
            api.list_calendars(lead_desk.client),
            api.list_plans(lead_desk.client),
            api.list_users(lead_desk.client),
        ) == before
        assert lead_desk.client.me().id == lead_desk.user.id
    finally:
        agent.client.close()
        agent.replica.close()


def reset_dialog(qtbot: QtBot, tab: PeopleTab) -> PasswordDialog:
    qtbot.mouseClick(tab.reset_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.password_dialog is not None and tab.password_dialog.isVisible())
    assert tab.password_dialog is not None
    return tab.password_dialog


def test_lead_resets_a_password_from_a_dialog_that_keeps_it_nowhere(
    qtbot: QtBot,
    dialog: AdminDialog,
    lead_desk: LeadDesk,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    shell_settings: QSettings,
) -> None:
    secret = "Tr0ub4dor & 3 #plenty"
    tab = dialog.people
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    agent = desk_for(lead_desk.server, agent_dir, "agent", lead_desk.database)
    try:
        pick(qtbot, tab, next(i for i, r in enumerate(tab.rows) if r["username"] == "agent"))
        # Too short: the server refuses naming the field, and nothing changes.
        asked = reset_dialog(qtbot, tab)
        asked.first.setText("short")
        asked.second.setText("short")
        qtbot.mouseClick(asked.ok, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: tab.error.text() != "", timeout=15_000)
        assert tab.error.text().startswith("Not saved: password")
        assert agent.client.me().username == "agent"
        qtbot.waitUntil(lambda: tab.password_dialog is None)
        with caplog.at_level(logging.DEBUG):
            asked = reset_dialog(qtbot, tab)
            asked.first.setText(secret)
            asked.second.setText(secret + "x")
            assert not asked.ok.isEnabled()
            assert asked.hint.text() == "The two passwords differ."
            asked.second.setText(secret)
            assert asked.ok.isEnabled()
            assert asked.first.echoMode() is QLineEdit.EchoMode.Password
            qtbot.mouseClick(asked.ok, Qt.MouseButton.LeftButton)
            assert (asked.first.text(), asked.second.text()) == ("", "")
            qtbot.waitUntil(lambda: tab.busy is None and tab.error.text() != "", timeout=15_000)
        member = tab.current["display_name"]  # type: ignore[index]
        assert tab.error.text() == f"Password of {member} reset; their sign-ins were revoked."
        with pytest.raises(Unauthorized):
            agent.client.me()
        fresh = ApiClient(lead_desk.server.url, backoff_factor=0.01, connect_timeout=2.0)
        try:
            assert fresh.login("agent", secret).user.username == "agent"
        finally:
            fresh.close()
        assert secret not in caplog.text
        shell_settings.sync()
        assert all(secret not in str(shell_settings.value(k)) for k in shell_settings.allKeys())
    finally:
        agent.client.close()
        agent.replica.close()


def test_organisations_and_contacts_are_added_and_edited(
    qtbot: QtBot,
    dialog: AdminDialog,
    lead_desk: LeadDesk,
) -> None:
    tab = dialog.organisations
    assert tab is not None
    name = "Ünïcorn & Sons #7 (100%)"
    qtbot.mouseClick(tab.new_button, Qt.MouseButton.LeftButton)
    tab.name.setText("")
    before = api.list_organisations(lead_desk.client)
    message = saved_or_refused(qtbot, tab)
    assert message.startswith("Not saved: name: ")
    assert message.count("name") == 1
    assert api.list_organisations(lead_desk.client) == before
    tab.name.setText(name)
    tab.plan.setCurrentIndex(1)
    tab.verified.setValue(3)
    assert saved_or_refused(qtbot, tab) == "Saved."
    found = api.list_organisations(lead_desk.client, query=name)
    assert [(o["name"], o["plan_id"], o["verified_reviews"]) for o in found] == [
        (name, tab.plan.itemData(1), 3)
    ]
    qtbot.waitUntil(lambda: tab.current is not None and tab.current["name"] == name, timeout=15_000)
    qtbot.waitUntil(lambda: tab.busy is None and tab.new_contact_button.isEnabled(), timeout=15_000)
    assert tab.contacts.count() == 0

    def save_contact() -> str:
        tab.contact_error.clear()
        qtbot.mouseClick(tab.save_contact_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: tab.contact_error.text() != "", timeout=15_000)
        qtbot.waitUntil(lambda: tab.busy is None, timeout=15_000)
        return str(tab.contact_error.text())

    tab.contact_name.setText("Åsa Öberg")
    tab.contact_email.setText("not an address")
    assert save_contact().startswith("Not saved: email")
    tab.contact_email.setText("asa@unicorn.test")
    assert save_contact() == "Contact saved."
    qtbot.waitUntil(lambda: tab.contacts.count() == 1, timeout=15_000)
    assert tab.current_contact is not None
    assert tab.contacts.currentItem().text() == "Åsa Öberg <asa@unicorn.test>"
    tab.contact_phone.setText("+46 8 123 456")
    assert save_contact() == "Contact saved."
    qtbot.mouseClick(tab.new_contact_button, Qt.MouseButton.LeftButton)
    tab.contact_name.setText("Bo Berg")
    tab.contact_email.setText("ASA@unicorn.test")  # Åsa's address: refused, naming the field
    assert save_contact().startswith("Not saved: email")
    org_id = uuid.UUID(str(found[0]["id"]))
    contacts = api.get_organisation(lead_desk.client, org_id)["contacts"]
    assert [(c["name"], c["email"], c["phone"], c["validated"]) for c in contacts] == [
        ("Åsa Öberg", "asa@unicorn.test", "+46 8 123 456", False)
    ]


def test_leads_find_the_admin_screens_in_the_file_menu(
    qtbot: QtBot,
    shell_settings: QSettings,
    lead_desk: LeadDesk,
) -> None:
    window = MainWindow(shell_settings)
    qtbot.addWidget(window)
    window.attach(
        Workspace(
            replica=lead_desk.replica,
            client=lead_desk.client,
            engine=lead_desk.engine,
            user=lead_desk.user,
            server_label="test",
            token_key=lead_desk.server.url,
        )
    )
    action = next(a for a in _first_menu(window).actions() if a.objectName() == "adminAction")
    action.trigger()
    dialog = window.admin_dialog  # type: ignore[attr-defined]
    assert isinstance(dialog, AdminDialog)
    qtbot.waitUntil(lambda: dialog.people.items.count() > 0, timeout=15_000)
    window.detach()


def _unanswered_ticket_on(database: Path) -> tuple[uuid.UUID, uuid.UUID]:
    """(ticket, calendar): an open, unanswered, never paused ticket whose plan counts in a
    calendar of its own, with a stored due instant."""
    engine = make_engine(sqlite_url(database))
    try:
        with Session(engine) as s:
            paused = select(WaitingPeriod.ticket_id)
            row = s.execute(
                select(Ticket.id, Plan.calendar_id)
                .join(Organisation, Organisation.id == Ticket.organisation_id)
                .join(Plan, Plan.id == Organisation.plan_id)
                .where(
                    Plan.calendar_id.is_not(None),
                    Ticket.first_response_at.is_(None),
                    Ticket.sla_due_at.is_not(None),
                    Ticket.deleted.is_(False),
                    Ticket.status.in_([TicketStatus(x) for x in OPEN_STATUSES]),
                    Ticket.id.not_in(paused),
                )
                .order_by(Ticket.arrived_at.desc())
                .limit(1)
            ).one()
            assert row.calendar_id is not None
            return row.id, row.calendar_id
    finally:
        engine.dispose()


def _stored_due(database: Path, ticket_id: uuid.UUID) -> tuple[datetime, datetime]:
    """The server's stored instants, and a straightforward recomputation with the rules."""
    engine = make_engine(sqlite_url(database))
    try:
        with Session(engine) as s:
            ticket = s.get_one(Ticket, ticket_id)
            plan = s.get_one(Plan, s.get_one(Organisation, ticket.organisation_id).plan_id)
            assert plan.calendar_id is not None
            calendar = BusinessCalendar.from_dict(s.get_one(Calendar, plan.calendar_id).data)
            expected = response_instants(
                ticket.arrived_at, ticket.urgency, plan.to_policy(), calendar
            )
            assert ticket.sla_due_at is not None
            assert expected is not None
            return ticket.sla_due_at, expected[0]
    finally:
        engine.dispose()


def test_a_one_off_closed_day_moves_the_sla_clock(
    qtbot: QtBot,
    dialog: AdminDialog,
    lead_desk: LeadDesk,
) -> None:
    ticket_id, calendar_id = _unanswered_ticket_on(lead_desk.database)
    due_before, _ = _stored_due(lead_desk.database, ticket_id)
    tab = dialog.calendars
    pick(qtbot, tab, next(i for i, r in enumerate(tab.rows) if r["id"] == str(calendar_id)))
    zone = ZoneInfo(tab.tz.text())
    closed = due_before.astimezone(zone).date()
    # Not an override line: refused before sending, naming the field.
    tab.overrides.setPlainText(f"{closed.isoformat()}")
    assert saved_or_refused(qtbot, tab).startswith("Not saved: overrides")
    tab.overrides.setPlainText(f"{closed.isoformat()} 25:00-26:00")  # the rules refuse it
    assert saved_or_refused(qtbot, tab).startswith(f"Not saved: overrides.{closed.isoformat()}")
    assert _stored_due(lead_desk.database, ticket_id)[0] == due_before
    tab.overrides.setPlainText(f"{closed.isoformat()} closed\n2031-12-24 08:00-12:00")
    assert any(
        line.startswith(f"{closed:%a %d %b}: closed")
        for line in calendar_preview(tab.calendar_data(), closed)
    )
    assert saved_or_refused(qtbot, tab) == "Saved."
    stored = next(c for c in api.list_calendars(lead_desk.client) if c["id"] == str(calendar_id))
    assert stored["overrides"] == {closed.isoformat(): [], "2031-12-24": [["08:00", "12:00"]]}
    due_after, recomputed = _stored_due(lead_desk.database, ticket_id)
    assert due_after == recomputed
    assert due_after.astimezone(zone).date() > closed
    # The desktop's replica gets the moved instant with its next pull.
    lead_desk.sync()
    with lead_desk.replica.session() as s:
        assert s.get_one(Ticket, ticket_id).sla_due_at == due_after
    # Removing the override gives the day back.
    tab.overrides.setPlainText("2031-12-24 08:00-12:00")
    assert saved_or_refused(qtbot, tab) == "Saved."
    assert _stored_due(lead_desk.database, ticket_id)[0] == due_before
