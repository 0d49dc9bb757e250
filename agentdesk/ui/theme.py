"""Light and dark: follow the system's colour scheme, unless the THEME setting forces one.

Qt 6.8+ reports the system scheme (:meth:`QStyleHints.colorScheme`) and updates the palette by
itself when it changes; every widget of ours paints from palette roles, so following the system
needs nothing more. Forcing a scheme asks the platform first (``setColorScheme``); platforms that
cannot (the offscreen one, some Linux desktops) keep their palette, and then an explicit Fusion
palette of the requested scheme is installed instead.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication, QStyleFactory

from .sla_display import is_dark

log = logging.getLogger(__name__)

__all__ = ["THEMES", "app_icon", "apply_theme", "dark_palette", "light_palette"]

THEMES = {"system": "Follow the system", "light": "Light", "dark": "Dark"}

_SCHEMES = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}
_BRAND = QColor("#2f6fd6")


def dark_palette() -> QPalette:
    """A dark palette with the same roles Fusion fills (contrast checked by eye and test)."""
    p = QPalette()
    roles = QPalette.ColorRole
    colours = {
        roles.Window: "#2b2d31",
        roles.WindowText: "#e4e6eb",
        roles.Base: "#1e1f22",
        roles.AlternateBase: "#26282c",
        roles.ToolTipBase: "#34363b",
        roles.ToolTipText: "#e4e6eb",
        roles.PlaceholderText: "#8b8f96",
        roles.Text: "#e4e6eb",
        roles.Button: "#34363b",
        roles.ButtonText: "#e4e6eb",
        roles.BrightText: "#ff7b72",
        roles.Light: "#45484e",
        roles.Midlight: "#3a3c41",
        roles.Mid: "#2f3135",
        roles.Dark: "#18191c",
        roles.Shadow: "#0c0c0e",
        roles.Highlight: "#3b74d1",
        roles.HighlightedText: "#ffffff",
        roles.Link: "#79a8ff",
        roles.LinkVisited: "#b49cff",
        roles.Accent: "#3b74d1",
    }
    for role, colour in colours.items():
        p.setColor(role, QColor(colour))
    disabled = QColor("#7d8188")
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    p.setColor(QPalette.ColorGroup.Disabled, roles.Highlight, QColor("#44474d"))
    return p


def light_palette() -> QPalette:
    style = QStyleFactory.create("Fusion")
    palette = style.standardPalette()
    palette.setColor(QPalette.ColorRole.Highlight, _BRAND)
    palette.setColor(QPalette.ColorRole.Accent, _BRAND)
    return palette


def apply_theme(app: QApplication, choice: str) -> None:
    """Apply a THEME value ("system", "light" or "dark") to the running application."""
    hints = QGuiApplication.styleHints()
    if choice not in _SCHEMES:
        if choice != "system":
            log.warning("unknown theme %r; following the system", choice)
        hints.unsetColorScheme()
        app.setPalette(QPalette())  # back to the platform's own palette
        return
    scheme = _SCHEMES[choice]
    hints.setColorScheme(scheme)
    if hints.colorScheme() == scheme and is_dark(app.palette()) == (choice == "dark"):
        app.setPalette(QPalette())
        return
    log.debug("the platform cannot switch to %s; using an explicit palette", choice)
    app.setPalette(dark_palette() if choice == "dark" else light_palette())


#: The icon's PNG sizes in ``resources/`` (made from agentdesk.svg by scripts/make_icons.py).
ICON_SIZES = (16, 32, 48, 64, 128, 256)


def resources_dir() -> Path | None:
    """``resources/``: beside the executable in the bundle (PyInstaller's ``_MEIPASS``), at the
    repository root when run from source; None for an install that has neither."""
    candidates = []
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        candidates.append(Path(frozen) / "resources")
    candidates.append(Path(__file__).resolve().parents[2] / "resources")
    for path in candidates:
        if (path / "agentdesk-256.png").is_file():
            return path
    return None


def app_icon() -> QIcon:
    """The application icon from ``resources/`` (every size, so each title bar, tray and
    launcher picks a crisp one); drawn at run time where the files are not installed."""
    resources = resources_dir()
    if resources is not None:
        icon = QIcon()
        for size in ICON_SIZES:
            icon.addFile(str(resources / f"agentdesk-{size}.png"), QSize(size, size))
        return icon
    return _drawn_icon()


def _drawn_icon() -> QIcon:
    """A stand-in mark (a white "A" on the brand-blue rounded square) for installs without
    ``resources/`` (a bare wheel)."""
    icon = QIcon()
    for size in ICON_SIZES:
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(_BRAND)
        radius = size * 0.22
        painter.drawRoundedRect(QRectF(0, 0, size, size), radius, radius)
        painter.setPen(QColor("white"))
        font = QFont()
        font.setBold(True)
        font.setPixelSize(max(8, int(size * 0.62)))
        painter.setFont(font)
        painter.drawText(QRectF(0, 0, size, size * 0.98), Qt.AlignmentFlag.AlignCenter, "A")
        painter.end()
        icon.addPixmap(pixmap)
    return icon
