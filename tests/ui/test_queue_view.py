"""The queue widget: keyboard, debounced search, saved views, sorting, header state, the
countdown limited to visible rows, and a view that never reads rows nobody looks at."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QByteArray, QModelIndex, QPoint, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from sqlalchemy import Engine, event

from agentdesk.policy.calendar import BusinessCalendar
from agentdesk.policy.sla import SlaState
from agentdesk.ui.queue.model import Column, QueueModel, SavedView, SlaStateRole
from agentdesk.ui.queue.view import QueueView
from agentdesk.ui.sla_display import SlaClock
from tests.ui.queue_fixtures import OFFICE, QueueData, queue_db


@pytest.fixture
def data(tmp_path: Path) -> QueueData:
    return queue_db(tmp_path, 400)


@pytest.fixture
def engine(data: QueueData) -> Iterator[Engine]:
    eng = data.engine()
    yield eng
    eng.dispose()


def make_model(engine: Engine, data: QueueData, **kwargs: Any) -> QueueModel:
    kwargs.setdefault("asynchronous", False)
    kwargs.setdefault("now", lambda: data.now)
    kwargs.setdefault("sla_clock", SlaClock(BusinessCalendar.from_dict(OFFICE)))
    return QueueModel(engine, **kwargs)


@pytest.fixture
def view(qtbot: QtBot, engine: Engine, data: QueueData) -> QueueView:
    model = make_model(engine, data, user_id=data.user_ids[0])
    widget = QueueView(model)
    model.setParent(widget)
    qtbot.addWidget(widget)
    widget.resize(1200, 600)
    widget.show()
    qtbot.waitExposed(widget)
    qtbot.waitUntil(lambda: model._visible is not None)
    return widget


def test_shows_the_queue_with_a_count(view: QueueView) -> None:
    model = view.model()
    assert model.rowCount() > 300
    assert view._status.text() == f"{model.rowCount():,} tickets"
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in Column]
    assert headers == [
        "Tier",
        "SLA",
        "Plan",
        "Organisation",
        "Requester",
        "Subject",
        "Channel",
        "Level",
        "Status",
        "Assignee",
        "Age",
    ]


def test_j_k_move_and_enter_opens(qtbot: QtBot, view: QueueView) -> None:
    table, model = view.table(), view.model()
    table.step(0)  # the first row, as focusing the table does
    assert table.currentIndex().row() == 0
    qtbot.keyClick(table, Qt.Key.Key_J)
    qtbot.keyClick(table, Qt.Key.Key_J)
    assert table.currentIndex().row() == 2
    qtbot.keyClick(table, Qt.Key.Key_K)
    assert table.currentIndex().row() == 1
    assert table.selectionModel().isRowSelected(1, QModelIndex())
    qtbot.keyClick(table, Qt.Key.Key_Down)  # the arrows keep working
    assert table.currentIndex().row() == 2
    with qtbot.waitSignal(view.openRequested) as opened:
        qtbot.keyClick(table, Qt.Key.Key_Return)
    assert opened.args == [model.ticket_id(2)]
    assert isinstance(opened.args[0], uuid.UUID)
    with qtbot.waitSignal(view.openRequested) as opened:
        rect = table.visualRect(model.index(4, Column.SUBJECT))
        # QTest's double click omits the first press that item views track: click first.
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened.args == [model.ticket_id(4)]
    for _ in range(3):
        qtbot.keyClick(table, Qt.Key.Key_K)
    assert table.currentIndex().row() == 1
    qtbot.keyClick(table, Qt.Key.Key_K)
    qtbot.keyClick(table, Qt.Key.Key_K)
    assert table.currentIndex().row() == 0  # clamped


def test_ctrl_f_focuses_search_and_escape_returns(qtbot: QtBot, view: QueueView) -> None:
    table, search = view.table(), view.search_box()
    view.activateWindow()
    table.setFocus()
    qtbot.waitUntil(table.hasFocus)
    qtbot.keyClick(table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(search.hasFocus)
    qtbot.keyClicks(search, "slow")
    qtbot.keyClick(search, Qt.Key.Key_Escape)
    assert search.text() == ""
    assert search.hasFocus()
    qtbot.keyClick(search, Qt.Key.Key_Escape)
    qtbot.waitUntil(table.hasFocus)


def test_search_is_debounced_and_filters(
    qtbot: QtBot, view: QueueView, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = view.model()
    sent: list[str] = []
    real = model.set_search

    def recorded(text: str) -> None:
        sent.append(text)
        real(text)

    monkeypatch.setattr(model, "set_search", recorded)
    qtbot.keyClicks(view.search_box(), "slow")
    assert sent == []  # no query per keystroke
    qtbot.waitUntil(lambda: sent == ["slow"], timeout=2000)
    qtbot.wait(view.SEARCH_DEBOUNCE_MS * 2)
    assert sent == ["slow"]
    assert 0 < model.rowCount() < 200
    assert view._status.text().endswith("tickets")
    assert all(
        "slow" in (model.index(r, Column.SUBJECT).data() or "").lower()
        for r in range(model.rowCount())
    )
    qtbot.keyClick(view.search_box(), Qt.Key.Key_Down)  # Down: to the results
    assert view.table().currentIndex().row() == 0


def test_saved_view_selector_switches_and_keeps_the_current_ticket(
    qtbot: QtBot, view: QueueView, data: QueueData
) -> None:
    model, selector = view.model(), view.view_selector()
    assert [selector.itemText(i) for i in range(selector.count())] == [
        "My tickets",
        "Unassigned",
        "Triage (untriaged)",
        "At risk",
        "Breached",
        "Waiting on customer",
        "All open",
        "Recent (what I touched)",
        "Every ticket (open or not)",
        "Resolved",
        "Closed",
        "Redirected",
    ]
    assert selector.currentText() == "All open"
    unassigned = {t["id"] for t in data.tickets if t["assignee_id"] is None}
    row = next(r for r in range(model.rowCount()) if model.ticket_id(r) in unassigned)
    view.select_ticket(model.ticket_id(row))  # type: ignore[arg-type]
    chosen = view.current_ticket_id()
    selector.setCurrentIndex(selector.findText("Unassigned"))
    assert model.view() is SavedView.UNASSIGNED
    assert {model.ticket_id(r) for r in range(model.rowCount())} <= unassigned
    assert view.current_ticket_id() == chosen  # re-selected after the reset
    view.set_view(SavedView.MY_TICKETS)
    assert selector.currentText() == "My tickets"
    mine = {t["id"] for t in data.tickets if t["assignee_id"] == data.user_ids[0]}
    assert {model.ticket_id(r) for r in range(model.rowCount())} <= mine
    view.set_view(SavedView.AT_RISK)
    assert all(
        model.index(r, 0).data(SlaStateRole) == SlaState.AT_RISK for r in range(model.rowCount())
    )


def test_header_click_sorts_and_queue_order_is_one_click_away(
    qtbot: QtBot, view: QueueView
) -> None:
    model, table = view.model(), view.table()
    queue = [model.ticket_id(r) for r in range(model.rowCount())]
    header = table.horizontalHeader()
    x = header.sectionViewportPosition(Column.SUBJECT) + 10
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))
    assert model.sort_column() == Column.SUBJECT
    subjects = [model.index(r, Column.SUBJECT).data().casefold() for r in range(model.rowCount())]
    assert subjects == sorted(subjects)
    view._order.click()
    assert model.sort_column() == -1
    assert header.sortIndicatorSection() == -1
    assert [model.ticket_id(r) for r in range(model.rowCount())] == queue
    # Or through the header: ascending, descending, then back to the queue order.
    for expected in (Column.SUBJECT, Column.SUBJECT, -1):
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))
        assert model.sort_column() == expected
    assert [model.ticket_id(r) for r in range(model.rowCount())] == queue


def test_header_state_round_trips_and_bad_state_is_refused(
    qtbot: QtBot, view: QueueView, engine: Engine, data: QueueData
) -> None:
    header = view.table().horizontalHeader()
    header.moveSection(header.visualIndex(Column.SUBJECT), 0)
    header.resizeSection(Column.ORGANISATION, 222)
    header.setSortIndicator(Column.ORGANISATION, Qt.SortOrder.DescendingOrder)
    assert view.model().sort_column() == Column.ORGANISATION
    state = view.header_state()
    other = QueueView(make_model(engine, data))
    qtbot.addWidget(other)
    other_header = other.table().horizontalHeader()
    assert other_header.logicalIndex(0) == Column.TIER
    assert other.restore_header_state(state)
    assert other_header.logicalIndex(0) == Column.SUBJECT
    assert other_header.sectionSize(Column.ORGANISATION) == 222
    assert other.model().sort_column() == Column.ORGANISATION  # the sort came back too
    assert other.model().query().descending
    assert not other.restore_header_state(QByteArray(b"not a header state"))
    assert other_header.logicalIndex(0) == Column.SUBJECT


def test_only_visible_rows_tick_and_scrolling_moves_the_range(
    qtbot: QtBot, view: QueueView
) -> None:
    model, table = view.model(), view.table()
    first, last = model._visible  # type: ignore[misc]
    assert first == 0
    assert 5 < last < 60
    assert last == table.rowAt(table.viewport().height() - 1)
    changed: list[tuple[int, int, int]] = []
    model.dataChanged.connect(lambda a, b, _r=None: changed.append((a.row(), b.row(), a.column())))
    model.tick()
    assert sorted(changed) == [(0, last, Column.SLA), (0, last, Column.AGE)]
    table.scrollToBottom()
    qtbot.waitUntil(
        lambda: model._visible is not None and model._visible[1] == model.rowCount() - 1
    )
    view.hide()
    assert model._visible is None
    assert not model._timer.isActive()


def test_keyboard_search_is_off_so_typing_reads_no_rows(qtbot: QtBot, view: QueueView) -> None:
    model, table = view.model(), view.table()
    table.step(0)
    cached = len(model._rows)
    qtbot.keyClicks(table, "zzzq")
    assert table.currentIndex().row() == 0
    assert len(model._rows) == cached


def test_palette_switch_recolours_sla_cells(qtbot: QtBot, view: QueueView) -> None:
    model = view.model()
    row = next(
        r
        for r in range(model.rowCount())
        if model.index(r, 0).data(SlaStateRole) == SlaState.BREACHED
    )
    dark = QPalette(QApplication.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    dark.setColor(QPalette.ColorRole.Text, QColor("#eeeeee"))
    view.setPalette(dark)
    assert model.index(row, Column.SLA).data(Qt.ItemDataRole.ForegroundRole) == QColor("#ff6e6e")


def test_scrolling_a_large_queue_reads_only_what_is_shown(qtbot: QtBot, tmp_path: Path) -> None:
    data = queue_db(tmp_path, 5000, seed=11)
    engine = data.engine()
    reads: list[str] = []
    event.listen(
        engine,
        "before_cursor_execute",
        lambda _c, _cur, sql, *_a: (
            reads.append(sql) if "FROM tickets LEFT OUTER JOIN" in sql else None
        ),
    )
    try:
        model = make_model(engine, data)
        widget = QueueView(model)
        qtbot.addWidget(widget)
        widget.resize(1000, 500)
        widget.show()
        qtbot.waitExposed(widget)
        widget.table().scrollToBottom()
        qtbot.wait(50)
        widget.table().scrollTo(model.index(model.rowCount() // 2, 0))
        qtbot.wait(50)
        assert 1 <= len(reads) <= 6  # first screen, last screen, middle: a block or two each
        assert len(model._rows) <= 6 * model.BLOCK
    finally:
        engine.dispose()
