"""SIGTERM (a session manager) or Ctrl+C in a terminal closes the window the way Quit does,
while Qt's event loop is waiting, and the previous handlers come back afterwards."""

from __future__ import annotations

import os
import signal

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from agentdesk.ui.shell.app import quit_on_signals


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_closes_the_window_through_the_event_loop(
    qtbot: QtBot, qapp: QApplication, signum: signal.Signals, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[bool] = []
    quits: list[bool] = []
    # The test's own QApplication must keep running: count the quit instead.
    monkeypatch.setattr(qapp, "quit", lambda: quits.append(True))
    before = signal.getsignal(signum)
    restore = quit_on_signals(qapp, lambda: closed.append(True))
    try:
        assert signal.getsignal(signum) is not before
        os.kill(os.getpid(), signum)
        qtbot.waitUntil(lambda: closed == [True] and quits == [True], timeout=5000)
    finally:
        restore()
    assert signal.getsignal(signum) is before
