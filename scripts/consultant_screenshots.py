"""Screenshots of the consultant workbench and a statement PDF's first page (issue 11).

Runs the real start-up in local mode with the demo team (as ``scripts/screenshot.py`` does, in
a throw-away data directory), signs in as the demo lead, records a little of the lead's own
1-on-1 time for today so the timesheet has a day to show, and saves in ``--out-dir``:

- ``consultant-contracts.png``: the contracts tab on the demo customer with the most hour blocks;
- ``consultant-timesheet.png``: the lead's week, with one of the lead's entries corrected;
- ``consultant-appointments.png``: the lead's day, with a delivered appointment that had an
  extra engineer;
- ``statement-page1.png``: page 1 of that customer's statement PDF (rendered by ``pdftoppm``).

    xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb \\
        .venv/bin/python scripts/consultant_screenshots.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="agentdesk-consultant-shots-"))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["AGENTDESK_DATA_DIR"] = str(scratch / "data")

    from PySide6.QtCore import QDate, QSettings, QThreadPool
    from PySide6.QtWidgets import QApplication, QWidget
    from sqlalchemy import func, select

    from agentdesk.desktop import DesktopLauncher
    from agentdesk.exports.statement_file import replace_file, statement_file
    from agentdesk.models import HourBlock, Organisation, Role, Tenant, User
    from agentdesk.ui.shell.app import DesktopController
    from agentdesk.ui.shell.main_window import MainWindow
    from agentdesk.ui.theme import app_icon, apply_theme

    app = QApplication(sys.argv[:1])
    app.setApplicationName("AgentDesk")
    app.setWindowIcon(app_icon())
    store = QSettings(str(scratch / "agentdesk.ini"), QSettings.Format.IniFormat)
    apply_theme(app, "light")
    launcher = DesktopLauncher()
    window = MainWindow(store)
    controller = DesktopController(window, launcher, store=store)
    window.resize(1600, 960)
    window.show()
    controller.start()

    def wait(predicate: object, what: str) -> None:
        deadline = time.monotonic() + args.timeout
        while not predicate():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            app.processEvents()
            time.sleep(0.02)

    def settle(seconds: float) -> None:
        until = time.monotonic() + seconds
        wait(lambda: time.monotonic() > until, "the window to settle")

    def save(widget: QWidget, name: str) -> None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        path = args.out_dir / name
        if not widget.grab().save(str(path)):
            raise SystemExit(f"could not write {path}")
        print(f"wrote {path}")  # noqa: T201 - a CLI

    def synced() -> bool:
        status = window.status_bar.status()
        return status is not None and status.state == "online" and window.workbench is not None

    try:
        wait(synced, "the first sync")
        assert window.workspace is not None
        bench = window.workbench
        assert bench is not None
        replica = window.workspace.replica
        with replica.session() as s:
            org_id, org_name = s.execute(
                select(Organisation.id, Organisation.name)
                .join(HourBlock, HourBlock.organisation_id == Organisation.id)
                .group_by(Organisation.id, Organisation.name)
                .order_by(func.count(HourBlock.id).desc()).limit(1)).one()
        # The lead's own morning: two pieces of work on one customer (rounded once).
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        for start, minutes, note in ((now - timedelta(hours=3), 5, "Checked the DNS records"),
                                     (now - timedelta(hours=2), 30, ""),
                                     (now - timedelta(minutes=80), 50, "Pipeline walkthrough")):
            replica.mutate("add_time_entry", {
                "entry_id": str(uuid.uuid4()), "organisation_id": str(org_id), "note": note,
                "started_at": start.isoformat(),
                "ended_at": (start + timedelta(minutes=minutes)).isoformat()})
        # A typo corrected (who and why show on the timesheet and the statement).
        typo = str(uuid.uuid4())
        start = now - timedelta(minutes=200)
        replica.mutate("add_time_entry", {
            "entry_id": typo, "organisation_id": str(org_id), "note": "Mail setup",
            "started_at": start.isoformat(),
            "ended_at": (start + timedelta(minutes=15)).isoformat()})
        replica.mutate("add_time_entry", {
            "entry_id": str(uuid.uuid4()), "organisation_id": str(org_id), "voids_id": typo,
            "note": "Stopped the timer late: it was 10 minutes",
            "started_at": start.isoformat(),
            "ended_at": (start + timedelta(minutes=10)).isoformat()})
        # A delivered appointment with an extra engineer the customer asked for.
        with replica.session() as s:
            engineer = s.scalar(select(User.id).where(User.role == Role.CONSULTANT,
                                                      User.id != replica.state.user_id)
                                .order_by(User.display_name).limit(1))
        appointment = str(uuid.uuid4())
        booked = now - timedelta(minutes=330)
        replica.mutate("schedule_appointment", {
            "appointment_id": appointment, "organisation_id": str(org_id),
            "extra_engineer_id": str(engineer) if engineer else None,
            "starts_at": booked.isoformat(), "ends_at": (booked + timedelta(hours=1)).isoformat(),
            "note": "Integration walkthrough"})
        replica.mutate("deliver_appointment", {"appointment_id": appointment})
        dock = window.workbench_dock
        dock.setFloating(True)
        dock.resize(1400, 720)
        dock.show()
        bench.contracts.refresh()
        wait(lambda: bench.contracts.org_combo.count() > 0, "the contracts")
        bench.contracts.select_org(org_id)
        wait(lambda: bench.contracts.contract is not None
             and bench.contracts.contract.organisation_id == org_id, "the contract")
        settle(1.0)
        save(dock, "consultant-contracts.png")
        # The pages open on today's UTC date; show the team's day of the work instead.
        with replica.session() as s:
            tz = s.scalar(select(Tenant.timezone)) or "UTC"
        worked = (now - timedelta(hours=3)).astimezone(ZoneInfo(tz)).date()
        bench.setCurrentWidget(bench.timesheet)
        bench.timesheet.day_edit.setDate(QDate(worked.year, worked.month, worked.day))
        bench.timesheet.span_combo.setCurrentIndex(1)
        wait(lambda: bench.timesheet.sheet is not None and bench.timesheet.sheet.entries,
             "the timesheet")
        settle(1.0)
        save(dock, "consultant-timesheet.png")
        bench.setCurrentWidget(bench.appointments)
        booked_day = booked.astimezone(ZoneInfo(tz)).date()
        bench.appointments.day_edit.setDate(QDate(booked_day.year, booked_day.month,
                                                  booked_day.day))
        bench.appointments.span_combo.setCurrentIndex(0)
        wait(lambda: bench.appointments.model.rowCount() > 0, "the appointments")
        settle(1.0)
        save(dock, "consultant-appointments.png")

        pdf = scratch / "statement.pdf"
        today = now.date()
        with replica.session() as s:
            made = statement_file(s, org_id, today - timedelta(days=60), today, "pdf")
        replace_file(pdf, made.body)
        if shutil.which("pdftoppm") is None:
            raise SystemExit("pdftoppm (poppler-utils) is needed for the PDF picture")
        subprocess.run(["pdftoppm", "-png", "-r", "90", "-f", "1", "-l", "1", "-singlefile",
                        str(pdf), str(args.out_dir / "statement-page1")], check=True)
        print(f"wrote {args.out_dir / 'statement-page1.png'} ({org_name})")  # noqa: T201
        return 0
    finally:
        controller.shutdown()
        QThreadPool.globalInstance().waitForDone(30_000)
        launcher.shutdown()


if __name__ == "__main__":
    sys.exit(main())
