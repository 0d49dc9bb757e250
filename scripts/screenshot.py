"""Take the README's screenshot: the main window in local mode after the first sync.

Runs the real start-up (local mode with the demo team, sign-in, the first sync) on Qt's
offscreen platform, in a throw-away data directory and settings file (the user's own data and
preferences are never touched), selects a ticket and saves the window as a PNG.

    .venv/bin/python scripts/screenshot.py                 # -> docs/screenshot.png
    .venv/bin/python scripts/screenshot.py --out /tmp/a.png --theme dark
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--tickets", type=int, default=None,
                        help="demo tickets on the local server (default: the demo's own)")
    parser.add_argument("--size", default="1600x960", help="window size, WIDTHxHEIGHT")
    parser.add_argument("--theme", choices=("light", "dark"), default="light")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    scratch = Path(tempfile.mkdtemp(prefix="agentdesk-screenshot-"))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["AGENTDESK_DATA_DIR"] = str(scratch / "data")

    # Imported after the environment is set: the data directory is read at import in places.
    from PySide6.QtCore import QSettings, QThreadPool
    from PySide6.QtWidgets import QApplication

    from agentdesk.desktop import DesktopLauncher
    from agentdesk.ui import settings
    from agentdesk.ui.app import DesktopController
    from agentdesk.ui.main_window import MainWindow
    from agentdesk.ui.queue_model import SlaStateRole
    from agentdesk.ui.theme import app_icon, apply_theme

    app = QApplication(sys.argv[:1])
    app.setApplicationName("AgentDesk")
    app.setOrganizationName("AgentDesk")
    app.setWindowIcon(app_icon())
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(scratch))
    store = QSettings(str(scratch / "agentdesk.ini"), QSettings.Format.IniFormat)
    settings.THEME.write(store, args.theme)
    apply_theme(app, args.theme)

    launcher = DesktopLauncher(demo_tickets=args.tickets)
    window = MainWindow(store)
    controller = DesktopController(window, launcher, store=store)
    window.resize(width, height)
    window.show()
    controller.start()

    def wait(predicate: object, what: str) -> None:
        deadline = time.monotonic() + args.timeout
        while not predicate():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            app.processEvents()
            time.sleep(0.02)

    def synced() -> bool:
        status = window.status_bar.status()
        model = window.queue_model
        return (status is not None and status.state == "online" and model is not None
                and model.rowCount() > 0 and not model.is_loading())

    try:
        wait(synced, "the first sync")
        view = window.queue_view
        assert view is not None
        view.table().setFocus()
        view.table().step(0)
        # A ticket whose response clock is running shows the most: the live countdown.
        model = window.queue_model
        assert model is not None
        for row in range(min(model.rowCount(), 300)):
            state = model.index(row, 0).data(SlaStateRole)
            if state in ("on_track", "at_risk"):
                ticket = model.ticket_id(row)
                if ticket is not None:
                    view.select_ticket(ticket)
                break
        wait(lambda: window.ticket_panel is not None
             and window.ticket_panel.ticket_id == view.current_ticket_id(), "the ticket")
        # Let the countdown tick and the panels settle before the picture.
        settle = time.monotonic() + 1.5
        wait(lambda: time.monotonic() > settle, "the panels")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(args.out)):
            raise SystemExit(f"could not write {args.out}")
        print(f"wrote {args.out} ({width}x{height})")  # noqa: T201 - a command-line tool
    finally:
        controller.shutdown()
        QThreadPool.globalInstance().waitForDone(30_000)
        launcher.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
