"""User text is never rendered as rich text: subjects, names, notes and organisation names
holding markup show literally in the real widgets (queue, ticket panel, history, contact panel,
timer, notifications). Qt labels guess rich text unless told, so ``<img src=...>`` in a subject
would have been rendered - and fetched."""

from __future__ import annotations

import uuid

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import Qt as QtGuiNamespace  # mightBeRichText lives in QtGui's Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QLabel, QStyledItemDelegate
from pytestqt.qtbot import QtBot
from sqlalchemy import update

from agentdesk.models import Contact, Organisation
from agentdesk.ui import panel_widgets
from agentdesk.ui.contacts.panel import ContactPanel
from agentdesk.ui.queue.model import Column, QueueModel
from agentdesk.ui.queue.view import QueueView
from agentdesk.ui.ticket.panel import TicketPanel
from tests.plugins.live_team import Desk, Team, ticket_args
from tests.plugins.panels import PanelDesk

SUBJECT = "<b>Bold</b> <img src=http://198.51.100.1/x.png> <a href='http://evil'>click</a>"
NAME = "<b>Ann</b> <img src=x>"
ORG = "<a href='http://evil'>Globex</a>"
NOTE = "<i>note</i> <img src=http://198.51.100.1/y.png>"


def shown(label: QLabel) -> str:
    """What a label shows, the way Qt decides it: its text, or the text of its rich text."""
    fmt = label.textFormat()
    text = label.text()
    rich = fmt == Qt.TextFormat.RichText or (
        fmt == Qt.TextFormat.AutoText and QtGuiNamespace.mightBeRichText(text)
    )
    if not rich:
        return text
    doc = QTextDocument()
    doc.setHtml(text)
    return doc.toPlainText()


@pytest.fixture
def hostile(panel_team: Team, panel_desk: PanelDesk) -> tuple[Desk, uuid.UUID]:
    world = panel_team.world
    with panel_team.db() as s:
        s.execute(
            update(Organisation).where(Organisation.id == world.orgs["globex"]).values(name=ORG)
        )
        s.execute(update(Contact).where(Contact.id == world.contacts["ann"]).values(name=NAME))
    desk = panel_desk("coordinator")
    args = ticket_args(world, subject=SUBJECT)
    desk.replica.mutate("create_ticket", args)
    desk.replica.mutate("add_note", {"ticket_id": args["ticket_id"], "body": NOTE})
    desk.sync()
    return desk, uuid.UUID(args["ticket_id"])


@pytest.mark.usefixtures("inline_background")
def test_hostile_text_shows_literally_in_the_ticket_and_contact_panels(
    qtbot: QtBot, hostile: tuple[Desk, uuid.UUID]
) -> None:
    desk, ticket_id = hostile
    panel = TicketPanel(desk.replica)
    qtbot.addWidget(panel)
    panel.show_ticket(ticket_id)
    assert shown(panel.title) == SUBJECT
    assert NAME in shown(panel.fields["requester"])
    assert ORG in shown(panel.fields["customer"])
    history = panel.history.toPlainText()
    assert NOTE in history
    assert "<img" not in panel.history.toHtml()  # the note's image is text, not an image

    contacts = ContactPanel(desk.replica)
    qtbot.addWidget(contacts)
    contacts.show_ticket(ticket_id)
    assert NAME in shown(contacts.requester_label)
    assert shown(contacts.fields["organisation"]) == ORG
    for label in contacts.findChildren(QLabel):
        assert "<img" not in label.text() or label.textFormat() == Qt.TextFormat.PlainText


def test_hostile_text_shows_literally_in_the_queue(
    qtbot: QtBot, hostile: tuple[Desk, uuid.UUID]
) -> None:
    desk, ticket_id = hostile
    model = QueueModel(desk.replica.engine, asynchronous=False)
    view = QueueView(model)
    model.setParent(view)
    qtbot.addWidget(view)
    row = next(r for r in range(model.rowCount()) if model.ticket_id(r) == ticket_id)
    assert model.index(row, Column.SUBJECT).data() == SUBJECT
    assert NAME in model.index(row, Column.REQUESTER).data()
    assert model.index(row, Column.ORGANISATION).data() == ORG
    # The table paints display text with the stock delegate, which never renders markup.
    assert type(view.table().itemDelegate()) is QStyledItemDelegate


def test_tray_and_tooltip_text_are_escaped() -> None:
    assert panel_widgets.plain_tooltip(SUBJECT).startswith("<p>&lt;b&gt;")
    doc = QTextDocument()
    doc.setHtml(panel_widgets.plain_tooltip(SUBJECT))
    assert doc.toPlainText() == SUBJECT
    label = panel_widgets.plain_label(SUBJECT)
    assert shown(label) == SUBJECT
