"""GUI smoke test (issue 5): the desktop as a user starts it, in local mode with the demo team,
drives one ticket from new to resolved through the real widgets.

Real pieces throughout (``shell_app``): the embedded server of local mode on a copy of a small
demo team, the start-up composition, the controller, the main window and its sync thread.
The ticket is picked from the queue's table with the mouse, worked in the ticket panel with
its buttons, its "Tell customer" dialog and the composer's Ctrl+Enter, and the outcome is
checked in the panel, the queue row, the replica and finally the local server's database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agentdesk.models import EventKind, Level, Role, Ticket, TicketEvent, TicketStatus
from agentdesk.models.db import make_engine, make_session_factory, session_scope, sqlite_url
from agentdesk.policy.queue import queue_key
from agentdesk.policy.workflow import OPEN_STATUSES
from agentdesk.ui.queue.model import Column, QueueModel, SavedView, TicketIdRole
from agentdesk.ui.shell.main_window import MainWindow
from agentdesk.ui.ticket.panel import TellCustomerDialog, TicketPanel
from tests.ui.queue_fixtures import listed_ids
from tests.ui.shell_fixtures import (
    Shell,
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

#: Local mode's first start copies and opens the demo, then the first sync pulls it.
START_TIMEOUT = 30_000
#: One push/pull round trip through the local server (generous: a shared 2-core machine).
SYNC_TIMEOUT = 20_000
STEP_TIMEOUT = 10_000
LEAD_NAME = "Dana Whitfield"


def _settled(qtbot: QtBot, panel: TicketPanel) -> None:
    """The writer applied the click's mutation; the app's panel re-reads its card on a worker:
    wait for that card before reading it."""
    qtbot.waitUntil(lambda: not panel.card_pending, timeout=STEP_TIMEOUT)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _expected_queue_order(window: MainWindow) -> list[uuid.UUID]:
    """The open tickets of the replica in seed 003's order, by the policy's own key."""
    assert window.workspace is not None
    with window.workspace.replica.session() as s:
        rows = s.execute(
            select(
                Ticket.id, Ticket.tier, Ticket.stated_urgency, Ticket.plan_rank, Ticket.arrived_at
            ).where(Ticket.deleted.is_(False), Ticket.status.in_(sorted(OPEN_STATUSES)))
        ).all()
    return [
        r.id
        for r in sorted(
            rows,
            key=lambda r: queue_key(
                tier=r.tier,
                stated_urgency=r.stated_urgency,
                plan_rank=r.plan_rank,
                arrival=_aware(r.arrived_at),
                ticket_id=str(r.id),
            ),
        )
    ]


def _cell(model: QueueModel, ticket_id: uuid.UUID, column: Column) -> str | None:
    """What the queue's row for the ticket shows in ``column`` (None: not listed)."""
    row = model.row_of(ticket_id)
    if row is None:
        return None
    index = model.index(row, column)
    assert index.siblingAtColumn(0).data(TicketIdRole) == ticket_id
    return str(index.data())


def _replica_ticket(window: MainWindow, ticket_id: uuid.UUID) -> Ticket:
    assert window.workspace is not None
    with window.workspace.replica.session() as s:
        ticket = s.get(Ticket, ticket_id)
        assert ticket is not None
        s.expunge(ticket)
        return ticket


@contextmanager
def _server_db(shell: Shell) -> Iterator[sessionmaker[Session]]:
    """Read-only sessions on local mode's server database (what the server committed)."""
    mode = shell.launcher.local_mode
    assert mode is not None
    engine = make_engine(sqlite_url(mode.database))
    try:
        yield make_session_factory(engine, write=False)
    finally:
        engine.dispose()


