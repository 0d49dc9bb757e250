"""Clickable bar charts for the dashboard, on pyqtgraph.

Why pyqtgraph (>= 0.14) and not Qt Charts or Qt Graphs: Qt Charts is deprecated since Qt 6.10
("use Qt Graphs instead"); Qt Graphs draws through Qt Quick, so embedding it needs a
``QQuickWidget`` with an OpenGL/RHI backend, which the offscreen platform our tests run on and
software-rendered Xvfb sessions do not reliably provide. pyqtgraph's plots are plain
``QGraphicsView`` widgets: they render on every platform plugin (offscreen, xcb under Xvfb,
Windows, macOS), take the palette like any widget, and their items are Python objects we can
hit-test, which is what click-through needs. The cost is one dependency (with numpy).

A chart never stands alone: :class:`BarChart` puts the same numbers under the plot as buttons
("Tier 1: 4"), so every value is readable as text, reachable by keyboard and clickable.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QGraphicsItem,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..flow_layout import FlowLayout

__all__ = ["BarChart"]

_BAR_WIDTH = 0.62


class BarChart(QWidget):
    """Vertical bars with a category axis; clicking a bar (or its text button) emits
    :attr:`barClicked` with the bar's index."""

    barClicked = Signal(int)

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"chart:{title}")
        self._labels: list[str] = []
        self._values: list[int] = []
        self._colours: list[QColor] = []
        self._title = QLabel(title)
        self._title.setTextFormat(Qt.TextFormat.PlainText)
        font = self._title.font()
        font.setBold(True)
        self._title.setFont(font)
        self.plot = pg.PlotWidget(enableMenu=False)
        self.plot.setAccessibleName(f"{title} chart")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setMinimumHeight(150)
        # Until the first figures arrive a plain line stands in for the plot: a plot's first
        # paint (axes, grid, fonts) is 10-30 ms, and four empty ones painted with the window
        # were the dashboard's longest stall of the GUI thread (docs/performance.md). Each
        # plot is then first painted in the turn its own figures are shown.
        self._waiting = QLabel("Waiting for the figures…")
        self._waiting.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._waiting.setMinimumHeight(150)
        self._waiting.setEnabled(False)
        self.plot.hide()
        item = self.plot.getPlotItem()
        item.showGrid(x=False, y=True, alpha=0.25)
        item.getAxis("left").setWidth(36)
        for axis in ("left", "bottom"):
            # Painted from a cached pixmap until the axis itself changes (its ticks or range):
            # a refresh that moves the bars repainted both axes' text from scratch.
            item.getAxis(axis).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._bars = pg.BarGraphItem(x=[], height=[], width=_BAR_WIDTH)
        self.plot.addItem(self._bars)
        self._texts: list[pg.TextItem] = []
        self.plot.scene().sigMouseClicked.connect(self._scene_clicked)
        # The numbers as text, as many to a row as fit: the chart's minimum width is its widest
        # number, not three of them (a grid of three made the charts ask for more width than
        # the window had as their first figures came, and every chart beside one re-laid out
        # and repainted: the dashboard's first fill stalled the GUI thread for ~70 ms).
        self._buttons = FlowLayout()
        self._buttons.setContentsMargins(0, 0, 0, 0)
        self._buttons.setSpacing(2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._title)
        layout.addWidget(self._waiting, 1)
        layout.addWidget(self.plot, 1)
        # Room for three rows of numbers from the start: the first figures then fill it without
        # making the chart taller, which re-laid out and repainted every chart beside it.
        numbers = QWidget()
        numbers.setLayout(self._buttons)
        probe = QPushButton("0")
        probe.setFlat(True)
        numbers.setMinimumHeight(3 * probe.sizeHint().height() + 2 * self._buttons.spacing())
        layout.addWidget(numbers)
        self._apply_palette()

    # ------------------------------------------------------------------ data

    def values(self) -> list[int]:
        return list(self._values)

    def labels(self) -> list[str]:
        return list(self._labels)

    def buttons(self) -> list[QPushButton]:
        found = []
        for i in range(self._buttons.count()):
            item = self._buttons.itemAt(i)
            widget = item.widget() if item is not None else None
            if isinstance(widget, QPushButton):
                found.append(widget)
        return found

    def set_data(
        self, labels: Sequence[str], values: Sequence[int], colours: Sequence[QColor] | None = None
    ) -> None:
        """Show ``values`` (same length as ``labels``). Only what changed is touched: a refresh
        usually moves a few numbers, and rebuilding the axis ticks, the value labels and the
        text buttons made every refresh repaint and re-lay out the whole chart."""
        labels, values = list(labels), [int(v) for v in values]
        colours = list(colours) if colours is not None else [self._accent()] * len(values)
        if self.plot.isHidden():
            self._waiting.hide()
            self.plot.show()
        if labels == self._labels and values == self._values and colours == self._colours:
            return
        relabel = labels != self._labels
        recolour = relabel or colours != self._colours
        old_top = max(self._values, default=0)
        self._labels, self._values, self._colours = labels, values, colours
        xs = list(range(len(values)))
        opts: dict[str, object] = {"x": xs, "height": values, "width": _BAR_WIDTH}
        if recolour:
            opts["brushes"] = [pg.mkBrush(c) for c in colours]
            opts["pens"] = [pg.mkPen(None)] * len(xs)
        self._bars.setOpts(**opts)
        item = self.plot.getPlotItem()
        if relabel:
            item.getAxis("bottom").setTicks([list(enumerate(self.tick_labels()))])
            item.setXRange(-0.6, max(len(values) - 0.4, 0.4), padding=0)
        top = max(values, default=0)
        if relabel or top != old_top:
            item.setYRange(0, max(top * 1.18, 1), padding=0)
        if len(self._texts) != len(values):
            for text in self._texts:
                self.plot.removeItem(text)
            self._texts = []
            for _ in values:
                label = pg.TextItem("", anchor=(0.5, 1.0), color=self._text_colour())
                self.plot.addItem(label)
                self._texts.append(label)
        for i, (label, v) in enumerate(zip(self._texts, values, strict=True)):
            if label.toPlainText() != str(v):
                label.setText(str(v))
            label.setPos(i, v)
        if relabel:
            self._rebuild_buttons()
        else:
            for button, text, v in zip(self.buttons(), labels, values, strict=True):
                shown = f"{text}: {v:,}"
                if button.text() != shown:
                    button.setText(shown)

    def tick_labels(self) -> list[str]:
        """The words under each bar: a label's words before its explanation in parentheses
        ("Paused (waiting on customer)" is "Paused"), which the buttons below show in full.
        A tick wider than its bar is left out by the plot, so the whole label went missing."""
        return [text.split(" (", 1)[0] for text in self._labels]

    def waiting_text(self, text: str) -> None:
        """What stands in for the plot until the first figures (a failure, say)."""
        self._waiting.setText(text)

    def bar_scene_pos(self, index: int) -> QPointF:
        """The middle of a bar in scene coordinates (for tests that click like a user)."""
        vb = self.plot.getPlotItem().getViewBox()
        point: QPointF = vb.mapViewToScene(QPointF(index, self._values[index] / 2))
        return point

    # ------------------------------------------------------------------ internals

    def _rebuild_buttons(self) -> None:
        while self._buttons.count():
            item = self._buttons.takeAt(0)
            if item is None:
                break
            widget = item.widget()
            if widget is not None:
                widget.deleteLater()
            shiboken6.delete(item)  # the layout's C++ item: nobody else frees it
        for i, (text, v) in enumerate(zip(self._labels, self._values, strict=True)):
            button = QPushButton(f"{text}: {v:,}")
            button.setFlat(True)
            button.setToolTip(f"Open the queue filtered to these tickets ({text})")
            button.clicked.connect(lambda _checked=False, n=i: self.barClicked.emit(n))
            self._buttons.addWidget(button)

    def _scene_clicked(self, event: object) -> None:
        pos = event.scenePos()  # type: ignore[attr-defined]
        vb = self.plot.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            return
        point = vb.mapSceneToView(pos)
        index = round(point.x())
        if 0 <= index < len(self._values) and abs(point.x() - index) <= _BAR_WIDTH / 2:
            event.accept()  # type: ignore[attr-defined]
            self.barClicked.emit(index)

    def _accent(self) -> QColor:
        return self.palette().color(QPalette.ColorRole.Highlight)

    def _text_colour(self) -> QColor:
        return self.palette().color(QPalette.ColorRole.WindowText)

    def _apply_palette(self) -> None:
        pal = self.palette()
        self.plot.setBackground(pal.color(QPalette.ColorRole.Base))
        pen = pg.mkPen(pal.color(QPalette.ColorRole.WindowText))
        item = self.plot.getPlotItem()
        for axis in ("left", "bottom"):
            item.getAxis(axis).setPen(pen)
            item.getAxis(axis).setTextPen(pen)
