"""The Notifications view keeps itself up to date and reaches past its first page, against a real
server over HTTP: a pull that brings changes refreshes it (a new email is inserted, a sent one
changes its row in place, and the model is never reset for that), a slow poll catches what no
pull announces, and Load more pages back through the outbox without a row twice or missing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from PySide6.QtCore import QPersistentModelIndex, QSettings
from PySide6.QtWidgets import QMenu
from pytestqt.qtbot import QtBot
from sqlalchemy import insert, update

from agentdesk.models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationKind,
    new_id,
    utcnow,
)
from agentdesk.models.db import session_scope
from agentdesk.server.notifications.sender import Sender
from agentdesk.sync import outbox as api
from agentdesk.ui.outbox import OutboxDialog, OutboxModel
from agentdesk.ui.shell.main_window import MainWindow, Workspace
from tests.notifications.test_outbox_paging import fill
from tests.notifications.test_sender import Smtp
from tests.plugins.live_team import PASSWORD, Team, ticket_args
from tests.sync.world import World
from tests.ui.shell_fixtures import shell_settings

__all__ = ["shell_settings"]


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    server.start()
    yield server
    server.stop()


class Spy:
    """What the model told its views: resets, inserted and removed rows, changed rows."""

    def __init__(self, model: OutboxModel) -> None:
        self.resets = 0
        self.inserted: list[tuple[int, int]] = []
        self.removed: list[tuple[int, int]] = []
        self.changed: list[int] = []
        model.modelReset.connect(self._reset)
        model.rowsInserted.connect(lambda _p, first, last: self.inserted.append((first, last)))
        model.rowsRemoved.connect(lambda _p, first, last: self.removed.append((first, last)))
        model.dataChanged.connect(lambda top, _bottom, _roles=(): self.changed.append(top.row()))

    def _reset(self) -> None:
        self.resets += 1


def _delivery(n: int, status: str = "queued", minutes: int = 0) -> api.Delivery:
    at = utcnow().replace(microsecond=0) - timedelta(minutes=minutes)
    return api.Delivery(
        id=uuid.UUID(int=n),
        kind="reply",
        ticket_id=None,
        subject=f"Note {n}",
        email=f"r{n}@example.test",
        name="",
        status=status,
        attempts=0,
        last_error="",
        created_at=at,
        sent_at=None,
        next_attempt_at=at,
    )


def test_merge_inserts_updates_and_removes_rows_without_a_reset(qtbot: QtBot) -> None:
    model = OutboxModel()
    rows = [_delivery(n) for n in (1, 2, 3, 4, 5)]
    model.set_rows(rows)
    spy = Spy(model)
    current = QPersistentModelIndex(model.index(3, 0))  # a view's current row: delivery 4
    changed = _delivery(4, "sent")
    model.merge([_delivery(10), _delivery(11), rows[0], rows[2], changed, _delivery(12), rows[4]])
    assert spy.resets == 0
    assert spy.removed == [(1, 1)]  # delivery 2 left the range
    assert spy.inserted == [(0, 1), (5, 5)]  # two new on top, one between 4 and 5
    assert spy.changed == [4]  # delivery 4, now at row 4
    assert _ids(model) == [10, 11, 1, 3, 4, 12, 5]
    assert model.index(4, 0).data() == "Sent"
    assert current.row() == 4  # the view's current row followed its delivery

    # The same answer again: not a signal.
    before = (spy.resets, len(spy.inserted), len(spy.removed), len(spy.changed))
    model.merge([d for r in range(model.rowCount()) if (d := model.delivery(r)) is not None])
    assert (spy.resets, len(spy.inserted), len(spy.removed), len(spy.changed)) == before
    # An answer out of the order rows keep (never expected) is shown whole, not garbled.
    model.merge([rows[4], rows[0]])
    assert spy.resets == 1
    assert _ids(model) == [5, 1]


def _ids(model: OutboxModel) -> list[int]:
    rows = (model.delivery(r) for r in range(model.rowCount()))
    return [d.id.int for d in rows if d is not None]


def _newest(world: World, email: str) -> None:
    """One more delivery, newer than any, about no ticket (no pull announces it)."""
    now = utcnow()
    with session_scope(world.sessions) as s:
        note_id, delivery_id = new_id(), new_id()
        s.execute(
            insert(Notification),
            [
                {
                    "id": note_id,
                    "tenant_id": world.tenant,
                    "kind": NotificationKind.PREPAID_EXPIRY,
                    "ticket_id": None,
                    "subject": "Hours expire",
                    "body_text": "hello",
                    "body_html": "<p>hello</p>",
                    "created_at": now,
                    "cause": "",
                }
            ],
        )
        s.execute(
            insert(NotificationDelivery),
            [
                {
                    "id": delivery_id,
                    "notification_id": note_id,
                    "tenant_id": world.tenant,
                    "email": email,
                    "name": "",
                    "contact_id": None,
                    "message_id": f"<{delivery_id.hex}@acme.test>",
                    "status": DeliveryStatus.QUEUED,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "last_error": "",
                    "sent_at": None,
                }
            ],
        )


def _dialog(qtbot: QtBot, team: Team, **kw: int) -> OutboxDialog:
    client = team.client()
    client.login("lead", PASSWORD)
    dialog = OutboxDialog(client, **kw)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.reload()
    _idle(qtbot, dialog)
    return dialog


def _idle(qtbot: QtBot, dialog: OutboxDialog) -> None:
    qtbot.waitUntil(
        lambda: dialog.busy is None and dialog.message.text() != "Loading…", timeout=15_000
    )


def _emails(dialog: OutboxDialog) -> list[str]:
    rows = (dialog.model.delivery(r) for r in range(dialog.model.rowCount()))
    return [d.email for d in rows if d is not None]


def test_load_more_pages_back_through_the_outbox(qtbot: QtBot, team: Team) -> None:
    everything = fill(team.world)  # 9 deliveries, 3 of them failed
    dialog = _dialog(qtbot, team, page_size=4, refresh_every_ms=3_600_000)
    assert _emails(dialog) == everything[:4]
    assert dialog.count.text() == "The newest 4 deliveries; older ones: Load more."
    assert dialog.more_button.isEnabled()
    spy = Spy(dialog.model)
    dialog.table.selectRow(1)
    chosen = dialog.selected()
    dialog.more_button.click()
    _idle(qtbot, dialog)
    assert _emails(dialog) == everything[:8]
    dialog.more_button.click()
    _idle(qtbot, dialog)
    assert _emails(dialog) == everything
    assert dialog.count.text() == "9 deliveries, all shown."
    assert not dialog.more_button.isEnabled()
    assert (spy.resets, spy.inserted) == (0, [(4, 7), (8, 8)])
    assert dialog.selected() == chosen  # appending kept the selection

    dialog.show_status("failed")
    qtbot.waitUntil(lambda: dialog.busy is None and dialog.model.rowCount() == 3, timeout=15_000)
    assert {r[0] for r in _statuses(dialog)} == {"Failed"}
    assert dialog.count.text() == "3 deliveries, all shown."


def _statuses(dialog: OutboxDialog) -> list[tuple[str, str]]:
    m = dialog.model
    return [(str(m.index(r, 0).data()), str(m.index(r, 1).data())) for r in range(m.rowCount())]


def test_a_refresh_rereads_the_range_shown_and_merges_it(qtbot: QtBot, team: Team) -> None:
    everything = fill(team.world)
    dialog = _dialog(qtbot, team, page_size=4, refresh_every_ms=200)
    assert _emails(dialog) == everything[:4]
    spy = Spy(dialog.model)
    dialog.table.selectRow(2)
    chosen = dialog.selected()
    assert chosen is not None
    # Changes no pull announces: a newer email about no ticket, and one of those shown failing.
    _newest(team.world, "new@example.test")
    with session_scope(team.world.sessions) as s:
        s.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.id == chosen.id)
            .values(status=DeliveryStatus.FAILED, last_error="550 no such mailbox")
        )
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 5, timeout=15_000)
    qtbot.waitUntil(lambda: dialog.model.index(3, 0).data() == "Failed", timeout=15_000)
    assert _emails(dialog) == ["new@example.test", *everything[:4]]  # the range, no more
    assert spy.resets == 0
    assert spy.inserted == [(0, 0)]
    assert 3 in spy.changed
    assert dialog.selected() is not None
    assert dialog.selected().id == chosen.id  # type: ignore[union-attr]
    assert dialog.retry_button.isEnabled()  # it failed meanwhile: it can be retried now
    # Load more continues exactly after the rows shown.
    dialog.more_button.click()
    _idle(qtbot, dialog)
    assert _emails(dialog) == ["new@example.test", *everything[:8]]
    assert spy.resets == 0


def test_a_retried_delivery_leaves_the_failed_filter_at_the_next_refresh(
    qtbot: QtBot, team: Team
) -> None:
    fill(team.world)
    dialog = _dialog(qtbot, team, refresh_every_ms=3_600_000)
    dialog.show_status("failed")
    qtbot.waitUntil(lambda: dialog.busy is None and dialog.model.rowCount() == 3, timeout=15_000)
    spy = Spy(dialog.model)
    dialog.table.selectRow(1)
    dialog.retry_button.click()
    qtbot.waitUntil(lambda: "Queued again" in dialog.message.text(), timeout=15_000)
    assert dialog.model.index(1, 0).data() == "Queued"  # in place first
    dialog.refresh()
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 2, timeout=15_000)
    assert (spy.resets, spy.removed) == (0, [(1, 1)])
    assert "Queued again" in dialog.message.text()  # a refresh does not hide what was said


def _first_menu(window: MainWindow) -> QMenu:
    menu = window.menuBar().actions()[0].menu()
    assert isinstance(menu, QMenu)
    return menu


def test_pulls_refresh_the_open_view_in_place(
    qtbot: QtBot, team: Team, smtp: Smtp, shell_settings: QSettings
) -> None:
    lead = team.desk("lead")
    window = MainWindow(shell_settings)
    qtbot.addWidget(window)
    window.attach(
        Workspace(
            replica=lead.replica,
            client=lead.client,
            engine=lead.engine,
            user=lead.login.user,
            server_label="test",
            token_key=team.url,
        )
    )
    try:
        [action] = [a for a in _first_menu(window).actions() if a.objectName() == "outboxAction"]
        action.trigger()
        dialog = window.outbox_dialog  # type: ignore[attr-defined]
        assert isinstance(dialog, OutboxDialog)
        dialog.poll.stop()  # only pulls may refresh it here
        _idle(qtbot, dialog)
        assert dialog.message.text() == "No deliveries to show."
        spy = Spy(dialog.model)

        # An agent logs a request from Cy (not validated): Cy, Ann and Bo are written to.
        agent = team.desk("agent")
        agent.sync()
        agent.replica.mutate(
            "create_ticket",
            ticket_args(team.world, requester_id=str(team.world.contacts["cy"])),
        )
        agent.sync()
        qtbot.waitUntil(lambda: dialog.model.rowCount() == 3, timeout=15_000)
        assert {s for s, _who in _statuses(dialog)} == {"Queued"}
        assert dialog.message.text() == ""
        assert spy.resets == 0
        assert sum(last - first + 1 for first, last in spy.inserted) == 3
        dialog.table.selectRow(0)
        chosen = dialog.selected()
        assert chosen is not None

        # The sender delivers them: each sent line in the tickets' history reaches the lead's
        # desktop with a pull, and the rows change in place.
        smtp.inbox.refuse = {"ann@globex.test"}
        assert Sender(team.world.sessions, smtp.config()).drain().sent == 2
        qtbot.waitUntil(
            lambda: sorted(s for s, _who in _statuses(dialog)) == ["Failed", "Sent", "Sent"],
            timeout=15_000,
        )
        assert spy.resets == 0
        assert sum(last - first + 1 for first, last in spy.inserted) == 3
        still = dialog.selected()  # the selection stayed with its delivery
        assert still is not None
        assert still.id == chosen.id
    finally:
        window.detach()
