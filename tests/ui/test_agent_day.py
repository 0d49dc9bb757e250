"""The agent's day, second pass (issue 15), through the real desktop in local mode.

``shell_app`` is the real start-up on a copy of a small demo team: the embedded server, the
controller, the main window and its sync thread (tests/ui/shell_fixtures.py).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QLabel, QMessageBox
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agentdesk.models import Contact, EventKind, Role, Ticket, TicketEvent, TicketStatus
from agentdesk.models.versioning import enable_stamping
from agentdesk.server.demo import DEMO_USERS
from agentdesk.sync.client import ApiClient
from agentdesk.sync.credentials import SaveOutcome
from agentdesk.sync.engine import SyncEngine
from agentdesk.sync.protocol import PullRequest
from agentdesk.sync.replica import Replica
from agentdesk.ui import settings
from agentdesk.ui.contacts.panel import ContactPanel
from agentdesk.ui.queue.model import Column, QueueModel, SavedView
from agentdesk.ui.shell.settings_dialog import SettingsDialog
from agentdesk.ui.shell.sign_in import SignedIn, SignInDialog
from agentdesk.ui.ticket.panel import TicketPanel
from tests.plugins.live_team import Desk, Team
from tests.plugins.panels import PanelDesk, new_ticket
from tests.ui.queue_fixtures import listed_ids
from tests.ui.shell_fixtures import (
    Shell,
    make_shell,
    shell_app,
    shell_keyring,
    shell_local_data,
    shell_local_template,
    shell_settings,
)

__all__ = [
    "shell_app",
    "shell_keyring",
    "shell_local_data",
    "shell_local_template",
    "shell_settings",
]

START_TIMEOUT = 30_000


def _online(shell: Shell, qtbot: QtBot) -> None:
    window = shell.window
    qtbot.waitExposed(window)
    shell.controller.start()

    def ready() -> bool:
        status = window.status_bar.status()
        model = window.queue_model
        return (
            model is not None
            and model.rowCount() > 0
            and not model.is_loading()
            and status is not None
            and status.state == "online"
            and status.pending == 0
        )

    qtbot.waitUntil(ready, timeout=START_TIMEOUT)


def test_demo_history_reads_right_for_every_event_kind(qtbot: QtBot, shell_app: Shell) -> None:
    """Issue 15 item 3: the demo's events render in the panel's history without a "?", with
    the assignee's name and the charges the message is about."""
    _online(shell_app, qtbot)
    window = shell_app.window
    ws = window.workspace
    assert ws is not None
    panel = window.ticket_panel
    assert isinstance(panel, TicketPanel)
    with ws.replica.session() as s:
        example: dict[EventKind, uuid.UUID] = {}
        for kind, ticket_id in s.execute(select(TicketEvent.kind, TicketEvent.ticket_id)):
            example.setdefault(kind, ticket_id)
    assert {
        EventKind.CREATED,
        EventKind.STATUS,
        EventKind.TRIAGE,
        EventKind.ASSIGNMENT,
        EventKind.REPLY,
        EventKind.NOTIFICATION,
        EventKind.REDIRECT,
        EventKind.ESCALATION,
    } <= set(example)
    for kind, ticket_id in example.items():
        with qtbot.waitSignal(panel.cardLoaded, timeout=10_000):  # read on a worker
            panel.show_ticket(ticket_id)
        view = panel.view
        assert view is not None
        assert view.id == ticket_id
        shown = panel.history.toPlainText()
        for item in view.history:
            assert "?" not in item.title, (kind, item)
            assert "(was nobody)" not in item.title, (kind, item)
            assert item.title in shown, (kind, item.title)
            if item.kind is EventKind.EXTRA_CHARGES:
                assert item.title.startswith("Extra charges apply"), item


