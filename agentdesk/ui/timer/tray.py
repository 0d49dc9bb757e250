"""The timer in the system tray: the elapsed time, start/stop and switch, following the widget."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from ..panel_widgets import tray_text
from .widget import TimerWidget, elapsed_text

__all__ = ["TimerTray"]


def _clock_icon(palette: QPalette) -> QIcon:
    """A small drawn stopwatch, in the palette's colours (no image file needed)."""
    pixmap = QPixmap(32, 32)
    pixmap.fill(QColor(0, 0, 0, 0))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(palette.color(QPalette.ColorRole.WindowText))
    painter.setBrush(palette.color(QPalette.ColorRole.Highlight))
    painter.drawEllipse(3, 5, 26, 26)
    painter.drawLine(16, 18, 16, 9)
    painter.drawLine(16, 18, 22, 18)
    painter.drawRect(13, 0, 6, 4)
    painter.end()
    return QIcon(pixmap)


class TimerTray(QObject):
    """The timer in the system tray: a menu with the elapsed time, start/stop and switch.

    Give it the app's own tray icon to add the timer to that icon's menu; without one it makes
    its own icon, but only where a system tray exists (``isSystemTrayAvailable``), so a
    desktop without one (or a headless test) gets no warning and still has :attr:`menu`.
    """

    def __init__(
        self, timer: TimerWidget, tray: QSystemTrayIcon | None = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent or timer)
        self.timer = timer
        self.menu = QMenu()
        self.elapsed_action = self.menu.addAction("No timer running")
        self.elapsed_action.setEnabled(False)
        self.toggle_action = self.menu.addAction("Start timer")
        self.toggle_action.triggered.connect(timer.toggle)
        self.switch_action = self.menu.addAction("Switch timer to the selected ticket")
        self.switch_action.triggered.connect(timer.switch_to_current)
        self.icon: QSystemTrayIcon | None = None
        if tray is not None:
            self.icon = tray
            existing = tray.contextMenu()
            if existing is not None and existing.actions():
                first = existing.actions()[0]
                for action in (self.elapsed_action, self.toggle_action, self.switch_action):
                    existing.insertAction(first, action)
                existing.insertSeparator(first)
            else:
                tray.setContextMenu(self.menu)
        elif QSystemTrayIcon.isSystemTrayAvailable():
            self.icon = QSystemTrayIcon(_clock_icon(timer.palette()), self)
            self.icon.setContextMenu(self.menu)
            self.icon.show()
        timer.add_observer(self.update)
        self.update()

    def update(self) -> None:
        timer = self.timer
        running = timer.running
        if running is not None:
            elapsed = elapsed_text(timer.now() - running.started_at)
            text = f"{running.organisation_name}: {elapsed}"
            self.toggle_action.setText("Stop timer")
            self.toggle_action.setEnabled(True)
        else:
            text = "No timer running"
            self.toggle_action.setText("Start timer")
            self.toggle_action.setEnabled(timer.toggle_button.isEnabled())
        self.elapsed_action.setText(text)
        self.switch_action.setEnabled(timer.switch_button.isEnabled())
        if self.icon is not None:
            self.icon.setToolTip(tray_text(f"AgentDesk timer — {text}"))
