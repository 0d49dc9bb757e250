"""``agentdesk --self-test``: does this installation work? The real start-up, headless.

It runs what an agent's first start runs, on the offscreen platform and in a temporary data
directory (nothing of the user's is read or written: settings, replicas and tokens all live in
that directory and an in-memory keyring, and the directory is removed afterwards): local mode
with the demo team (the embedded server, the desktop's replica and sync engine), the main
window opened, one full sync round (push and pull to the server's head), then a short report on
stdout and exit status 0, or 1 with the step that failed. The bundle built by ``make
build-test`` runs it, which proves the frozen app has its Qt plugins, migrations, time-zone
data and resources.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

#: Demo tickets: enough for a real queue, small enough for a first start in seconds.
SELF_TEST_TICKETS = 60
TIMEOUT_SECONDS = 180.0


def run_self_test(out: TextIO | None = None, timeout: float = TIMEOUT_SECONDS) -> int:
    out = out or sys.stdout
    started = time.monotonic()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    work = Path(tempfile.mkdtemp(prefix="agentdesk-self-test-"))
    previous = {k: os.environ.get(k) for k in ("AGENTDESK_DATA_DIR", "XDG_CONFIG_HOME")}
    os.environ["AGENTDESK_DATA_DIR"] = str(work / "data")
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")
    try:
        return _run(out, work, started, timeout)
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(work, ignore_errors=True)


def _run(out: TextIO, work: Path, started: float, timeout: float) -> int:
    import keyring
    import keyring.core
    from keyring.backend import KeyringBackend
    from PySide6.QtCore import (
        QEventLoop,
        QMessageLogContext,
        QSettings,
        QThreadPool,
        QTimer,
        QtMsgType,
        qInstallMessageHandler,
    )
    from PySide6.QtWidgets import QApplication
    from sqlalchemy import select

    from . import __version__
    from .desktop import DesktopLauncher
    from .models import Ticket
    from .ui.shell.app import DesktopController
    from .ui.shell.main_window import MainWindow
    from .ui.theme import app_icon, resources_dir

    class MemoryKeyring(KeyringBackend):
        """Tokens of the self-test's throwaway local server, never the user's keyring."""

        priority = 1

        def __init__(self) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.secrets: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.secrets.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.secrets[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.secrets.pop((service, username), None)

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    say(f"AgentDesk {__version__} self-test")

    def quiet(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
        # The offscreen platform's notice about window size hints is not a finding.
        if "propagateSizeHints" not in message:
            sys.stderr.write(message + "\n")

    previous_handler = qInstallMessageHandler(quiet)
    previous_keyring = keyring.core._keyring_backend
    keyring.set_keyring(MemoryKeyring())
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "agentdesk"])
    assert isinstance(app, QApplication)
    app.setApplicationName("AgentDesk")
    icon = app_icon()
    app.setWindowIcon(icon)
    store = QSettings(str(work / "config" / "agentdesk.ini"), QSettings.Format.IniFormat)
    launcher = DesktopLauncher(demo_tickets=SELF_TEST_TICKETS, engine_options={"poke_wait": 1.0})
    window = MainWindow(store)
    controller = DesktopController(window, launcher, server=None, store=store)
    failure: str | None = None
    try:
        say(f"  platform: {app.platformName()}; data directory: {work / 'data'} (temporary)")
        resources = resources_dir()
        say(
            f"  icon: {'resources ' + str(resources) if resources else 'drawn (no resources)'}; "
            f"{len(icon.availableSizes())} sizes"
        )
        if icon.isNull() or window.windowIcon().isNull():
            failure = "the application icon is missing"
        window.show()
        controller.start()
        loop = QEventLoop()
        poll = QTimer()
        poll.setInterval(100)

        def check() -> None:
            status = window.status_bar.status()
            model = window.queue_model
            if (
                model is not None
                and model.rowCount() > 0
                and not model.is_loading()
                and status is not None
                and status.state == "online"
                and status.pending == 0
            ) or time.monotonic() - started > timeout:
                loop.quit()

        poll.timeout.connect(check)
        poll.start()
        loop.exec()
        poll.stop()
        status = window.status_bar.status()
        model = window.queue_model
        ws = window.workspace
        if failure is None and (
            ws is None or model is None or status is None or status.state != "online"
        ):
            shown = status.state if status is not None else "no status"
            error = status.last_error if status is not None else None
            failure = (
                f"the desktop did not get online with local mode within {timeout:.0f} s "
                f"(sync state: {shown}{'; ' + error if error else ''})"
            )
        if failure is None and ws is not None and model is not None:
            say(
                f"  local server: {ws.server_url}; signed in as {ws.user.username} "
                f"({ws.user.role.value})"
            )
            say(f"  main window: open, {model.rowCount()} tickets in the queue")
            # One sync round trip, as an agent makes one: a note on the queue's first ticket
            # goes out through the running sync engine and is acknowledged by the server.
            with ws.replica.session() as session:
                ticket_id = session.scalar(
                    select(Ticket.id)
                    .where(Ticket.deleted.is_(False))
                    .order_by(Ticket.arrived_at)
                    .limit(1)
                )
            if ticket_id is None:
                failure = "the demo has no ticket"
            else:
                ws.replica.mutate(
                    "add_note", {"ticket_id": str(ticket_id), "body": "self-test note"}
                )
                deadline = time.monotonic() + 30
                while ws.replica.pending_count() and time.monotonic() < deadline:
                    loop.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
                    time.sleep(0.05)
                state = ws.replica.state
                say(
                    f"  sync: one round trip (a note pushed and acknowledged), cursor "
                    f"{state.cursor}, {ws.replica.pending_count()} pending"
                )
                if ws.replica.pending_count() or state.cursor <= 0:
                    failure = "the sync round trip did not complete within 30 s"
    except Exception as exc:  # any failure is the report's subject, not a traceback
        failure = f"{type(exc).__name__}: {exc}"
    finally:
        controller.shutdown()
        QThreadPool.globalInstance().waitForDone(30_000)
        launcher.shutdown()
        window.close()
        window.deleteLater()
        keyring.core._keyring_backend = previous_keyring
        qInstallMessageHandler(previous_handler)
    seconds = time.monotonic() - started
    if failure is not None:
        say(f"FAILED after {seconds:.1f} s: {failure}")
        return 1
    say(f"OK in {seconds:.1f} s")
    return 0
