"""Desktop start-up."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QLabel, QMainWindow


class MainWindow(QMainWindow):
    """The main window (the queue, ticket and timer panels arrive with the workstation issue)."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("AgentDesk")
        label = QLabel("AgentDesk — the queue, ticket and timer panels arrive here.")
        label.setMargin(24)
        self.setCentralWidget(label)
        self.resize(1100, 700)


def run_desktop(server: str | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("AgentDesk")
    app.setOrganizationName("AgentDesk")
    window = MainWindow()
    window.show()
    return app.exec()
