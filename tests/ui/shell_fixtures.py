"""Fixtures for the application shell's tests (main window, start-up, sign-in, sync bridge).

Import the ones a module uses (``from tests.ui.shell_fixtures import shell_settings``); names are
prefixed ``shell_`` like the other engineers' ``panel_`` fixtures in tests/plugins/panels.py.

* ``shell_settings``: QSettings in a per-test INI file, also made the default location, so no
  test reads or writes the real user's preferences or window layout.
* ``shell_local_data``: local mode's server database, generated once per session with a small
  demo team (the demo hashes eleven passwords with production argon2 settings: seconds) and
  copied into the test's data directory, so each test starts local mode as a second start.
* ``shell_app``: the real start-up (:class:`~agentdesk.desktop.DesktopLauncher` +
  :class:`~agentdesk.ui.shell.app.DesktopController` +
  :class:`~agentdesk.ui.shell.main_window.MainWindow`)
  with fast sync timings, shut down (and checked to have stopped its threads) after the test.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QThreadPool
from pytestqt.qtbot import QtBot

from agentdesk.desktop import DesktopLauncher
from agentdesk.local_mode import start_local_mode
from agentdesk.paths import data_dir
from agentdesk.ui.shell.app import DesktopController
from agentdesk.ui.shell.main_window import MainWindow
from tests.plugins.live_team import MemoryKeyring

#: Tickets in the test demo (the demo resolves most; a handful stay open).
DEMO_TICKETS = 60
#: Sync timings for tests: a short poke (the server's shutdown waits for it) and quick retries.
FAST_SYNC = {"poke_wait": 1.0, "backoff_base": 0.05, "backoff_cap": 0.3}


@pytest.fixture
def shell_settings(tmp_path: Path) -> Iterator[QSettings]:
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings")
    )
    store = QSettings(str(tmp_path / "agentdesk.ini"), QSettings.Format.IniFormat)
    yield store
    QSettings.setDefaultFormat(QSettings.Format.NativeFormat)


@pytest.fixture(scope="session")
def shell_local_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("local-mode-template")
    mode = start_local_mode(directory, demo_tickets=DEMO_TICKETS)
    mode.stop()
    return mode.database


@pytest.fixture
def shell_local_data(shell_local_template: Path) -> Path:
    """The demo server database in this test's data directory (a consistent copy: the
    sqlite backup API, not a file copy that could miss the WAL)."""
    target = data_dir() / shell_local_template.name
    source = sqlite3.connect(shell_local_template)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    return target


@dataclass
class Shell:
    window: MainWindow
    controller: DesktopController
    launcher: DesktopLauncher

    def quit(self) -> None:
        """What quitting does (run_desktop's epilogue), checked to leave no thread behind."""
        self.controller.shutdown()
        QThreadPool.globalInstance().waitForDone(15_000)
        self.launcher.shutdown()
        assert not sync_threads(), "a sync thread outlived the app"


def sync_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "agentdesk-sync" and t.is_alive()]


def wait_for_threads_to_end(prefix: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]:
        assert time.monotonic() < deadline, f"{prefix} threads still running"
        time.sleep(0.02)


def make_shell(qtbot: QtBot, store: QSettings, server: str | None = None) -> Shell:
    launcher = DesktopLauncher(demo_tickets=DEMO_TICKETS, engine_options=dict(FAST_SYNC))
    window = MainWindow(store)
    qtbot.addWidget(window)
    controller = DesktopController(window, launcher, server=server, store=store)
    window.show()
    return Shell(window, controller, launcher)


@pytest.fixture
def shell_app(
    qtbot: QtBot, shell_settings: QSettings, shell_keyring: MemoryKeyring, shell_local_data: Path
) -> Iterator[Shell]:
    shell = make_shell(qtbot, shell_settings)
    yield shell
    shell.quit()


@pytest.fixture
def shell_keyring() -> Iterator[MemoryKeyring]:
    """A working keyring that forgets everything after the test (tokens included)."""
    from agentdesk.sync import credentials
    from tests.plugins.live_team import keyring_backend

    with keyring_backend(MemoryKeyring()) as backend:
        yield backend  # type: ignore[misc]
    credentials._memory.clear()
