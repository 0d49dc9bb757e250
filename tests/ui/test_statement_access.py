"""Who may export a customer's time statement on the desktop: the server's rule, not more.

The server refuses a statement to agents (a statement is the customer's bill, and agents see no
prices or balances; tests/server/test_authorisation.py checks every role). The desktop used to
let them save one from the replica. Now both "Statement…" buttons (the organisation panel and
the contracts view) are disabled for them with a tooltip naming who can, and every other way in
(the workbench's ``open_statement``, the dialog's Save) refuses with the same words and writes
nothing.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from agentdesk.ui import background
from agentdesk.ui.consultant.workbench import ConsultantWorkbench, StatementDialog, _read_who
from agentdesk.ui.contacts.panel import ContactPanel
from tests.plugins.live_team import Desk, Team
from tests.plugins.panels import PanelDesk, new_ticket

WHO_CAN = (
    "Only consultants, leads and admins export time statements (a statement is the "
    "customer's bill: hours bought, used and owed)"
)


@pytest.fixture(autouse=True)
def _synchronous(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(background, "SYNCHRONOUS", True)


def _contact_panel(qtbot: QtBot, desk: Desk, team: Team) -> ContactPanel:
    panel = ContactPanel(desk.replica)
    qtbot.addWidget(panel)
    panel.show_ticket(new_ticket(desk, team))
    assert panel.view is not None
    return panel


def _workbench(qtbot: QtBot, desk: Desk) -> ConsultantWorkbench:
    bench = ConsultantWorkbench(desk.replica)
    qtbot.addWidget(bench)
    bench.show()
    bench.contracts.refresh()
    return bench


@pytest.mark.parametrize("role", ["agent", "coordinator"])
def test_no_statement_for_those_who_see_no_prices(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk, tmp_path: Path, role: str
) -> None:
    desk = panel_desk(role)
    org = panel_team.world.orgs["globex"]

    panel = _contact_panel(qtbot, desk, panel_team)
    assert not panel.statement_button.isEnabled()
    assert panel.statement_button.toolTip() == WHO_CAN
    asked: list[object] = []
    panel.statementRequested.connect(asked.append)
    panel._request_statement()  # a click that got through anyway asks for nothing
    assert asked == []

    bench = _workbench(qtbot, desk)
    button = bench.contracts.statement_button
    assert not button.isEnabled()
    assert button.toolTip() == WHO_CAN
    bench.open_statement(org)  # what the organisation panel's signal calls
    assert bench.statement_dialog is None
    assert bench.currentWidget() is bench.contracts
    assert bench.contracts.message.text() == WHO_CAN

    # The dialog itself, the local path that reads the replica: refused, nothing written.
    who = _read_who(desk.replica)
    assert who is not None
    dialog = StatementDialog(desk.replica, who, org, bench.clock, bench)
    qtbot.addWidget(dialog)
    out = tmp_path / "statements"
    out.mkdir()
    dialog.format.setCurrentIndex(dialog.format.findData("csv"))
    dialog.path.setText(str(out / "statement.csv"))
    dialog.save()
    assert dialog.error.text() == WHO_CAN
    assert list(out.iterdir()) == []


def test_consultants_get_the_statement_from_both_buttons(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk, tmp_path: Path
) -> None:
    desk = panel_desk("consultant")
    org = panel_team.world.orgs["globex"]

    panel = _contact_panel(qtbot, desk, panel_team)
    assert panel.statement_button.isEnabled()
    assert panel.statement_button.toolTip() == "The organisation's time statement as PDF or CSV"
    asked: list[uuid.UUID] = []
    panel.statementRequested.connect(asked.append)
    panel.statement_button.click()
    assert asked == [org]

    bench = _workbench(qtbot, desk)
    button = bench.contracts.statement_button
    assert button.isEnabled()
    assert button.toolTip() == "The customer's time statement as PDF or CSV"
    bench.contracts.select_org(org)
    button.click()
    dialog = bench.statement_dialog
    assert dialog is not None
    assert dialog.isVisible()
    assert dialog.org.currentData() == str(org)
    dialog.format.setCurrentIndex(dialog.format.findData("csv"))
    dialog.path.setText(str(tmp_path / "statement.csv"))
    dialog.save()
    assert dialog.error.text().startswith("Saved statement.csv")
    assert (tmp_path / "statement.csv").is_file()
    dialog.reject()
