"""The Notifications view and the ticket history's "sent to whom", against a real server over
HTTP and a real SMTP server (aiosmtpd on 127.0.0.1): a lead sees queued, sent and failed
deliveries with the reason, filters them, retries a failed one (its row changes in place), and
is told plainly when the server refuses or cannot be reached; the ticket's history on every
desktop says to whom an email went out, or that it did not."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMenu
from pytestqt.qtbot import QtBot

from agentdesk.models import DeliveryStatus, NotificationDelivery
from agentdesk.models.db import session_scope
from agentdesk.queries.ticket_card import load_ticket_view
from agentdesk.server.notifications.sender import Sender
from agentdesk.sync import outbox as api
from agentdesk.sync.client import ApiClient, BadRequest
from agentdesk.ui.outbox import OutboxDialog
from agentdesk.ui.shell.main_window import MainWindow, Workspace
from tests.notifications.test_sender import Smtp
from tests.plugins.live_team import PASSWORD, Desk, Team, ticket_args
from tests.ui.shell_fixtures import shell_settings

__all__ = ["shell_settings"]


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    server.start()
    yield server
    server.stop()


def _signed_in(team: Team, who: str) -> ApiClient:
    client = team.client()
    client.login(who, PASSWORD)
    return client


def _mail_day(team: Team, smtp: Smtp) -> tuple[Desk, uuid.UUID, uuid.UUID]:
    """An agent logs a request from Cy (not validated: Cy, Ann and Bo are written to) and Ann's
    own request; the mail server refuses Ann for good. Then one more request waits, unsent.
    Returns the agent's desk, the redirected ticket and the one still queued."""
    agent = team.desk("agent")
    agent.sync()
    redirected = uuid.uuid4()
    agent.replica.mutate(
        "create_ticket",
        ticket_args(
            team.world, ticket_id=str(redirected), requester_id=str(team.world.contacts["cy"])
        ),
    )
    agent.sync()
    smtp.inbox.refuse = {"ann@globex.test"}
    result = Sender(team.world.sessions, smtp.config()).drain()
    assert (result.sent, result.failed) == (2, 1)
    waiting = uuid.uuid4()
    agent.replica.mutate(
        "create_ticket",
        ticket_args(team.world, ticket_id=str(waiting), subject="Invoices are wrong"),
    )
    agent.sync()
    return agent, redirected, waiting


def _loaded(qtbot: QtBot, dialog: OutboxDialog) -> None:
    qtbot.waitUntil(
        lambda: dialog.busy is None and dialog.message.text() != "Loading…", timeout=15_000
    )


def _shown(dialog: OutboxDialog) -> list[tuple[str, str, str]]:
    """(status, recipient, last error) of each row, as the table shows them."""
    m = dialog.model
    return [
        tuple(str(m.index(r, c).data()) for c in (0, 1, 5))  # type: ignore[misc]
        for r in range(m.rowCount())
    ]


def test_lead_sees_each_delivery_filters_and_retries_a_failed_one_in_place(
    qtbot: QtBot,
    team: Team,
    smtp: Smtp,
) -> None:
    _mail_day(team, smtp)
    dialog = OutboxDialog(_signed_in(team, "lead"))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.reload()
    _loaded(qtbot, dialog)
    rows = sorted(_shown(dialog), key=lambda r: (r[1], r[0]))
    assert [(s, who) for s, who, _e in rows] == [
        ("Failed", "Ann <ann@globex.test>"),
        ("Queued", "Ann <ann@globex.test>"),
        ("Sent", "Bo <bo@globex.test>"),
        ("Sent", "Cy <cy@globex.test>"),
    ]
    assert rows[0][2].startswith("550")
    # The test server has no SMTP configured: the view says mail is kept, not sent.
    assert dialog.banner.isVisible()
    assert "Email delivery is off" in dialog.banner.text()

    dialog.show_status("failed")
    qtbot.waitUntil(lambda: dialog.busy is None and dialog.model.rowCount() == 1, timeout=15_000)
    [failed] = _shown(dialog)
    assert failed[:2] == ("Failed", "Ann <ann@globex.test>")
    assert not dialog.retry_button.isEnabled()  # nothing chosen yet
    dialog.table.selectRow(0)
    assert dialog.retry_button.isEnabled()
    chosen = dialog.selected()
    assert chosen is not None
    qtbot.mouseClick(dialog.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: dialog.busy is None and "Queued again" in dialog.message.text(), timeout=15_000
    )
    assert dialog.model.rowCount() == 1  # the row changed in place, the list was not re-read
    assert _shown(dialog)[0][0] == "Queued"
    assert dialog.model.index(0, 4).data() == "0"
    assert not dialog.retry_button.isEnabled()  # a queued delivery cannot be retried
    with session_scope(team.world.sessions) as s:
        row = s.get(NotificationDelivery, chosen.id)
        assert row is not None
        assert row.status is DeliveryStatus.QUEUED

    dialog.show_status("sent")
    qtbot.waitUntil(lambda: dialog.busy is None and dialog.model.rowCount() == 2, timeout=15_000)
    assert {r[0] for r in _shown(dialog)} == {"Sent"}
    dialog.table.selectRow(0)
    assert not dialog.retry_button.isEnabled()


