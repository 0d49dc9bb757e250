"""The settings registry and the background-work pattern."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QObject, QSettings
from pytestqt.qtbot import QtBot

from agentdesk.ui import background
from agentdesk.ui.settings import ALL_SETTINGS, IDLE_MINUTES, NOTIFY_TIER1, THEME


@pytest.fixture
def store(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "agentdesk.ini"), QSettings.Format.IniFormat)


def test_defaults_then_round_trip(store: QSettings) -> None:
    assert THEME.read(store) == "system"
    assert NOTIFY_TIER1.read(store) is True
    IDLE_MINUTES.write(store, 5)
    NOTIFY_TIER1.write(store, False)
    store.sync()
    reread = QSettings(store.fileName(), QSettings.Format.IniFormat)
    assert IDLE_MINUTES.read(reread) == 5
    assert NOTIFY_TIER1.read(reread) is False


def test_bad_values_are_refused_and_bad_files_fall_back(store: QSettings) -> None:
    with pytest.raises(ValueError, match="theme"):
        THEME.write(store, "neon")
    with pytest.raises(TypeError, match="idle_minutes"):
        IDLE_MINUTES.write(store, "ten")  # type: ignore[arg-type]
    store.setValue(IDLE_MINUTES.key, "not a number")
    store.setValue(THEME.key, "neon")
    assert IDLE_MINUTES.read(store) == 10
    assert THEME.read(store) == "system"


def test_every_setting_is_documented_and_unique() -> None:
    keys = [s.key for s in ALL_SETTINGS]
    assert len(keys) == len(set(keys))
    assert all(len(s.doc) > 20 for s in ALL_SETTINGS)
    assert not any("password" in s.key or "token" in s.key for s in ALL_SETTINGS)


def test_operation_runs_off_the_gui_thread_and_reports_back_on_it(qtbot: QtBot) -> None:
    gui = threading.get_ident()
    ran_on: list[int] = []
    got: list[int] = []

    def work() -> int:
        ran_on.append(threading.get_ident())
        return 42

    def done(value: int) -> None:
        assert threading.get_ident() == gui
        got.append(value)

    op = background.run_in_background(work, done)
    qtbot.waitUntil(lambda: op.done, timeout=5000)
    assert got == [42]
    assert ran_on[0] != gui


def test_failures_are_reported_not_swallowed(qtbot: QtBot) -> None:
    errors: list[Exception] = []

    def boom() -> None:
        raise RuntimeError("disk full")

    op = background.run_in_background(boom, lambda _v: None, errors.append)
    qtbot.waitUntil(lambda: op.done, timeout=5000)
    assert [str(e) for e in errors] == ["disk full"]


def test_synchronous_mode_for_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(background, "SYNCHRONOUS", True)
    got: list[str] = []
    op = background.run_in_background(lambda: "now", got.append)
    assert op.done
    assert got == ["now"]


class _Canary:
    """Records the thread that freed it: a stand-in for a panel a closure keeps alive."""

    def __init__(self, freed_on: list[str]) -> None:
        self._freed_on = freed_on

    def __del__(self) -> None:
        self._freed_on.append(threading.current_thread().name)


def test_what_an_operation_holds_is_freed_on_the_gui_thread(qtbot: QtBot) -> None:
    """The caller keeps nothing and the work outlasts it: the function (a closure over a panel)
    and the callbacks are still freed on the GUI thread, never on the worker, and the outcome
    still arrives. A Qt object freed on a worker while the GUI thread used it crashed CI."""
    freed_on: list[str] = []
    got: list[int] = []
    canary = _Canary(freed_on)

    def work(kept: _Canary = canary) -> int:
        time.sleep(0.2)  # the caller has let go long before
        return 7

    background.run_in_background(work, got.append)
    del work, canary
    qtbot.waitUntil(lambda: bool(freed_on), timeout=5000)
    assert freed_on == [threading.main_thread().name]
    assert got == [7]


def test_a_reported_operation_lets_go_of_its_function_and_callbacks(qtbot: QtBot) -> None:
    """A panel keeps its operations as children until it closes, and their callbacks close over
    the operation itself (``op.deleteLater()``). Once an operation has reported, what it ran and
    the callbacks are let go on the GUI thread, even while the operation lives on: connected to
    its own signals they stayed behind PySide's hidden receivers, and an operation deleted later
    with such a cycle crashed a test's teardown in CI (~1 run in 3 of the timer tests)."""
    freed_on: list[str] = []
    parent = QObject()
    got: list[int] = []

    def start() -> background.Operation[int]:
        canary = _Canary(freed_on)

        def work() -> int:
            return 7

        def done(value: int, kept: _Canary = canary) -> None:
            got.append(value)

        return background.Operation(work, on_success=done, parent=parent).start()

    op = start()
    qtbot.waitUntil(lambda: op.done, timeout=5000)
    assert got == [7]
    assert shiboken6.isValid(op)  # alive, as a panel's child
    assert freed_on == [threading.main_thread().name]


def test_a_failure_and_its_traceback_are_freed_on_the_gui_thread(qtbot: QtBot) -> None:
    freed_on: list[str] = []
    errors: list[Exception] = []

    def boom() -> None:
        panel = _Canary(freed_on)  # in the failing frame: the traceback keeps it
        time.sleep(0.1)
        raise RuntimeError(f"failed with {type(panel).__name__}")

    background.run_in_background(boom, lambda _v: None, errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert str(errors[0]) == "failed with _Canary"
    errors.clear()
    qtbot.waitUntil(lambda: bool(freed_on), timeout=5000)
    assert freed_on == [threading.main_thread().name]


def test_an_operation_whose_parent_is_gone_reports_nothing(qtbot: QtBot) -> None:
    parent = QObject()
    release = threading.Event()
    got: list[str] = []

    def late() -> str:
        release.wait(5)
        return "late"

    background.Operation(late, on_success=got.append, parent=parent).start()
    shiboken6.delete(parent)  # the panel closed while its read ran
    release.set()
    qtbot.waitUntil(lambda: background.in_flight() == 0, timeout=5000)
    qtbot.wait(20)
    assert got == []
