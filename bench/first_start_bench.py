"""The desktop's first start in local mode, as `make run` does it, and a second start.

A fresh data directory per run: the real start-up composition (DesktopLauncher +
DesktopController + MainWindow, offscreen) creates local mode's database with the default
3,000-ticket demo team and syncs it into the replica. Measured from `controller.start()` to
the queue's first rows and to the first "Online" with nothing pending; then the app quits and
starts again on the same data. The baseline, in the same run, is generating the same demo into
a bare SQLite file (the part of the first start that is not the desktop's).

Prints one JSON line per figure (medians of --runs). The machine is shared: absolute numbers
wander with its load, the ratio less so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _one(data: Path) -> tuple[float, float, float, float]:
    """(first rows, first online, second start's online, demo generation alone) in seconds."""
    os.environ["AGENTDESK_DATA_DIR"] = str(data)
    from PySide6.QtCore import QSettings, QThreadPool
    from PySide6.QtWidgets import QApplication

    from agentdesk.desktop import DesktopLauncher
    from agentdesk.models.db import make_engine, sqlite_url
    from agentdesk.models.migrate import upgrade
    from agentdesk.server.demo import generate_demo
    from agentdesk.ui.shell.app import DesktopController
    from agentdesk.ui.shell.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    store = QSettings(str(data / "settings.ini"), QSettings.Format.IniFormat)

    def start() -> tuple[float, float]:
        launcher = DesktopLauncher()
        window = MainWindow(store)
        controller = DesktopController(window, launcher, store=store)
        window.show()
        began = time.perf_counter()
        controller.start()
        rows = online = 0.0
        while time.perf_counter() - began < 300:
            app.processEvents()
            model = window.queue_model
            if not rows and model is not None and model.rowCount() > 0:
                rows = time.perf_counter() - began
            status = window.status_bar.status()
            if rows and status is not None and status.state == "online" and status.pending == 0:
                online = time.perf_counter() - began
                break
            time.sleep(0.005)
        controller.shutdown()
        QThreadPool.globalInstance().waitForDone(15_000)
        launcher.shutdown()
        window.close()
        window.deleteLater()
        app.processEvents()
        if not online:
            sys.exit("the app did not get online within 300 s")
        return rows, online

    rows, online = start()
    _, second = start()

    engine = make_engine(sqlite_url(data / "baseline.sqlite3"))
    upgrade(engine)
    began = time.perf_counter()
    generate_demo(engine)
    demo = time.perf_counter() - began
    engine.dispose()
    return rows, online, second, demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    results = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="agentdesk-first-start-") as tmp:
            results.append(_one(Path(tmp)))
    rows, online, second, demo = (statistics.median(r[i] for r in results) for i in range(4))
    cores = os.cpu_count()
    for name, value in (
        ("first_start_queue_rows_s", rows),
        ("first_start_online_s", online),
        ("second_start_online_s", second),
        ("baseline_demo_generation_s", demo),
    ):
        print(
            json.dumps(
                {
                    "bench": name,
                    "median": round(value, 2),
                    "runs": args.runs,
                    "ratio_to_baseline": round(value / demo, 2),
                    "cores": cores,
                    "tickets": 3000,
                }
            )
        )


if __name__ == "__main__":
    main()
