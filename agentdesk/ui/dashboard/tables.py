"""The dashboard's tables: a thin item model over rows the read side computed, a view whose
every cell with a figure clicks through, and CSV export through the one formula-safe writer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ...exports.csv_safe import Cell, save_csv
from ...queries.dashboard import TicketFilter

__all__ = ["FigureRow", "FigureTable", "FigureTableModel"]

_ROOT = QModelIndex()
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
#: The filter behind a cell (None: the cell is a name, not a figure).
FilterRole = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True)
class FigureRow:
    """One table row: the raw values (exported as they are), their text, and per cell the
    filter of the tickets behind it (None where a cell is not a figure)."""

    values: tuple[Cell, ...]
    texts: tuple[str, ...]
    filters: tuple[TicketFilter | None, ...]


def _shown(row: FigureRow) -> tuple[object, ...]:
    """What a row shows: its texts, values (alignment) and its filters' labels (tooltips)."""
    return (row.texts, row.values, tuple(f.label if f else None for f in row.filters))


class FigureTableModel(QAbstractTableModel):
    """Rows replaced in place: changed cells get ``dataChanged``, added or removed rows their
    insert/remove signals; never a reset (the view keeps its selection and scroll position)."""

    def __init__(self, headers: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.headers = list(headers)
        self._rows: list[FigureRow] = []

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self.headers)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(self.headers)
        ):
            return self.headers[section]
        return None

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row = self._rows[index.row()]
        col = index.column()
        if col >= len(row.texts):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return row.texts[col]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT if isinstance(row.values[col], int | float) else None
        if role == Qt.ItemDataRole.ToolTipRole and row.filters[col] is not None:
            return f"Open the queue: {row.filters[col].label}"  # type: ignore[union-attr]
        if role == FilterRole:
            return row.filters[col]
        return None

    def rows(self) -> list[FigureRow]:
        return list(self._rows)

    def set_rows(self, rows: Sequence[FigureRow]) -> None:
        """Rows whose shown values changed get ``dataChanged``; rows whose filters alone moved
        (their clock: every refresh) are replaced silently, as nothing shows them but a click."""
        new = list(rows)
        old_n, new_n = len(self._rows), len(new)
        if new_n < old_n:
            self.beginRemoveRows(_ROOT, new_n, old_n - 1)
            del self._rows[new_n:]
            self.endRemoveRows()
        changed = [i for i in range(min(old_n, new_n)) if _shown(self._rows[i]) != _shown(new[i])]
        for i in range(min(old_n, new_n)):
            self._rows[i] = new[i]
        if changed:
            self.dataChanged.emit(
                self.index(changed[0], 0), self.index(changed[-1], len(self.headers) - 1), []
            )
        if new_n > old_n:
            self.beginInsertRows(_ROOT, old_n, new_n - 1)
            self._rows.extend(new[old_n:])
            self.endInsertRows()

    def export(self, path: Path) -> int:
        return save_csv(path, self.headers, (row.values for row in self._rows))


#: How many rows a column's fit measures, the visible ones first (a dashboard table shows
#: fewer; Qt's default is 1,000).
FIT_ROWS = 50


class FigureTable(QWidget):
    """A titled table with an "Export CSV…" button; activating a figure cell emits
    :attr:`filterRequested` with the tickets behind it."""

    filterRequested = Signal(object)

    def __init__(self, title: str, headers: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"table:{title}")
        self.title = title
        self.model = FigureTableModel(headers, self)
        self.view = QTableView()
        self.view.setAccessibleName(title)
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QTableView.SelectionBehavior.SelectItems)
        self.view.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().hide()
        # Fitted to the contents when rows or headers come and go, not on every changed
        # number: refitting measured every cell again on each refresh (and made columns jump).
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.view.horizontalHeader().setStretchLastSection(True)
        # Fitted to at most FIT_ROWS rows, the visible ones first, not to every row: Qt
        # measures up to 1,000 rows by default, each cell a call into Python, and the first
        # fill of a year's tables took ~190 ms of the GUI thread (docs/performance.md).
        self.view.horizontalHeader().setResizeContentsPrecision(FIT_ROWS)
        self.model.rowsInserted.connect(lambda *_: self.view.resizeColumnsToContents())
        self.model.headerDataChanged.connect(lambda *_: self.view.resizeColumnsToContents())
        self.view.clicked.connect(self._activated)
        self.view.activated.connect(self._activated)
        self.note = QLabel()
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self._export_clicked)
        bar = QHBoxLayout()
        bar.addWidget(self.note, 1)
        bar.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)

    def _activated(self, index: QModelIndex) -> None:
        found = index.data(FilterRole)
        if isinstance(found, TicketFilter):
            self.filterRequested.emit(found)

    def _export_clicked(self) -> None:
        name = self.title.lower().replace(" ", "-").replace("/", "-") + ".csv"
        path, _ = QFileDialog.getSaveFileName(
            self, f"Export {self.title}", name, "CSV files (*.csv)"
        )
        if path:
            self.model.export(Path(path))
