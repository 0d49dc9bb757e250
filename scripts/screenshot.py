"""Take the README's screenshots of the workstation in local mode after the first sync.

Runs the real start-up (local mode with the demo team, sign-in, the first sync) in a throw-away
data directory and settings file (the user's own data and preferences are never touched), then
works the demo data as an agent would and saves three pictures in ``--out-dir``:

- ``main-window.png``: the queue with live SLA countdowns and the selected ticket;
- ``ticket-and-contacts.png``: that ticket after triage and "assign to me", with the
  contact-validation panel;
- with ``--theme dark`` each picture is saved as ``NAME-dark.png`` instead;
- ``timer.png``: the billable timer running on a 1-on-1 ticket (toolbar and ticket card);
- ``dashboard.png``: the team lead's dashboard after that work;
- ``admin-calendars.png``: the admin screens' business calendar with its two-week preview.

``make screenshot`` runs it on a virtual X screen (Xvfb, Qt's xcb platform) when ``xvfb-run``
is installed, as a person would see it; without it, on Qt's offscreen platform.

    .venv/bin/python scripts/screenshot.py                  # -> docs/screenshots/*.png
    .venv/bin/python scripts/screenshot.py --out-dir /tmp/shots --theme dark
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "screenshots")
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
    from PySide6.QtCore import QPoint, QRect, QSettings, QThreadPool
    from PySide6.QtWidgets import QApplication, QWidget

    from agentdesk.desktop import DesktopLauncher
    from agentdesk.ui import settings
    from agentdesk.ui.queue.model import SlaStateRole
    from agentdesk.ui.shell.app import DesktopController
    from agentdesk.ui.shell.main_window import MainWindow
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

    def settle(seconds: float) -> None:
        until = time.monotonic() + seconds
        wait(lambda: time.monotonic() > until, "the window to settle")

    def save(widget: QWidget, name: str, rect: QRect | None = None) -> None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        if args.theme == "dark":  # both themes side by side: main-window.png, -dark.png
            name = name.replace(".png", "-dark.png")
        path = args.out_dir / name
        picture = widget.grab(rect) if rect is not None else widget.grab()
        if not picture.save(str(path)):
            raise SystemExit(f"could not write {path}")
        print(f"wrote {path} ({picture.width()}x{picture.height()})")  # noqa: T201 - a CLI

    try:
        wait(synced, "the first sync")
        view = window.queue_view
        model = window.queue_model
        panel = window.ticket_panel
        timer = window.timer_widget
        assert view is not None
        assert model is not None
        assert panel is not None
        assert timer is not None
        view.table().setFocus()
        view.table().step(0)

        def show(ticket: uuid.UUID) -> None:
            view.select_ticket(ticket)
            wait(lambda: panel.ticket_id == ticket, "the ticket")

        # A new ticket whose response clock is running shows the most: the live countdown,
        # and every workflow step still ahead of it.
        chosen = None
        for row in range(min(model.rowCount(), 500)):
            if model.index(row, 0).data(SlaStateRole) in ("on_track", "at_risk"):
                chosen = model.ticket_id(row)
                if chosen is not None:
                    break
        if chosen is not None:
            show(chosen)
        settle(1.5)
        save(window, "main-window.png")

        # Work it: triage as assessed, take it, and picture the card with the contact panel.
        if chosen is not None and panel.triage_button.isEnabled():
            panel.triage()
            wait(lambda: panel.triage_button.text() != "Triage", "the triage")
        if chosen is not None and panel.assign_me_button.isEnabled():
            panel.assign_to_me()
            wait(lambda: not panel.assign_me_button.isEnabled(), "the assignment")
        settle(1.0)
        # The ticket card beside the contact panel (below the queue): the whole window.
        save(window, "ticket-and-contacts.png")

        # The timer on billable work: a 1-on-1 ticket, running for a few seconds.
        one_on_one = _open_one_on_one(window)
        if one_on_one is not None:
            show(one_on_one)
        # The timer reads the ticket on a worker: start once it can.
        wait(lambda: timer.running is not None or timer.toggle_button.isEnabled(),
             "the timer to read the ticket")
        if timer.running is None:
            timer.start()
        wait(lambda: timer.running is not None, "the timer")
        settle(3.0)
        # Down to the ticket's history: the timer toolbar and the card it is running for.
        history = panel.history.mapTo(window, QPoint(0, 0)).y()
        save(window, "timer.png", QRect(0, 0, window.width(), history))
        timer.stop()

        # The team lead's dashboard (local mode signs in as the demo's lead).
        from agentdesk.ui import dashboard

        board = window.dashboard_view
        if board is not None:
            dashboard.show_dashboard(window)
            wait(lambda: board.dashboard is not None and board._running is None,
                 "the dashboard")
            settle(1.5)
            save(window, "dashboard.png")

        # One admin screen: a business calendar with its two-week preview.
        from agentdesk.ui.admin import AdminDialog

        workspace = window.workspace
        assert workspace is not None
        admin_dialog = AdminDialog(workspace.client, workspace.user.role, window)
        admin_dialog.resize(1100, 760)
        admin_dialog.show()
        admin_dialog.tabs.setCurrentWidget(admin_dialog.calendars)
        wait(lambda: admin_dialog.calendars.items.count() > 0, "the calendars")
        admin_dialog.calendars.items.setCurrentRow(0)
        settle(1.0)
        save(admin_dialog, "admin-calendars.png")
        admin_dialog.close()
        return 0
    finally:
        controller.shutdown()
        QThreadPool.globalInstance().waitForDone(30_000)
        launcher.shutdown()


def _open_one_on_one(window: Any) -> uuid.UUID | None:
    """An open 1-on-1 ticket of the replica, most recent first (billable work for the timer)."""
    from sqlalchemy import select

    from agentdesk.models import Ticket, TicketKind, TicketStatus

    replica = window.workspace.replica
    with replica.session() as s:
        return s.scalars(
            select(Ticket.id)
            .where(Ticket.kind == TicketKind.ONE_ON_ONE, Ticket.deleted.is_(False),
                   Ticket.status.in_((TicketStatus.TRIAGED, TicketStatus.IN_PROGRESS)))
            .order_by(Ticket.arrived_at.desc())
            .limit(1)
        ).first()


if __name__ == "__main__":
    sys.exit(main())
