"""The wrapping row of the ticket card's workflow buttons."""

from __future__ import annotations

import shiboken6
from PySide6.QtWidgets import QApplication, QPushButton, QWidget
from pytestqt.qtbot import QtBot

from agentdesk.ui.flow_layout import FlowLayout


def _row(qtbot: QtBot, *texts: str) -> tuple[QWidget, FlowLayout, list[QPushButton]]:
    host = QWidget()
    qtbot.addWidget(host)
    flow = FlowLayout(host)
    flow.setContentsMargins(0, 0, 0, 0)
    buttons = [QPushButton(text) for text in texts]
    for button in buttons:
        flow.addWidget(button)
    return host, flow, buttons


def test_one_row_when_it_fits_and_wrapped_when_it_does_not(qtbot: QtBot) -> None:
    host, flow, buttons = _row(qtbot, "Tell customer…", "Wait on customer", "Resolve", "Close")
    wide = flow.sizeHint().width()
    one_row = flow.heightForWidth(wide)
    assert one_row == max(b.sizeHint().height() for b in buttons)
    host.resize(wide, one_row)
    host.show()
    qtbot.waitExposed(host)
    assert len({b.y() for b in buttons}) == 1
    assert buttons[-1].geometry().right() <= host.width()

    narrow = max(b.sizeHint().width() for b in buttons)
    assert flow.minimumSize().width() == narrow  # the widest item, nothing more
    assert flow.heightForWidth(narrow) > one_row * 2  # one button a row
    host.resize(narrow, flow.heightForWidth(narrow))
    QApplication.processEvents()
    assert len({b.y() for b in buttons}) == len(buttons)
    for button in buttons:
        assert button.x() == 0
        assert button.width() == button.sizeHint().width()  # whole, never squeezed


def test_hidden_buttons_take_no_room(qtbot: QtBot) -> None:
    _host, flow, buttons = _row(qtbot, "Resume", "Escalate to 1-on-1…", "Reopen")
    everything = flow.sizeHint().width()
    buttons[1].setVisible(False)
    assert flow.sizeHint().width() < everything - buttons[1].sizeHint().width() + 1
    assert flow.minimumSize().width() == max(
        buttons[0].sizeHint().width(), buttons[2].sizeHint().width()
    )
    assert flow.count() == 3
    taken = flow.takeAt(0)
    assert taken is not None
    assert flow.count() == 2
    assert flow.itemAt(5) is None
    assert flow.takeAt(-1) is None


def test_its_layout_items_are_freed_with_it(qtbot: QtBot) -> None:
    """Qt's layouts delete their items in their destructor; a Python layout has none, so the
    items (one per button) are freed when the layout is destroyed with its host. An item given
    back by ``takeAt`` (Qt deletes it) is not touched again."""
    host = QWidget()
    flow = FlowLayout(host)
    buttons = [QPushButton(text) for text in ("Resolve", "Close", "Reopen")]
    for button in buttons:
        flow.addWidget(button)
    items = [flow.itemAt(i) for i in range(flow.count())]
    assert all(item is not None and shiboken6.isValid(item) for item in items)
    keep = QWidget()
    qtbot.addWidget(keep)
    buttons[0].setParent(keep)  # Qt takes its item out of the layout (and deletes it)
    assert flow.count() == 2
    shiboken6.delete(host)  # the layout with it, then the two buttons left in it
    assert not any(shiboken6.isValid(item) for item in items[1:])
    assert shiboken6.isValid(buttons[0])
    assert not any(shiboken6.isValid(button) for button in buttons[1:])
