"""The desktop as a user starts it: local mode, a team server, offline, sign-out, quitting.

Real pieces throughout: the embedded server of local mode (on a copy of a small demo team), the
start-up composition (agentdesk.desktop), the controller and main window, the sync thread.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agentdesk.desktop import DesktopLauncher, replica_path
from agentdesk.models import Ticket, TicketEvent
from agentdesk.models.db import make_engine, make_session_factory, session_scope, sqlite_url
from agentdesk.paths import data_dir
from agentdesk.server.embedded import EmbeddedServer
from agentdesk.server.settings import ServerSettings
from agentdesk.sync.client import ApiClient, Unauthorized
from agentdesk.ui import settings
from agentdesk.ui.shell.main_window import MainWindow
from agentdesk.ui.shell.sign_in import SignInDialog
from tests.plugins.live_team import PASSWORD, MemoryKeyring, Team
from tests.ui.shell_fixtures import (
    Shell,
    make_shell,
    shell_app,
    shell_keyring,
    shell_local_data,
    shell_local_template,
    shell_settings,
    wait_for_threads_to_end,
)

__all__ = [
    "shell_app",
    "shell_keyring",
    "shell_local_data",
    "shell_local_template",
    "shell_settings",
]

START_TIMEOUT = 30_000


def synced(window: MainWindow) -> Callable[[], bool]:
    """The window shows a workspace whose first sync is done and whose queue has rows."""

    def check() -> bool:
        status = window.status_bar.status()
        return (
            window.queue_model is not None
            and window.queue_model.rowCount() > 0
            and not window.queue_model.is_loading()
            and status is not None
            and status.state == "online"
            and status.pending == 0
        )

    return check


def open_ticket_ids(window: MainWindow) -> set[uuid.UUID]:
    assert window.workspace is not None
    with window.workspace.replica.session() as s:
        return set(
            s.scalars(
                select(Ticket.id).where(
                    Ticket.status.in_(["new", "triaged", "in_progress", "waiting_on_customer"])
                )
            )
        )


def test_local_mode_starts_signs_in_and_shows_the_queue(
    qtbot: QtBot,
    shell_app: Shell,
    shell_keyring: MemoryKeyring,
) -> None:
    window = shell_app.window
    shell_app.controller.start()
    # The GUI thread never waits for local mode: the window says what it is doing meanwhile.
    assert window.stack.currentWidget() is window.message_page
    assert window.message_page.title.text() == "Starting local server and loading the demo team…"
    qtbot.waitUntil(synced(window), timeout=START_TIMEOUT)

    ws = window.workspace
    assert ws is not None
    assert ws.local
    assert ws.replica.path.parent == data_dir() / "replicas"
    assert window.windowTitle() == "Dana Whitfield (team lead) — Local mode — AgentDesk"
    # Signed in over HTTP with local mode's password; the token went to the keyring.
    assert ("agentdesk", "local|lead") in shell_keyring.secrets

    bar = window.status_bar
    assert bar.state_label.text() == "● Online"
    assert bar.last_sync_label.text() == "Synced just now"
    assert bar.server_label.text() == "Local mode"
    assert not bar.pending_label.isVisible()

    # The queue lists the open tickets the sync brought (the default view: All open).
    model = window.queue_model
    assert model is not None
    listed = {model.ticket_id(r) for r in range(model.rowCount())}
    assert listed == open_ticket_ids(window)

    # Selecting a ticket shows it in the ticket and contact panels.
    view = window.queue_view
    assert view is not None
    view.table().setFocus()
    view.table().step(1)
    ticket = view.current_ticket_id()
    assert ticket is not None
    qtbot.waitUntil(
        lambda: window.ticket_panel is not None and window.ticket_panel.ticket_id == ticket
    )
    assert window.contact_panel is not None
    contacts = window.contact_panel
    qtbot.waitUntil(lambda: contacts.view is not None)  # read on a worker
    assert window.contact_panel.view is not None

    # "Statement…" on the organisation opens the workbench's statement dialog for it.
    panel = window.contact_panel
    qtbot.waitUntil(lambda: panel.view is not None and panel.view.ticket_id == ticket)
    assert panel.view is not None
    org = panel.view.organisation_id
    panel.statement_button.click()
    bench = window.workbench
    assert bench is not None
    qtbot.waitUntil(
        lambda: bench.statement_dialog is not None and bench.statement_dialog.isVisible()
    )
    assert bench.statement_dialog is not None
    assert bench.statement_dialog.org.currentData() == str(org)
    bench.statement_dialog.reject()


def test_offline_and_back_with_a_local_change(qtbot: QtBot, shell_app: Shell) -> None:
    window = shell_app.window
    shell_app.controller.start()
    qtbot.waitUntil(synced(window), timeout=START_TIMEOUT)
    mode = shell_app.launcher.local_mode
    assert mode is not None
    port = mode.server.port
    mode.server.stop()
    bar = window.status_bar
    qtbot.waitUntil(lambda: bar.state_label.text() == "● Offline", timeout=10_000)
    assert "cannot reach" in bar.state_label.toolTip().lower()

    # Work goes on offline: a note is kept locally and counted as waiting.
    assert window.workspace is not None
    ticket = next(iter(open_ticket_ids(window)))
    window.workspace.replica.mutate(
        "add_note", {"ticket_id": str(ticket), "body": "Called the customer back."}
    )
    qtbot.waitUntil(lambda: bar.pending_label.isVisible(), timeout=5_000)
    assert bar.pending_label.text() == "1 change waiting to sync"

    # The server comes back (same port): the note is sent and the bar says so.
    mode.server = EmbeddedServer(
        ServerSettings(database_url=sqlite_url(mode.database)), port=port
    ).start()
    qtbot.waitUntil(
        lambda: bar.state_label.text() == "● Online" and not bar.pending_label.isVisible(),
        timeout=15_000,
    )
    engine = make_engine(sqlite_url(mode.database))
    try:
        with session_scope(make_session_factory(engine, write=False)) as s:
            bodies = s.scalars(select(TicketEvent.body).where(TicketEvent.ticket_id == ticket))
            assert "Called the customer back." in set(bodies)
    finally:
        engine.dispose()


def test_quitting_joins_the_threads_and_the_next_start_reuses_the_data(
    qtbot: QtBot,
    shell_app: Shell,
    shell_settings: QSettings,
) -> None:
    window = shell_app.window
    shell_app.controller.start()
    qtbot.waitUntil(synced(window), timeout=START_TIMEOUT)
    assert window.workspace is not None
    replica_file = window.workspace.replica.path
    listed = window.queue_model.rowCount() if window.queue_model else 0

    shell_app.quit()  # checks that no sync thread is left
    assert window.workspace is None
    assert shell_app.launcher.local_mode is None
    wait_for_threads_to_end("agentdesk-server")
    wait_for_threads_to_end("agentdesk-poke")

    again = make_shell(qtbot, shell_settings)
    again.controller.start()
    try:
        qtbot.waitUntil(synced(again.window), timeout=START_TIMEOUT)
        assert again.launcher.local_mode is not None
        assert not again.launcher.local_mode.seeded_now
        assert again.window.workspace is not None
        assert again.window.workspace.replica.path == replica_file
        assert again.window.queue_model is not None
        assert again.window.queue_model.rowCount() == listed
    finally:
        again.quit()


def test_sign_out_revokes_the_token_and_offers_local_mode_again(
    qtbot: QtBot,
    shell_app: Shell,
    shell_keyring: MemoryKeyring,
) -> None:
    window = shell_app.window
    shell_app.controller.start()
    qtbot.waitUntil(synced(window), timeout=START_TIMEOUT)
    assert window.workspace is not None
    url = window.workspace.server_url
    token = window.workspace.client.token
    assert token

    window.sign_out_action.trigger()
    qtbot.waitUntil(lambda: shell_app.controller.dialog is not None, timeout=10_000)
    assert window.workspace is None
    assert ("agentdesk", "local|lead") not in shell_keyring.secrets
    with ApiClient(url, token=token) as stale, pytest.raises(Unauthorized):
        stale.me()

    dialog = shell_app.controller.dialog
    assert isinstance(dialog, SignInDialog)
    assert dialog.local_button is not None
    dialog.local_button.click()
    qtbot.waitUntil(synced(window), timeout=START_TIMEOUT)
    assert window.workspace is not None
    assert window.workspace.client.token != token


def test_a_team_server_signs_in_resumes_offline_and_asks_again_when_refused(
    qtbot: QtBot,
    panel_team: Team,
    shell_settings: QSettings,
    shell_keyring: MemoryKeyring,
) -> None:
    first = make_shell(qtbot, shell_settings)
    try:
        first.window.connect_action.trigger()  # File > Connect...
        dialog = first.controller.dialog
        assert isinstance(dialog, SignInDialog)
        dialog.server.setText(panel_team.url)
        dialog.username.setText("agent")
        dialog.password.setText(PASSWORD)
        dialog.sign_in_button.click()
        qtbot.waitUntil(
            lambda: (
                first.window.workspace is not None
                and first.window.status_bar.status() is not None
                and first.window.status_bar.status().state == "online"  # type: ignore[union-attr]
            ),
            timeout=START_TIMEOUT,
        )
        host = panel_team.url.removeprefix("http://")
        assert first.window.windowTitle() == f"Agent (agent) — {host} — AgentDesk"
        assert settings.SERVER_URL.read(shell_settings) == panel_team.url
        assert settings.LAST_USER.read(shell_settings) == "agent"
        assert ("agentdesk", f"{panel_team.url}|agent") in shell_keyring.secrets
    finally:
        first.quit()

    # Next start, server down: the saved sign-in opens the workspace without the network.
    panel_team.server.stop()
    second = make_shell(qtbot, shell_settings)
    try:
        second.controller.start()
        qtbot.waitUntil(lambda: second.window.workspace is not None, timeout=10_000)
        assert second.controller.dialog is None
        qtbot.waitUntil(
            lambda: second.window.status_bar.state_label.text() == "● Offline", timeout=10_000
        )
        panel_team.server.start()
        qtbot.waitUntil(
            lambda: second.window.status_bar.state_label.text() == "● Online", timeout=15_000
        )
        # The token is revoked elsewhere: the sync stops and the sign-in dialog asks again.
        token = shell_keyring.secrets[("agentdesk", f"{panel_team.url}|agent")]
        with ApiClient(panel_team.url, token=token) as other:
            other.logout()
        qtbot.waitUntil(lambda: second.controller.dialog is not None, timeout=15_000)
        dialog = second.controller.dialog
        assert isinstance(dialog, SignInDialog)
        assert "sign in again" in dialog.intro.text()
        assert dialog.username.text() == "agent"
        assert second.window.workspace is None
    finally:
        second.quit()


def test_the_server_option_wins_over_the_saved_server_and_asks_for_a_sign_in(
    qtbot: QtBot,
    panel_team: Team,
    shell_settings: QSettings,
    shell_keyring: MemoryKeyring,
) -> None:
    settings.SERVER_URL.write(shell_settings, "https://saved.example.com")
    settings.LAST_USER.write(shell_settings, "dana")
    shell = make_shell(qtbot, shell_settings, server=panel_team.url)
    try:
        shell.controller.start()
        qtbot.waitUntil(lambda: shell.controller.dialog is not None, timeout=10_000)
        dialog = shell.controller.dialog
        assert isinstance(dialog, SignInDialog)
        assert dialog.server.text() == panel_team.url
        assert dialog.username.text() == ""  # dana belongs to the saved server
        assert shell.window.message_page.title.text() == "Sign in to continue"
    finally:
        shell.quit()


def test_choosing_the_server() -> None:
    choose = DesktopLauncher.choose_server
    assert choose(None, "") == ""  # local mode
    assert choose(None, "https://team.example.com/") == "https://team.example.com"
    assert choose("team2.example.com", "https://team.example.com") == "https://team2.example.com"
    assert replica_path("local", "lead") != replica_path("local", "agent")
    assert replica_path("https://a.example/", "lead") == replica_path("https://a.example", "lead")