def test_local_mode_drives_a_demo_ticket_from_new_to_resolved(
    qtbot: QtBot,
    shell_app: Shell,
) -> None:
    window = shell_app.window
    qtbot.waitExposed(window)
    assert window.windowTitle() == "AgentDesk"
    assert window.isVisible()

    # ---------------------------------------------------------------- start-up, online
    shell_app.controller.start()
    bar = window.status_bar

    def online_with_the_queue() -> bool:
        status = bar.status()
        model = window.queue_model
        return (
            model is not None
            and model.rowCount() > 0
            and not model.is_loading()
            and status is not None
            and status.state == "online"
            and status.pending == 0
            and bar.state_label.text() == "● Online"
        )

    qtbot.waitUntil(online_with_the_queue, timeout=START_TIMEOUT)
    ws = window.workspace
    assert ws is not None
    assert ws.local
    assert bar.server_label.text() == "Local mode"
    # Local mode signs in as the demo's team lead, who may triage.
    assert ws.user.role is Role.LEAD
    assert window.windowTitle() == f"{LEAD_NAME} (team lead) — Local mode — AgentDesk"

    model = window.queue_model
    view = window.queue_view
    panel = window.ticket_panel
    assert model is not None
    assert view is not None
    assert isinstance(panel, TicketPanel)
    assert model.view() is SavedView.ALL_OPEN

    # The demo's open tickets, in priority order (tier, plan, arrival, id).
    listed = listed_ids(model)
    assert listed == _expected_queue_order(window)
    assert len(listed) >= 3

    # The most urgent untriaged ticket from a validated contact: new in the replica and
    # shown as such in the queue ("T<n>?": the stated urgency stands in for the tier).
    with ws.replica.session() as s:
        fresh = {
            t.id: t
            for t in s.scalars(
                select(Ticket).where(Ticket.status == TicketStatus.NEW, Ticket.deleted.is_(False))
            )
        }
        for t in fresh.values():
            s.expunge(t)
    candidates = [tid for tid in listed if tid in fresh]
    assert candidates, "the demo always has a new (untriaged) ticket"
    ticket_id = candidates[0]
    stated = fresh[ticket_id].stated_urgency
    assert _cell(model, ticket_id, Column.STATUS) == "New"
    assert _cell(model, ticket_id, Column.TIER) == f"T{stated}?"
    assert _cell(model, ticket_id, Column.ASSIGNEE) == "Unassigned"

    # Resets would lose the agent's place: every change below must update rows in place.
    resets: list[int] = []
    model.modelAboutToBeReset.connect(lambda: resets.append(1))
    removed: list[tuple[int, int]] = []
    model.rowsRemoved.connect(lambda _parent, first, last: removed.append((first, last)))

    # ---------------------------------------------------------------- pick it with the mouse
    table = view.table()
    row = model.row_of(ticket_id)
    assert row is not None
    index = model.index(row, Column.SUBJECT)
    table.scrollTo(index)
    qtbot.waitUntil(lambda: table.viewport().rect().contains(table.visualRect(index).center()))
    qtbot.mouseClick(
        table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualRect(index).center()
    )
    assert view.current_ticket_id() == ticket_id
    # The panel reads its card on a worker: wait for that card, not just the pick.
    qtbot.waitUntil(
        lambda: (
            panel.ticket_id == ticket_id and panel.view is not None and panel.view.id == ticket_id
        ),
        timeout=STEP_TIMEOUT,
    )
    assert panel.view is not None
    assert panel.title.text() == fresh[ticket_id].subject
    assert panel.fields["status"].text() == "New"
    assert "not triaged yet" in panel.fields["tier"].text()
    assert "✔ validated contact" in panel.fields["requester"].text()
    assert window.contact_panel is not None
    contacts = window.contact_panel
    qtbot.waitUntil(lambda: contacts.view is not None, timeout=STEP_TIMEOUT)  # read on a worker
    assert window.contact_panel.view is not None

    # ---------------------------------------------------------------- 1. triage (tier + level)
    tier = 2 if stated != 2 else 3  # a tier other than the stated urgency: the row moves
    assert panel.triage_button.isEnabled(), panel.triage_button.toolTip()
    panel.tier_combo.setCurrentIndex(panel.tier_combo.findData(tier))
    panel.level_combo.setCurrentIndex(panel.level_combo.findData(Level.L2.value))
    qtbot.mouseClick(panel.triage_button, Qt.MouseButton.LeftButton)
    _settled(qtbot, panel)
    assert panel.message.kind != "error", panel.message.text()
    assert panel.fields["status"].text() == "Triaged"
    assert panel.fields["tier"].text().startswith(f"Tier {tier} (assessed")
    assert panel.fields["level"].text().startswith("Level 2")
    assert panel.triage_button.text() == "Re-triage"
    t = _replica_ticket(window, ticket_id)
    assert (t.status, t.tier, t.level) == (TicketStatus.TRIAGED, tier, Level.L2)
    qtbot.waitUntil(
        lambda: (
            _cell(model, ticket_id, Column.STATUS) == "Triaged"
            and _cell(model, ticket_id, Column.TIER) == f"T{tier}"
            and _cell(model, ticket_id, Column.LEVEL) == "L2"
        ),
        timeout=STEP_TIMEOUT,
    )
    assert view.current_ticket_id() == ticket_id, "the selection follows the moved row"
    assert listed_ids(model) == _expected_queue_order(window), "moved to its new place"

    # ---------------------------------------------------------------- 2. assign to me
    assert panel.assign_me_button.isEnabled(), panel.assign_me_button.toolTip()
    qtbot.mouseClick(panel.assign_me_button, Qt.MouseButton.LeftButton)
    _settled(qtbot, panel)
    assert panel.message.text() == "The ticket is yours"
    assert panel.fields["assignee"].text() == LEAD_NAME
    assert not panel.assign_me_button.isEnabled()
    assert _replica_ticket(window, ticket_id).assignee_id == ws.user.id
    qtbot.waitUntil(
        lambda: _cell(model, ticket_id, Column.ASSIGNEE) == LEAD_NAME, timeout=STEP_TIMEOUT
    )

    # ---------------------------------------------------------------- 3. tell the customer
    assert panel.tell_button.isEnabled(), panel.tell_button.toolTip()
    qtbot.mouseClick(panel.tell_button, Qt.MouseButton.LeftButton)
    dialog = panel.tell_dialog
    assert isinstance(dialog, TellCustomerDialog)
    qtbot.waitUntil(dialog.isVisible)
    text = dialog.message()
    assert f"{LEAD_NAME} from our Level 2 support team has it" in text
    assert f"What happens next: {LEAD_NAME} is looking into it" in text
    assert f"tier {tier}" in text
    qtbot.mouseClick(dialog.send_button, Qt.MouseButton.LeftButton)
    _settled(qtbot, panel)
    assert not dialog.isVisible()
    assert panel.message.kind != "error", panel.message.text()
    assert panel.fields["status"].text() == "In progress"
    assert panel.fields["first_response"].text() != "None yet"
    t = _replica_ticket(window, ticket_id)
    assert t.status is TicketStatus.IN_PROGRESS
    assert t.first_response_at is not None
    qtbot.waitUntil(
        lambda: _cell(model, ticket_id, Column.STATUS) == "In progress", timeout=STEP_TIMEOUT
    )

    # ---------------------------------------------------------------- 4. reply (Ctrl+Enter)
    reply = "We found the cause and are rolling out a fix now."
    assert panel.reply_mode.isChecked()
    assert panel.reply_mode.isEnabled()
    panel.composer.setFocus()
    qtbot.keyClicks(panel.composer, reply)
    qtbot.keyClick(panel.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    _settled(qtbot, panel)
    assert panel.message.text() == "Reply sent"
    assert panel.composer.toPlainText() == ""
    assert reply in panel.history.toPlainText()
    with ws.replica.session() as s:
        replies = list(
            s.scalars(
                select(TicketEvent.body).where(
                    TicketEvent.ticket_id == ticket_id, TicketEvent.kind == EventKind.REPLY
                )
            )
        )
    assert reply in replies
    assert len(replies) == 2  # the update to the customer, then the reply

    # ---------------------------------------------------------------- 5. resolve
    assert panel.resolve_button.isEnabled(), panel.resolve_button.toolTip()
    qtbot.mouseClick(panel.resolve_button, Qt.MouseButton.LeftButton)
    _settled(qtbot, panel)
    assert panel.fields["status"].text() == "Resolved"
    assert panel.message.text() == "Resolved; the customer is notified"
    history = panel.history.toPlainText()
    assert "Status: in progress → resolved" in history
    assert f"Email to {panel.view.requester_name} queued" in history
    assert panel.reopen_button.isEnabled()
    t = _replica_ticket(window, ticket_id)
    assert t.status is TicketStatus.RESOLVED
    assert t.resolved_at is not None
    # Resolved is not open: its row leaves "All open" (a removal, not a reset).
    qtbot.waitUntil(lambda: model.row_of(ticket_id) is None, timeout=STEP_TIMEOUT)
    assert removed, "the row was removed in place"

    # ---------------------------------------------------------------- the server has it all
    qtbot.waitUntil(lambda: ws.replica.pending_count() == 0, timeout=SYNC_TIMEOUT)
    qtbot.waitUntil(
        lambda: (
            bar.status() is not None
            and bar.status().state == "online"  # type: ignore[union-attr]
            and bar.status().pending == 0  # type: ignore[union-attr]
            and not bar.pending_label.isVisible()
        ),
        timeout=SYNC_TIMEOUT,
    )
    assert ws.replica.rejections() == []
    assert not bar.rejections_button.isVisible()
    with _server_db(shell_app) as sessions, session_scope(sessions) as s:
        on_server = s.get(Ticket, ticket_id)
        assert on_server is not None
        assert on_server.status is TicketStatus.RESOLVED
        assert (on_server.tier, on_server.level) == (tier, Level.L2)
        assert on_server.assignee_id == ws.user.id
        assert on_server.first_response_at is not None
        assert on_server.resolved_at is not None
        events = list(s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)))
        kinds = [e.kind for e in events]
        bodies = {e.body for e in events}
    assert kinds.count(EventKind.TRIAGE) == 1
    assert kinds.count(EventKind.ASSIGNMENT) == 1
    assert kinds.count(EventKind.REPLY) == 2
    assert EventKind.NOTIFICATION in kinds
    assert reply in bodies

    # Every change reached the queue as row updates, moves and a removal: never a reset.
    assert resets == []
    assert QApplication.activeModalWidget() is None
