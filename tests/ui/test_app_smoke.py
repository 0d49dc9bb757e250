"""The desktop starts: a real QMainWindow, headless."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from agentdesk.ui.app import MainWindow


def test_main_window_opens(qtbot: QtBot) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert window.windowTitle() == "AgentDesk"
    assert window.isVisible()