def test_a_refusal_and_an_unreachable_server_are_said_in_words(
    qtbot: QtBot,
    team: Team,
) -> None:
    dialog = OutboxDialog(_signed_in(team, "agent"))
    qtbot.addWidget(dialog)
    dialog.reload()
    _loaded(qtbot, dialog)
    assert dialog.message.text().startswith("Not allowed: only team leads and admins")
    assert dialog.model.rowCount() == 0

    lead = OutboxDialog(_signed_in(team, "lead"))
    qtbot.addWidget(lead)
    team.server.stop()
    lead.reload()
    _loaded(qtbot, lead)
    assert lead.message.text().startswith("The server cannot be reached")
    assert not lead.retry_button.isEnabled()


def test_retrying_what_has_not_failed_is_refused_and_changes_nothing(
    team: Team,
    smtp: Smtp,
) -> None:
    _mail_day(team, smtp)
    client = _signed_in(team, "lead")
    sent = api.list_deliveries(client, "sent").deliveries
    assert {d.status for d in sent} == {"sent"}
    with pytest.raises(BadRequest, match="only failed deliveries"):
        api.retry_delivery(client, sent[0].id)
    assert api.list_deliveries(client, "sent").deliveries == sent
    with pytest.raises(ValueError, match="status must be one of"):
        api.list_deliveries(client, "lost")


def _first_menu(window: MainWindow) -> QMenu:
    menu = window.menuBar().actions()[0].menu()
    assert isinstance(menu, QMenu)
    return menu


def test_the_menu_entry_is_for_leads_only(
    qtbot: QtBot,
    team: Team,
    shell_settings: QSettings,
) -> None:
    for who in ("agent", "lead"):
        desk = team.desk(who)
        window = MainWindow(shell_settings)
        qtbot.addWidget(window)
        window.attach(
            Workspace(
                replica=desk.replica,
                client=desk.client,
                engine=desk.engine,
                user=desk.login.user,
                server_label="test",
                token_key=team.url,
            )
        )
        try:
            actions = [a for a in _first_menu(window).actions() if a.objectName() == "outboxAction"]
            if who == "agent":
                assert actions == []  # the server would refuse them the outbox anyway
                continue
            [action] = actions
            assert action.text() == "Email &notifications…"
            action.trigger()
            dialog = window.outbox_dialog  # type: ignore[attr-defined]
            assert isinstance(dialog, OutboxDialog)
            _loaded(qtbot, dialog)
            assert dialog.message.text() == "No deliveries to show."
        finally:
            window.detach()
        assert [a for a in _first_menu(window).actions() if a.objectName() == "outboxAction"] == []


def test_the_ticket_history_says_to_whom_an_email_went_out_or_not(
    team: Team,
    smtp: Smtp,
) -> None:
    agent, redirected, waiting = _mail_day(team, smtp)
    agent.sync()
    with agent.replica.session() as s:
        view = load_ticket_view(s, redirected)
        assert view is not None
        history = {item.title: item for item in view.history}
        queued = load_ticket_view(s, waiting)
        assert queued is not None
    for who in ("Bo <bo@globex.test>", "Cy <cy@globex.test>"):
        item = history[f"Email sent to {who}"]
        assert item.style == "notification"
        assert item.who == "System"
        assert item.body.startswith("[AD-")
    failed = history["Email not delivered to ann@globex.test"]
    assert failed.style == "note"
    assert "550" in failed.body
    assert not any(t.startswith("Email sent to Ann") for t in history)
    # Still in the outbox: the history does not claim it went out.
    assert not any(i.title.startswith("Email sent") for i in queued.history)