@pytest.mark.usefixtures("inline_background")
def test_a_switched_out_requester_is_not_helped_and_redirect_is_the_next_step(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    """Issue 15 item 7 (seed 003): switching a contact out asks first (it stops the work on
    all their open tickets); after it, Reply, Tell customer and Resolve are disabled with the
    reason, and Redirect works on a ticket already in progress."""
    desk = panel_desk("coordinator")
    world = panel_team.world
    ticket_id = new_ticket(desk, panel_team)  # Ann at Globex, validated when she asked
    second = new_ticket(desk, panel_team, subject="And the invoices")
    tickets = TicketPanel(desk.replica)
    qtbot.addWidget(tickets)
    tickets.show_ticket(ticket_id)
    contacts = ContactPanel(desk.replica)
    qtbot.addWidget(contacts)
    contacts.show_ticket(ticket_id)

    # Triage, take it, tell the customer: in progress.
    tickets.triage_button.click()
    tickets.assign_me_button.click()
    tickets.open_tell_customer()
    assert tickets.tell_dialog is not None
    tickets.tell_dialog.accept()
    assert tickets.fields["status"].text() == "In progress"
    assert not tickets.redirect_button.isVisibleTo(tickets)

    # Switch Ann out: asked first, naming what it does to her open tickets. Cancel changes
    # nothing.
    contacts.holder_combo.setCurrentIndex(
        contacts.holder_combo.findData(str(world.contacts["ann"]))
    )
    contacts.switch_out_button.click()
    box = contacts.confirm_box
    assert box is not None
    assert box.isVisible()
    assert box.textFormat() is Qt.TextFormat.PlainText
    assert "Switch Ann out of Globex's validated support contacts?" in box.text()
    assert "Ann has 2 open tickets." in box.text()
    assert "none of them can be replied to or resolved" in box.text()
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert contacts.mark.text() == "✔ Validated contact"
    contacts.switch_out_button.click()
    assert contacts.confirm_box is not None
    contacts.confirm_box.button(QMessageBox.StandardButton.Yes).click()
    assert contacts.message.text() == "Ann was switched out"

    # The ticket panel refuses to help her, says why and what to do instead.
    tickets.refresh()
    for button in (tickets.reply_mode, tickets.resolve_button):
        assert not button.isEnabled()
        assert "Ann is not a validated support contact" in button.toolTip()
        assert "Redirect the ticket to the organisation's validated contacts" in (button.toolTip())
    assert tickets.note_mode.isChecked(), "the composer falls back to an internal note"
    tickets.resolve()  # a stale click: refused inline, nothing queued
    assert tickets.message.kind == "error"
    assert "Ann is not a validated support contact" in tickets.message.text()
    assert tickets.fields["status"].text() == "In progress"
    assert tickets.redirect_button.isVisibleTo(tickets)
    assert tickets.redirect_button.isEnabled()

    # The way on: redirect, from in progress.
    qtbot.mouseClick(tickets.redirect_button, Qt.MouseButton.LeftButton)
    assert tickets.message.kind != "error", tickets.message.text()
    assert tickets.fields["status"].text() == "Redirected"
    assert not tickets.redirect_button.isVisibleTo(tickets)
    desk.sync()
    assert desk.replica.rejections() == []
    with panel_team.db() as s:
        assert s.get_one(Ticket, ticket_id).status is TicketStatus.REDIRECTED
        assert s.get_one(Ticket, second).status is TicketStatus.NEW


def test_local_mode_signs_in_as_any_demo_user_and_never_saves_its_address(
    qtbot: QtBot,
    shell_app: Shell,
    shell_settings: QSettings,
) -> None:
    """Issue 15 item 2: the sign-in dialog lists the demo team's people and roles for local
    mode; a sign-in to the local server's temporary address is local mode, not a team server
    to remember; the next start signs in as the same person."""
    window = shell_app.window
    _online(shell_app, qtbot)
    ws = window.workspace
    assert ws is not None
    assert ws.local
    assert ws.user.role is Role.LEAD
    local_url = ws.server_url

    window.connect_action.trigger()  # File > Connect...
    dialog = shell_app.controller.dialog
    assert isinstance(dialog, SignInDialog)
    combo = dialog.local_person
    assert combo is not None
    people = {str(combo.itemData(i)): combo.itemText(i) for i in range(combo.count())}
    assert people == {u.username: f"{u.display_name} ({u.duty})" for u in DEMO_USERS}
    assert combo.currentData() == "lead"
    combo.setCurrentIndex(combo.findData("agent"))
    assert dialog.local_button is not None
    dialog.local_button.click()

    def signed_in_as(username: str) -> Callable[[], bool]:
        def check() -> bool:
            current = window.workspace
            status = window.status_bar.status()
            return (
                current is not None
                and current.local
                and current.user.username == username
                and status is not None
                and status.state == "online"
            )

        return check

    qtbot.waitUntil(signed_in_as("agent"), timeout=START_TIMEOUT)
    assert window.workspace is not None
    assert window.workspace.user.role is Role.AGENT
    assert window.windowTitle().startswith("Sam Okafor (")
    assert settings.LOCAL_USER.read(shell_settings) == "agent"
    assert settings.SERVER_URL.read(shell_settings) == ""

    # Signing in to the local server's own address (what people did to try a role): local
    # mode as that user, and its temporary address is not remembered.
    window.connect_action.trigger()
    dialog = shell_app.controller.dialog
    assert isinstance(dialog, SignInDialog)
    dialog.server.setText(local_url)
    dialog.username.setText("coordinator")
    dialog.password.setText("demo-coordinator-pass")
    dialog.sign_in_button.click()
    qtbot.waitUntil(signed_in_as("coordinator"), timeout=START_TIMEOUT)
    assert settings.SERVER_URL.read(shell_settings) == ""
    assert settings.LOCAL_USER.read(shell_settings) == "coordinator"

    # The next start: local mode again, as the coordinator.
    shell_app.quit()
    again = make_shell(qtbot, shell_settings)
    try:
        again.controller.start()
        qtbot.waitUntil(
            lambda: (
                again.window.workspace is not None
                and again.window.workspace.user.username == "coordinator"
            ),
            timeout=START_TIMEOUT,
        )
        assert again.window.workspace is not None
        assert again.window.workspace.local
        assert again.controller.dialog is None
    finally:
        again.quit()


@pytest.mark.usefixtures("inline_background")
def test_loading_not_a_verdict_until_the_lookup_rows_arrive(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    """Issue 15 item 6: a first sync can bring a ticket before its requester's row (the
    contact changed later, so it comes at its newer version). Until it is there, the queue,
    the ticket panel and the contact panel say "loading" and refuse nothing on a rule; once
    it arrives they show the verdict."""
    world = panel_team.world
    coordinator = panel_desk("coordinator")
    ticket_id = new_ticket(coordinator, panel_team)  # Ann, validated
    coordinator.sync()
    with panel_team.db() as s:  # Ann's email changes on the server afterwards
        enable_stamping(s, world.tenant)
        s.get_one(Contact, world.contacts["ann"]).email = "ann.lee@globex.test"

    desk = panel_team.desk("agent")  # a fresh desktop: its first sync, page by page
    client_id = desk.replica.state.client_id
    cursor = 0
    while not _has_ticket(desk, ticket_id):
        page = desk.client.pull(PullRequest(client_id=client_id, cursor=cursor, limit=1))
        desk.replica.apply_pull(page)
        cursor = page.cursor
    with desk.replica.session() as s:
        assert s.get(Contact, world.contacts["ann"]) is None, "Ann's row is still to come"

    tickets = TicketPanel(desk.replica)
    qtbot.addWidget(tickets)
    tickets.show_ticket(ticket_id)
    contacts = ContactPanel(desk.replica)
    qtbot.addWidget(contacts)
    contacts.show_ticket(ticket_id)
    model = QueueModel(desk.replica.engine, asynchronous=False)

    requester = tickets.fields["requester"].text()
    assert requester.startswith("loading…")
    assert "unknown contact" not in requester
    assert "not a validated contact" not in requester
    assert tickets.reply_mode.toolTip() == (
        "Cannot reply to the customer yet: the requester's details are still loading"
    )
    assert not tickets.redirect_button.isVisibleTo(tickets)
    assert contacts.placeholder.text().startswith("Loading the ticket's requester…")
    row = model.row_of(ticket_id)
    assert row is not None
    cell = model.index(row, Column.REQUESTER)
    assert cell.data() == "loading…"
    assert "still arriving" in cell.data(Qt.ItemDataRole.ToolTipRole)

    desk.sync()  # the rest arrives
    tickets.refresh()
    contacts.refresh()
    model.invalidate_lookups()
    assert "✔ validated contact" in tickets.fields["requester"].text()
    assert tickets.reply_mode.isEnabled()
    assert contacts.mark.text() == "✔ Validated contact"
    assert model.index(row, Column.REQUESTER).data() == "✓ Ann"


def _has_ticket(desk: Desk, ticket_id: uuid.UUID) -> bool:
    with desk.replica.session() as s:
        return s.get(Ticket, ticket_id) is not None


def _in_progress_validated(shell: Shell) -> list[uuid.UUID]:
    """Listed triaged, in-progress or waiting tickets whose requester is validated (Resolve
    is allowed)."""
    ws = shell.window.workspace
    model = shell.window.queue_model
    assert ws is not None
    assert model is not None
    with ws.replica.session() as s:
        rows = set(
            s.scalars(
                select(Ticket.id)
                .join(Contact, Contact.id == Ticket.requester_id)
                .where(
                    Ticket.status.in_(
                        [
                            TicketStatus.TRIAGED,
                            TicketStatus.IN_PROGRESS,
                            TicketStatus.WAITING_ON_CUSTOMER,
                        ]
                    ),
                    Contact.validated.is_(True),
                )
            )
        )
    return [t for t in listed_ids(model) if t in rows]


def _click(qtbot: QtBot, shell: Shell, ticket_id: uuid.UUID) -> None:
    view, model = shell.window.queue_view, shell.window.queue_model
    assert view is not None
    assert model is not None
    row = model.row_of(ticket_id)
    assert row is not None
    table = view.table()
    index = model.index(row, Column.SUBJECT)
    table.scrollTo(index)
    qtbot.mouseClick(
        table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualRect(index).center()
    )
    panel = shell.window.ticket_panel
    # The app's panel reads its card on a worker: wait for that card, not just the pick.
    qtbot.waitUntil(
        lambda: panel is not None and panel.view is not None and panel.view.id == ticket_id,
        timeout=5_000,
    )


def test_the_shown_ticket_never_changes_behind_the_agents_back(
    qtbot: QtBot,
    shell_app: Shell,
    tmp_path: Path,
) -> None:
    """Issue 15 item 5: after Resolve, or when another desktop takes the shown ticket out of
    the view, the panel keeps showing it and says it left the view; nothing else is picked
    until the agent picks it."""
    _online(shell_app, qtbot)
    window = shell_app.window
    panel, view, model = window.ticket_panel, window.queue_view, window.queue_model
    assert isinstance(panel, TicketPanel)
    assert view is not None
    assert model is not None
    first, second = _in_progress_validated(shell_app)[:2]
    third = next(t for t in listed_ids(model) if t not in (first, second))

    # Resolve the shown ticket here: it leaves "All open", the panel stays on it.
    _click(qtbot, shell_app, first)
    assert not panel.left_view_note.isVisible()
    qtbot.mouseClick(panel.resolve_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: model.row_of(first) is None, timeout=10_000)
    qtbot.wait(200)  # any deferred "pick the current row" has run
    assert panel.ticket_id == first
    assert panel.fields["status"].text() == "Resolved"
    assert view.current_ticket_id() is None, "no neighbour was made current"
    assert panel.left_view_note.isVisible()
    assert panel.left_view_note.text() == (
        "No longer in the “All open” view (it is resolved now). It stays here until you pick "
        "another ticket."
    )

    # Another desktop resolves the ticket shown here.
    _click(qtbot, shell_app, second)
    assert not panel.left_view_note.isVisible()
    ws = window.workspace
    assert ws is not None
    other = _other_desk(ws.server_url, "agent2", tmp_path)
    try:
        other.engine.sync_once()
        other.replica.mutate("change_status", {"ticket_id": str(second), "status": "resolved"})
        other.engine.sync_once()
        assert other.replica.rejections() == []
    finally:
        other.client.close()
        other.replica.close()
    qtbot.waitUntil(lambda: model.row_of(second) is None, timeout=15_000)
    qtbot.waitUntil(lambda: panel.fields["status"].text() == "Resolved", timeout=10_000)
    qtbot.wait(200)
    assert panel.ticket_id == second
    assert view.current_ticket_id() is None
    assert "(it is resolved now)" in panel.left_view_note.text()

    # The agent moves on: the note goes with the old ticket.
    _click(qtbot, shell_app, third)
    assert not panel.left_view_note.isVisible()


@dataclass
class _OtherDesk:
    replica: Replica
    client: ApiClient
    engine: SyncEngine


def _other_desk(url: str, username: str, tmp_path: Path) -> _OtherDesk:
    """A second desktop (replica, client, sync engine) on the same server."""
    client = ApiClient(url)
    login = client.login(username, f"demo-{username}-pass")
    replica = Replica(tmp_path / f"other-{username}.sqlite3")
    replica.configure(
        server_url=url,
        tenant_id=login.user.tenant_id,
        user_id=login.user.id,
        username=username,
        role=login.user.role,
        timezone=login.user.team_timezone,
    )
    return _OtherDesk(replica, client, SyncEngine(replica, client))


def _listed_after(qtbot: QtBot, model: QueueModel, change: Callable[[], None]) -> list[uuid.UUID]:
    change()
    qtbot.waitUntil(lambda: not model.is_loading(), timeout=10_000)
    return listed_ids(model)


def test_finished_tickets_have_views_and_every_ticket_is_searchable(
    qtbot: QtBot,
    shell_app: Shell,
) -> None:
    """Issue 15 item 1: Resolved, Closed and Redirected views (Close and Reopen reachable), a
    Recent view of what I touched, and a search over every ticket by subject, requester,
    organisation and reference."""
    _online(shell_app, qtbot)
    window = shell_app.window
    model, view, panel = window.queue_model, window.queue_view, window.ticket_panel
    ws = window.workspace
    assert model is not None
    assert view is not None
    assert isinstance(panel, TicketPanel)
    assert ws is not None
    with ws.replica.session() as s:
        by_status = {
            st: set(s.scalars(select(Ticket.id).where(Ticket.status == st))) for st in TicketStatus
        }
        closed_id = sorted(by_status[TicketStatus.CLOSED])[0]
        closed = s.get_one(Ticket, closed_id)
        requester = s.get_one(Contact, closed.requester_id).name
        subject = closed.subject
    for saved, status in (
        (SavedView.RESOLVED, TicketStatus.RESOLVED),
        (SavedView.CLOSED, TicketStatus.CLOSED),
        (SavedView.REDIRECTED, TicketStatus.REDIRECTED),
    ):
        listed = _listed_after(qtbot, model, functools.partial(view.set_view, saved))
        assert set(listed) == by_status[status], saved
        assert listed, saved

    # A resolved ticket can be closed from its view; a redirected one reopened.
    closed_here = _listed_after(qtbot, model, lambda: view.set_view(SavedView.RESOLVED))[0]
    _click(qtbot, shell_app, closed_here)
    assert panel.close_button.isEnabled(), panel.close_button.toolTip()
    qtbot.mouseClick(panel.close_button, Qt.MouseButton.LeftButton)
    # The writer applied it; the app's panel re-reads its card on a worker.
    qtbot.waitUntil(lambda: panel.fields["status"].text() == "Closed", timeout=10_000)
    assert panel.ticket_id == closed_here, "the closed ticket stays on show"
    listed = _listed_after(qtbot, model, lambda: view.set_view(SavedView.REDIRECTED))
    _click(qtbot, shell_app, listed[0])
    assert panel.reopen_button.isEnabled()

    # Recent: what I touched (the lead has written nothing else in the demo), finished or not.
    assert _listed_after(qtbot, model, lambda: view.set_view(SavedView.RECENT)) == [closed_here]

    # Every ticket, searched: subject, requester, organisation, reference.
    _listed_after(qtbot, model, lambda: view.set_view(SavedView.EVERY))
    assert model.rowCount() == sum(len(ids) for ids in by_status.values())
    for text in (subject, requester, closed_id.hex[-10:], str(closed_id)[:13]):
        found = _listed_after(qtbot, model, functools.partial(model.set_search, text))
        assert closed_id in found, text
    assert _listed_after(qtbot, model, lambda: model.set_search("zzzz-nothing")) == []


def test_a_level1_agent_can_ask_a_coordinator_to_triage(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    """Issue 15 item 8: an agent who took an untriaged ticket is not stuck behind a tooltip."""
    desk = panel_desk("agent")
    ticket_id = new_ticket(desk, panel_team)
    panel = TicketPanel(desk.replica)
    qtbot.addWidget(panel)
    panel.show_ticket(ticket_id)
    panel.assign_me_button.click()
    assert not panel.triage_button.isEnabled()
    assert panel.ask_triage_button.isVisibleTo(panel)
    assert panel.ask_triage_button.isEnabled()
    qtbot.mouseClick(panel.ask_triage_button, Qt.MouseButton.LeftButton)
    assert panel.message.kind != "error", panel.message.text()
    assert "asked to triage" in panel.message.text()
    history = panel.history.toPlainText()
    assert "Agent asks a coordinator to triage this ticket" in history
    desk.sync()
    assert desk.replica.rejections() == []

    # The coordinator finds it in the Triage view, and triages it; the button goes away.
    coordinator = panel_desk("coordinator")
    model = QueueModel(coordinator.replica.engine, view=SavedView.TRIAGE, asynchronous=False)
    assert ticket_id in listed_ids(model)
    theirs = TicketPanel(coordinator.replica)
    qtbot.addWidget(theirs)
    theirs.show_ticket(ticket_id)
    assert not theirs.ask_triage_button.isVisibleTo(theirs)
    theirs.triage_button.click()
    coordinator.sync()
    desk.sync()
    panel.refresh()
    assert not panel.ask_triage_button.isVisibleTo(panel)


def test_the_assign_list_offers_agents_first_with_their_load(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    """Issue 15 item 10: no admins or consultants for a support ticket; role and open load."""
    desk = panel_desk("coordinator")
    busy = new_ticket(desk, panel_team)
    panel = TicketPanel(desk.replica)
    qtbot.addWidget(panel)
    panel.show_ticket(busy)
    panel.triage_button.click()
    panel.assign_me_button.click()
    fresh = new_ticket(desk, panel_team, subject="Another one")
    panel.show_ticket(fresh)
    combo = panel.assignee_combo
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "Choose a person…",
        "Agent — agent, 0 open",
        "Agent2 — agent, 0 open",
        "Coordinator — coordinator, 1 open",
        "Lead — team lead, 0 open",
    ]


def test_offline_the_reply_is_queued_and_the_bar_does_not_claim_a_fresh_sync(
    qtbot: QtBot,
    shell_app: Shell,
) -> None:
    """Issue 15 item 10: offline, "Reply sent" and "Synced just now" were both untrue."""
    _online(shell_app, qtbot)
    window = shell_app.window
    panel, bar = window.ticket_panel, window.status_bar
    assert isinstance(panel, TicketPanel)
    ticket_id = _in_progress_validated(shell_app)[0]
    _click(qtbot, shell_app, ticket_id)
    mode = shell_app.launcher.local_mode
    assert mode is not None
    mode.server.stop()
    qtbot.waitUntil(lambda: bar.state_label.text() == "● Offline", timeout=10_000)
    panel.composer.setPlainText("We are on it.")
    panel.send()
    assert panel.message.text() == ("Reply queued: it is sent when this desktop is back online")
    # The push of the reply fails (a moment of "syncing"), and the bar settles offline.
    qtbot.waitUntil(
        lambda: bar.pending_label.isVisible() and bar.state_label.text() == "● Offline",
        timeout=10_000,
    )
    assert bar.last_sync_label.text().startswith("Last synced ")


def test_settings_shows_no_literal_ampersand_and_the_keyring_warning_is_a_sentence(
    qtbot: QtBot,
    shell_settings: QSettings,
) -> None:
    dialog = SettingsDialog(shell_settings)
    qtbot.addWidget(dialog)
    labels = [w for w in dialog.findChildren(QLabel) if w.text() == "&CA bundle:"]
    assert len(labels) == 1
    assert labels[0].buddy() is dialog.ca_bundle, "a buddy: the & is a mnemonic, not shown"
    saved = SaveOutcome(persisted=False, problem="this computer has no usable keyring")
    signed = SignedIn("https://x.test", "dana", None, None, saved)  # type: ignore[arg-type]
    assert signed.warning == (
        "This computer has no usable keyring: you'll need to sign in again next time."
    )
