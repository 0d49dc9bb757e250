"""A row of widgets that wraps onto the next line when its width runs out.

Qt has no such layout (its documentation carries one as the "Flow Layout" example, which this
follows). The ticket card's workflow buttons need it: which of them show depends on the ticket
(redirect, tell, wait, resume, escalate, resolve, close, reopen), and in one box row their sum
was the card's minimum width, so on a laptop a ticket with many next steps widened the window
past the screen (a layout test failed on the tickets that had the most).
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QMargins, QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QSizePolicy, QWidget

__all__ = ["FlowLayout"]


def _free(items: list[QLayoutItem]) -> None:
    """Delete a destroyed layout's items (what :meth:`FlowLayout.takeAt` gave back is no longer
    among them: its taker owns it)."""
    while items:
        shiboken6.delete(items.pop())


class FlowLayout(QLayout):
    """Left to right, wrapping; hidden widgets take no room. Its preferred width is one row,
    its minimum the widest item, and its height follows its width (``heightForWidth``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        # Qt's layouts delete their items (not the widgets) in their destructor, and so does
        # Qt's example; a Python layout has no destructor, so it happens when Qt says the layout
        # is gone. That is still inside the host's destructor, before its child widgets go (a
        # widget item tells its widget it is going). The closure holds the list, not the layout.
        items = self._items
        self.destroyed.connect(lambda: _free(items))

    # ------------------------------------------------------------------ QLayout

    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), place=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._arrange(rect, place=True)

    def sizeHint(self) -> QSize:
        """Everything in one row."""
        width, height = 0, 0
        for item in self._shown():
            hint = item.sizeHint()
            width += hint.width() + (self._gap(item, Qt.Orientation.Horizontal) if width else 0)
            height = max(height, hint.height())
        return QSize(width, height).grownBy(self.contentsMargins())

    def minimumSize(self) -> QSize:
        """The widest item: anything narrower wraps."""
        size = QSize()
        for item in self._shown():
            size = size.expandedTo(item.minimumSize())
        return size.grownBy(self.contentsMargins())

    # ------------------------------------------------------------------ internals

    def _shown(self) -> list[QLayoutItem]:
        return [item for item in self._items if not item.isEmpty()]

    def _gap(self, item: QLayoutItem, orientation: Qt.Orientation) -> int:
        spacing = self.spacing()
        if spacing >= 0:
            return spacing
        widget = item.widget()
        parent = self.parentWidget()
        if widget is None or parent is None:
            return 6
        style = parent.style()
        policy = QSizePolicy.ControlType.PushButton
        return style.layoutSpacing(policy, policy, orientation, None, parent)

    def _arrange(self, rect: QRect, *, place: bool) -> int:
        """Lay the items out in ``rect`` (or only measure); returns the height they take."""
        margins: QMargins = self.contentsMargins()
        area = rect.marginsRemoved(margins)
        x, y, line = area.x(), area.y(), 0
        for item in self._shown():
            hint = item.sizeHint()
            gap_x = self._gap(item, Qt.Orientation.Horizontal)
            if x > area.x() and x + hint.width() > area.right() + 1:
                x = area.x()
                y += line + self._gap(item, Qt.Orientation.Vertical)
                line = 0
            if place:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + gap_x
            line = max(line, hint.height())
        return y + line - rect.y() + margins.bottom()
