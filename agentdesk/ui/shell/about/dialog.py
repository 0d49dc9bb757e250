"""The About box. Plain text only: the signed-in name and the server address come from
outside and are never interpreted as markup."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from .... import __version__
from ...theme import app_icon

if TYPE_CHECKING:
    from ..main_window import Workspace

LICENCE = "MIT licence (see the LICENSE file shipped with AgentDesk)"


def about_lines(workspace: Workspace | None) -> list[str]:
    """The About box's lines; the same version ``agentdesk --version`` prints."""
    lines = [
        f"AgentDesk {__version__}",
        "The support team's workstation: one priority queue with live SLA countdowns in "
        "business time, the ticket workflow, validated contacts and the billable 1-on-1 timer. "
        "Works offline; syncs when it can.",
        "",
    ]
    if workspace is None:
        lines += ["Server: not connected", "Data directory: not open yet (not signed in)"]
    else:
        server = workspace.server_label
        if not workspace.local:
            server = f"{server} ({workspace.server_url})"
        user = workspace.user
        lines += [
            f"Server: {server}",
            f"Signed in as: {user.display_name} ({user.username}, {user.role.value})",
            # Replicas live in <data directory>/replicas/ (agentdesk.desktop.replica_path).
            f"Data directory: {_data_directory(workspace.replica.path)}",
        ]
    lines += ["", f"Licence: {LICENCE}"]
    return lines


def _data_directory(replica: Path) -> Path:
    return replica.parent.parent if replica.parent.name == "replicas" else replica.parent


def show_about(parent: QWidget, workspace: Workspace | None) -> QMessageBox:
    """Open the About box (window-modal, not blocking the caller) and return it."""
    box = QMessageBox(parent)
    box.setWindowTitle("About AgentDesk")
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setText("\n".join(about_lines(workspace)))
    box.setIconPixmap(app_icon().pixmap(64, 64))
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
