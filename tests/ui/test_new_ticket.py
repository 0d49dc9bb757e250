""" "New ticket" (Ctrl+N): an agent logs a phone call or chat; the plan's channel rule and the
caller's validation are shown before saving; the ticket is created through the replica and
checked again by the server, which queues the customer's acknowledgement."""

from __future__ import annotations

import uuid

import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agentdesk.models import EventKind, Notification, Ticket, TicketEvent
from agentdesk.ui import background
from agentdesk.ui.intake.new_ticket import NewTicketDialog
from tests.plugins.live_team import Team
from tests.plugins.panels import PanelDesk


@pytest.fixture(autouse=True)
def synchronous(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(background, "SYNCHRONOUS", True)


def _pick(combo: object, startswith: str) -> None:
    from PySide6.QtWidgets import QComboBox

    assert isinstance(combo, QComboBox)
    index = next(i for i in range(combo.count()) if combo.itemText(i).startswith(startswith))
    combo.setCurrentIndex(index)


def test_logging_a_phone_call_shows_the_channel_rule_and_creates_the_ticket(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("agent")
    dialog = NewTicketDialog(desk.replica)
    qtbot.addWidget(dialog)
    created: list[uuid.UUID] = []
    dialog.created.connect(created.append)
    assert not dialog.save_button.isEnabled()  # nothing typed yet

    _pick(dialog.organisation, "Globex")
    _pick(dialog.contact, "Ann")
    _pick(dialog.channel, "Chat")
    assert dialog.rule.text() == (
        "⚠ Chat support is for Premium and Enterprise plans; Globex is on Standard, which does "
        "not include it. The ticket is kept and flagged for a coordinator."
    )
    _pick(dialog.organisation, "Umbrella")
    _pick(dialog.channel, "Phone")
    assert dialog.rule.text().startswith(
        "⚠ Phone support is for Enterprise plans; Umbrella is on Premium"
    )
    _pick(dialog.channel, "Chat")
    assert dialog.rule.text().startswith("✔ Chat support is for Premium and Enterprise plans")
    assert dialog.validation.text() == "✔ The caller is a validated support contact."
    assert dialog.rule.textFormat().name == "PlainText"

    _pick(dialog.urgency, "Tier 2")
    qtbot.keyClicks(dialog.subject, "Cannot export <b>reports</b>")
    dialog.description.setPlainText("Called at 10:05; export button greyed out.")
    assert dialog.save_button.isEnabled()
    dialog.save_button.click()
    assert len(created) == 1
    assert not dialog.isVisible()

    desk.sync()
    with panel_team.db() as s:
        ticket = s.get(Ticket, created[0])
        assert ticket is not None
        assert ticket.channel == "chat"
        assert ticket.stated_urgency == 2
        assert ticket.subject == "Cannot export <b>reports</b>"
        notes = s.scalars(select(Notification).where(Notification.ticket_id == ticket.id)).all()
        assert [n.kind.value for n in notes] == ["acknowledgement"]


def test_a_non_validated_caller_is_warned_and_the_ticket_redirected(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("agent")
    dialog = NewTicketDialog(desk.replica)
    qtbot.addWidget(dialog)
    _pick(dialog.organisation, "Globex")
    _pick(dialog.contact, "Cy")
    _pick(dialog.channel, "Portal")
    assert "not a validated support contact" in dialog.validation.text()
    qtbot.keyClicks(dialog.subject, "Password reset")
    dialog.save_button.click()
    desk.sync()
    with panel_team.db() as s:
        kinds = {e.kind for e in s.scalars(select(TicketEvent))}
        assert EventKind.REDIRECT in kinds
