"""The workstation's icons: one set (Lucide, ISC licence) in light and dark variants.

The SVGs live in ``resources/icons/{light,dark}/`` with the set's licence and where it came
from (``resources/icons/SOURCE.md``), written by ``scripts/vendor_icons.py`` from the npm
package, and only the icons named in :data:`ICONS` are bundled.

An icon follows the theme by itself: :class:`_ThemedEngine` paints the dark variant (light
strokes) while the application palette is dark and the light one otherwise, at paint time, so
switching Settings ▸ Theme needs no widget to set its icons again. Where ``resources/`` is
not installed (a bare wheel) :func:`icon` returns an empty icon and the buttons keep their
words, which every action has anyway.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QGuiApplication, QIcon, QIconEngine, QPainter, QPixmap

from .sla_display import is_dark
from .theme import resources_dir

__all__ = ["ICONS", "icon", "icons_dir"]

#: What each icon means here -> the Lucide icon drawn for it. The vendoring script bundles
#: exactly these.
ICONS: dict[str, str] = {
    "timer-start": "play",
    "timer-stop": "square",
    "timer-switch": "replace",
    "time-menu": "clock",
    "tell-customer": "megaphone",
    "wait": "hourglass",
    "resume": "play",
    "escalate": "circle-arrow-up",
    "resolve": "circle-check",
    "close": "archive",
    "reopen": "rotate-ccw",
    "redirect": "forward",
    "triage": "stethoscope",
    "ask-triage": "circle-help",
    "assign-me": "user-check",
    "assign": "user-plus",
    "unassign": "user-minus",
    "charges": "receipt",
    "reply": "message-square-reply",
    "note": "sticky-note",
    "send": "send",
    "queue-order": "list-ordered",
    "filter-off": "list-filter",
    "connect": "plug",
    "sign-out": "log-out",
    "new-ticket": "plus",
    "settings": "settings",
    "quit": "power",
    "search": "search",
    "timer": "timer",
    "show-window": "app-window",
    "validate": "shield-check",
}

VARIANTS = ("light", "dark")


def icons_dir() -> Path | None:
    """``resources/icons`` when it is installed."""
    resources = resources_dir()
    if resources is None or not (resources / "icons" / "light").is_dir():
        return None
    return resources / "icons"


class _ThemedEngine(QIconEngine):
    """Paints the variant that suits the application's palette at the time of painting."""

    def __init__(self, light: QIcon, dark: QIcon) -> None:
        super().__init__()
        self._light, self._dark = light, dark

    def _current(self) -> QIcon:
        app = QGuiApplication.instance()
        dark = isinstance(app, QGuiApplication) and is_dark(QGuiApplication.palette())
        return self._dark if dark else self._light

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        self._current().paint(painter, rect, mode=mode, state=state)

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        return self._current().pixmap(size, mode, state)

    def clone(self) -> QIconEngine:
        return _ThemedEngine(self._light, self._dark)


@cache
def _variants(name: str) -> tuple[QIcon, QIcon] | None:
    folder = icons_dir()
    if folder is None:
        return None
    files = [folder / variant / f"{ICONS[name]}.svg" for variant in VARIANTS]
    if not all(f.is_file() for f in files):
        return None
    return QIcon(str(files[0])), QIcon(str(files[1]))


def icon(name: str) -> QIcon:
    """The icon for ``name`` (a key of :data:`ICONS`), following light and dark themes."""
    if name not in ICONS:
        raise KeyError(f"no icon is called {name!r}; the names are in agentdesk.ui.icons.ICONS")
    found = _variants(name)
    if found is None:
        return QIcon()
    return QIcon(_ThemedEngine(*found))
