"""The team lead's (and coordinator's) home: the live state of the queue and of the 1-on-1
business, every number a way into the tickets behind it.

* Figures come from :func:`agentdesk.queries.dashboard_live.start` (the rules of
  :mod:`agentdesk.queries.dashboard`, its two large reads on two threads in one snapshot), run
  as a background operation (:mod:`agentdesk.ui.background`): the GUI thread only swaps
  results into widgets.
* Live: :meth:`DashboardView.changes_arrived` takes the sync bridge's :class:`ReplicaChange`
  and hands the changed ticket ids to :func:`agentdesk.queries.dashboard_live.advance`, which
  moves the figures by what those tickets contribute (the queue model's ``apply_changes``
  pattern); the 1-on-1 hours are recomputed only when their tables changed. Pulls that arrive
  while a refresh runs are merged into the next. SLA states and ages also move with the clock,
  so the figures are moved once a minute with no change at all; lookups (plans, organisations,
  calendars, people) or a reset recompute everything.
* Click-through: every figure carries its :class:`TicketFilter`; :attr:`filterRequested` hands
  it to the main window, which shows the queue filtered to exactly those tickets.
* Remembered per user in QSettings: the time range (or dates), the splitter and the open tab.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from PySide6.QtCore import QDate, QEvent, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...exports.csv_safe import Cell
from ...queries import dashboard as figures
from ...queries import dashboard_live as live
from ...queries.dashboard import Count, Dashboard, Section, TicketFilter
from ...sync.replica import Replica
from .. import background
from ..shell.sync_bridge import ReplicaChange
from ..shown_time import to_local
from .charts import BarChart
from .tables import FigureRow, FigureTable

log = logging.getLogger(__name__)

__all__ = ["RANGES", "DashboardView"]

#: The time ranges offered (days back from now); "dates" picks two dates.
RANGES: dict[str, int | None] = {"7 days": 7, "30 days": 30, "90 days": 90, "Dates": None}
CLOCK_REFRESH_MS = 60_000

_SLA_COLOURS = {
    "on_track": "#3a9a5b",
    "at_risk": "#d9a21b",
    "breached": "#d64545",
    "paused": "#8a8f98",
}


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "-"
    minutes = int(value.total_seconds() // 60)
    sign = "-" if minutes < 0 else ""
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours}h {rest:02d}m" if hours else f"{sign}{rest}m"


def _age(oldest: datetime | None, now: datetime) -> str:
    if oldest is None:
        return "-"
    days = (now - oldest).total_seconds() / 86400
    return f"{days:.1f} d" if days >= 1 else f"{(now - oldest).total_seconds() / 3600:.1f} h"


def _day(value: QDate) -> date:
    return date(value.year(), value.month(), value.day())


def _when(t: datetime) -> str:
    return to_local(t).strftime("%a %d %b %H:%M")


class _Tile(QPushButton):
    """One headline number, clickable (its tickets), readable as text."""

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title
        self.figure: Count | None = None
        self.setObjectName(f"tile:{title}")
        self.setMinimumHeight(58)
        self.setText(f"{title}\n-")

    def show_count(self, figure: Count | None, text: str | None = None) -> None:
        self.figure = figure
        value = text if text is not None else (f"{figure.value:,}" if figure else "-")
        self.setText(f"{self.title}\n{value}")
        self.setToolTip(f"Open the queue: {figure.filter.label}" if figure else "")
        self.setEnabled(figure is not None)


class DashboardView(QWidget):
    """The dashboard page. ``now`` is injectable (tests freeze time)."""

    filterRequested = Signal(object)
    #: A computation finished and the widgets show its result.
    refreshed = Signal(object)

    def __init__(
        self,
        replica: Replica,
        store: QSettings,
        *,
        username: str = "",
        now: Callable[[], datetime] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("dashboardView")
        self._replica = replica
        self._store = store
        self._prefix = f"dashboard/{username or 'default'}"
        self._now = now or (lambda: datetime.now(UTC))
        self.dashboard: Dashboard | None = None
        #: The shown figures and what the next incremental refresh starts from (its snapshot);
        #: handed to the worker while a refresh runs.
        self._live: live.LiveDashboard | None = None
        self._running: background.Operation[live.LiveDashboard] | None = None
        self._stopped = False
        self._pending = False
        self._pending_full = False
        self._pending_ids: set[uuid.UUID] = set()
        self._pending_hours = False
        #: What is left to show of the last result (see :meth:`_show`), a step a turn.
        self._steps: list[Callable[[], None]] = []
        self._stepper = QTimer(self)
        self._stepper.setSingleShot(True)
        self._stepper.setInterval(0)
        self._stepper.timeout.connect(self._step)
        #: Whether the window has been painted once. Its first paint (every label, tile and
        #: table at once) asks the interpreter for each cell's text; with the first
        #: computation already running on the worker, each of those waits for the lock, and
        #: that first paint was the view's longest stall (docs/performance.md). A computation
        #: asked for while the view is shown but not yet painted starts right after that paint
        #: (or after 100 ms at the latest, should no paint come).
        self._painted = False

        # --- range
        self.range_box = QComboBox()
        self.range_box.setAccessibleName("Time range")
        self.range_box.addItems(list(RANGES))
        self.date_from = QDateEdit()
        self.date_to = QDateEdit()
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.installEventFilter(self)  # its first paint (see _painted)
        top = QHBoxLayout()
        top.addWidget(QLabel("First responses and billed hours over"))
        top.addWidget(self.range_box)
        self._to = QLabel("to")
        top.addWidget(self.date_from)
        top.addWidget(self._to)
        top.addWidget(self.date_to)
        top.addStretch(1)
        top.addWidget(self.status)

        # --- headline numbers
        self.tiles: dict[str, _Tile] = {}
        grid = QGridLayout()
        names = (
            "Open",
            "Untriaged",
            "Unassigned",
            "On track",
            "At risk",
            "Breached",
            "Paused",
            "Redirected",
            "Days to clear",
        )
        for i, name in enumerate(names):
            tile = _Tile(name)
            tile.clicked.connect(lambda _c=False, t=tile: self._tile_clicked(t))
            self.tiles[name] = tile
            grid.addWidget(tile, 0, i)

        # --- charts
        self.tier_chart = BarChart("Open tickets by tier")
        self.sla_chart = BarChart("First-response SLA now")
        self.age_chart = BarChart("Open queue by age (business days)")
        self.plan_chart = BarChart("Open tickets by plan")
        self._chart_filters: dict[BarChart, list[TicketFilter]] = {}
        charts = QSplitter(Qt.Orientation.Horizontal)
        charts.setObjectName("dashboardCharts")
        for chart in (self.tier_chart, self.sla_chart, self.age_chart, self.plan_chart):
            chart.barClicked.connect(lambda i, c=chart: self._bar_clicked(c, i))
            charts.addWidget(chart)
        self.charts_splitter = charts

        # --- tables
        self.soon = FigureTable(
            "Breaching soon", ["Ticket", "Organisation", "Urgency", "Due", "Business time left"]
        )
        self.response = FigureTable(
            "First response vs target",
            ["Group", "Responses", "Median", "90th percentile", "Met", "% met"],
        )
        self.load = FigureTable(
            "Load per agent", ["Agent", "Open", "Oldest", "At risk", "Breached"]
        )
        self.levels = FigureTable("Queue health", ["Figure", "Tickets", "Oldest"])
        self.allowance = FigureTable(
            "Conversation allowance",
            ["Organisation", "Plan", "Used this year", "Allowance", "State"],
        )
        self.hours = FigureTable(
            "1-on-1 hours",
            ["Organisation", "Prepaid left (h)", "Expiring in 30 days (h)", "Expires"],
        )
        self.weekly = FigureTable("Billed hours per week", ["Organisation"])
        self.tables = (
            self.soon,
            self.response,
            self.load,
            self.levels,
            self.allowance,
            self.hours,
            self.weekly,
        )
        self.tabs = QTabWidget()
        self.tabs.setObjectName("dashboardTabs")
        for table in self.tables:
            table.filterRequested.connect(self.filterRequested)
            self.tabs.addTab(table, table.title)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("dashboardSplitter")
        self.splitter.addWidget(charts)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setChildrenCollapsible(False)

        # Scrolled, so the page's natural size never becomes the main window's minimum.
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.addLayout(top)
        layout.addLayout(grid)
        layout.addWidget(self.splitter, 1)
        content.setMinimumSize(900, 620)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        self._clock = QTimer(self)
        self._clock.setInterval(CLOCK_REFRESH_MS)
        self._clock.timeout.connect(lambda: self.refresh([Section.TICKETS, Section.ONE_ON_ONE]))
        self._restore()
        self.range_box.currentIndexChanged.connect(self._range_changed)
        self.date_from.dateChanged.connect(self._range_changed)
        self.date_to.dateChanged.connect(self._range_changed)
        self.tabs.currentChanged.connect(lambda _i: self.save_layout())
        self.splitter.splitterMoved.connect(lambda *_: self.save_layout())
        charts.splitterMoved.connect(lambda *_: self.save_layout())

    # ------------------------------------------------------------------ range and layout

    def time_range(self) -> tuple[datetime, datetime]:
        """``[start, end)`` of the chosen range: the last N days, or whole local dates."""
        now = self._now()
        days = RANGES.get(self.range_box.currentText())
        if days is not None:
            return now - timedelta(days=days), now
        start = datetime.combine(_day(self.date_from.date()), time.min).astimezone()
        end = datetime.combine(_day(self.date_to.date()) + timedelta(days=1), time.min).astimezone()
        return start.astimezone(UTC), max(end, start + timedelta(days=1)).astimezone(UTC)

    def set_range(self, name: str) -> None:
        self.range_box.setCurrentText(name)

    def _key(self, name: str) -> str:
        return f"{self._prefix}/{name}"

    def _restore(self) -> None:
        chosen = str(self._store.value(self._key("range"), "30 days"))
        self.range_box.setCurrentText(chosen if chosen in RANGES else "30 days")
        today = datetime.now().astimezone().date()
        for edit, key, default in (
            (self.date_from, "from", today - timedelta(days=30)),
            (self.date_to, "to", today),
        ):
            raw = str(self._store.value(self._key(key), default.isoformat()))
            stored = QDate.fromString(raw, "yyyy-MM-dd")
            edit.setDate(
                stored if stored.isValid() else QDate(default.year, default.month, default.day)
            )
        for splitter, key in ((self.splitter, "splitter"), (self.charts_splitter, "charts")):
            state = self._store.value(self._key(key))
            if state is not None:
                splitter.restoreState(state)
        tab = str(self._store.value(self._key("tab"), 0))
        self.tabs.setCurrentIndex(int(tab) if tab.isdigit() else 0)
        self._show_dates()

    def save_layout(self) -> None:
        self._store.setValue(self._key("range"), self.range_box.currentText())
        self._store.setValue(self._key("from"), self.date_from.date().toString("yyyy-MM-dd"))
        self._store.setValue(self._key("to"), self.date_to.date().toString("yyyy-MM-dd"))
        self._store.setValue(self._key("splitter"), self.splitter.saveState())
        self._store.setValue(self._key("charts"), self.charts_splitter.saveState())
        self._store.setValue(self._key("tab"), self.tabs.currentIndex())

    def _show_dates(self) -> None:
        dates = RANGES.get(self.range_box.currentText(), 0) is None
        for widget in (self.date_from, self._to, self.date_to):
            widget.setVisible(dates)

    def _range_changed(self, *_args: Any) -> None:
        self._show_dates()
        self.save_layout()
        self.refresh()

    # ------------------------------------------------------------------ refresh

    def start(self) -> None:
        """First computation, then the clock's once-a-minute refresh of the SLA figures."""
        self._stopped = False
        self.refresh()
        self._clock.start()

    def stop(self) -> None:
        """No more refreshes; the snapshot the next one would start from is let go."""
        self._clock.stop()
        self.save_layout()
        self._stopped = True
        self._steps = []
        self._stepper.stop()
        if self._live is not None:
            self._live.close()
            self._live = None

    def changes_arrived(self, change: ReplicaChange) -> None:
        """A pull or a local mutation changed the replica: move the figures by what it
        touched (its tickets), or recompute all after a reset or a change of lookups."""
        if change.empty:
            return
        if change.everything or change.lookups:
            self.refresh()
            return
        hours = bool(figures.SECTION_TABLES[Section.ONE_ON_ONE] & change.tables)
        if not change.ticket_ids and not change.tables:
            hours = True  # a local mutation of something else (the timer): recheck the hours
        self._request(False, change.ticket_ids, hours)

    def refresh(self, sections: Iterable[Section] | None = None) -> None:
        """Recompute everything (``sections`` None), or move the figures with the clock and
        recompute ``sections``' own reads (the 1-on-1 hours); on a worker, merged into the
        next while one runs."""
        hours = sections is None or Section.ONE_ON_ONE in set(sections)
        self._request(sections is None, set(), hours)

    def _request(self, full: bool, ids: Iterable[uuid.UUID], hours: bool) -> None:
        self._pending = True
        self._pending_full = self._pending_full or full
        self._pending_ids.update(ids)
        self._pending_hours = self._pending_hours or hours
        if (self._running is None or self._running.done) and not self._steps:
            if self.isVisible() and not self._painted:
                QTimer.singleShot(100, self, self._first_paint_done)
                return  # started after the first paint (see _painted)
            self._next()  # else when the running refresh has been shown

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.status and event.type() == QEvent.Type.Paint and not self._painted:
            # The status line is painted with the window's first paint (the view itself gets
            # no paint event: its children cover it); what follows runs after that paint.
            QTimer.singleShot(0, self, self._first_paint_done)
        return False

    def _first_paint_done(self) -> None:
        if self._painted:
            return
        self._painted = True
        # Not needed again: it would otherwise run Python at every paint of the status line.
        self.status.removeEventFilter(self)
        if (self._running is None or self._running.done) and not self._steps:
            self._next()

    def _next(self) -> None:
        if not self._pending or self._stopped:
            return
        full, ids, hours = self._pending_full, frozenset(self._pending_ids), self._pending_hours
        self._pending, self._pending_full, self._pending_ids = False, False, set()
        self._pending_hours = False
        previous, self._live = self._live, None
        if previous is not None and self._range_jumped(previous.dashboard):
            full = True
        start, end = self.time_range()
        at = self._now()
        engine = self._replica.engine

        def work() -> live.LiveDashboard:
            if full or previous is None:
                if previous is not None:
                    previous.close()
                return live.start(engine, at, start, end)
            return live.advance(previous, at, start, end, ids, one_on_one_too=hours)

        self.status.setText("Updating…")
        self._running = background.run_in_background(work, self._show, self._failed, parent=self)

    def _range_jumped(self, shown: Dashboard) -> bool:
        """Chosen dates that moved: the range-bound figures are recomputed (a rolling "last N
        days" range rolls with the clock, which the incremental refresh follows)."""
        start, end = self.time_range()
        return (start, end) != (shown.start, shown.end) and RANGES.get(
            self.range_box.currentText()
        ) is None

    def _failed(self, exc: Exception) -> None:
        log.error("dashboard refresh failed: %s", exc, exc_info=exc)
        self.status.setText("Could not update the dashboard (see the log)")
        for chart in (self.tier_chart, self.sla_chart, self.age_chart, self.plan_chart):
            chart.waiting_text("No figures yet: the dashboard could not be computed")
        self._running = None
        self._pending_full = True  # the snapshot it started from is gone
        if self._pending and not self._stopped:
            self._next()

    # ------------------------------------------------------------------ showing results

    def _show(self, result: live.LiveDashboard) -> None:
        self._running = None
        if self._stopped:
            result.close()
            return
        self._live = result
        d = result.dashboard
        # In steps, one per event-loop turn (the tiles, each chart, each table), each painted
        # before the next: all at once kept the GUI thread busy for one long turn.
        self._steps = [
            lambda: self._show_tiles(d),
            *self._chart_steps(d),
            *self._table_steps(d),
            lambda: self._shown(d),
        ]
        self._step()

    def _step(self) -> None:
        if self._steps:
            self._steps.pop(0)()
        if self._steps:
            self._stepper.start()

    def _shown(self, d: Dashboard) -> None:
        """Every widget shows ``d``: it is the dashboard now; the next refresh may start."""
        self.dashboard = d
        self.status.setText(f"Updated {to_local(d.at):%H:%M:%S}")
        self.refreshed.emit(d)
        self._next()

    def _show_tiles(self, d: Dashboard) -> None:
        sla = {c.filter.sla.value: c for c in d.sla if c.filter.sla is not None}
        t = self.tiles
        t["Open"].show_count(d.open.total if d.open else None)
        t["Untriaged"].show_count(d.untriaged)
        t["Unassigned"].show_count(d.unassigned)
        for name, key in (
            ("On track", "on_track"),
            ("At risk", "at_risk"),
            ("Breached", "breached"),
            ("Paused", "paused"),
        ):
            t[name].show_count(sla.get(key))
        t["Redirected"].show_count(d.redirected)
        clear = d.ageing.days_to_clear if d.ageing else None
        t["Days to clear"].show_count(
            d.open.total if d.open else None, "-" if clear is None else f"{clear:.1f}"
        )
        if d.ageing is not None:
            t["Days to clear"].setToolTip(
                f"Open tickets / the last 14 days' daily resolution rate "
                f"({d.ageing.resolved_last_14_days} resolved in 14 days)"
            )

    def _set_chart(
        self, chart: BarChart, counts: Iterable[Count], colours: list[QColor] | None = None
    ) -> None:
        items = list(counts)
        self._chart_filters[chart] = [c.filter for c in items]
        chart.set_data([c.label for c in items], [c.value for c in items], colours)

    def _chart_steps(self, d: Dashboard) -> list[Callable[[], None]]:
        steps: list[Callable[[], None]] = []
        if d.open is not None:
            opened = d.open
            steps.append(lambda: self._set_chart(self.tier_chart, opened.by_tier))
            steps.append(lambda: self._set_chart(self.plan_chart, opened.by_plan))
        if d.sla:
            colours = [
                QColor(_SLA_COLOURS[c.filter.sla.value]) for c in d.sla if c.filter.sla is not None
            ]
            steps.append(lambda: self._set_chart(self.sla_chart, d.sla, colours))
        if d.ageing is not None:
            buckets = d.ageing.buckets
            steps.append(lambda: self._set_chart(self.age_chart, buckets))
        return steps

    def _table_steps(self, d: Dashboard) -> list[Callable[[], None]]:
        """One step per table: each builds its rows and hands them to its model."""
        now = d.at

        def soon() -> None:
            self.soon.model.set_rows(
                [
                    _row(
                        (r.subject, r.filter),
                        (r.organisation, None),
                        (r.urgency, r.filter),
                        (r.due.isoformat(), r.filter, _when(r.due)),
                        (
                            round(r.business_left.total_seconds() / 60),
                            r.filter,
                            _duration(r.business_left),
                        ),
                    )
                    for r in d.breaching_soon
                ]
            )

        def response() -> None:
            if d.first_response is None:
                return
            fr = d.first_response
            groups = [fr.team, *fr.by_tier, *fr.by_plan, *fr.by_agent]
            self.response.model.set_rows([_response_row(g) for g in groups])
            self.response.note.setText(
                f"First responses from {_when(fr.start)} to {_when(fr.end)}; business time, "
                "nearest-rank percentiles"
            )

        def load() -> None:
            self.load.model.set_rows(
                [
                    _row(
                        (a.name, a.open.filter),
                        (a.open.value, a.open.filter),
                        (_age(a.open.oldest, now), a.open.filter),
                        (a.at_risk.value, a.at_risk.filter),
                        (a.breached.value, a.breached.filter),
                    )
                    for a in d.load
                ]
            )

        def health() -> None:
            counts: list[Count] = []
            if d.open is not None:
                counts += [*d.open.by_level]
            counts += [c for c in (d.unassigned, d.untriaged, d.redirected) if c is not None]
            self.levels.model.set_rows(
                [
                    _row((c.label, c.filter), (c.value, c.filter), (_age(c.oldest, now), c.filter))
                    for c in counts
                ]
            )

        def allowance() -> None:
            self.allowance.model.set_rows(
                [
                    _row(
                        (r.name, r.filter),
                        (r.plan, None),
                        (r.used, r.filter),
                        (r.allowance, None),
                        ("over" if r.over else "near", None),
                    )
                    for r in d.allowances
                ]
            )

        def hours() -> None:
            self.hours.model.set_rows(
                [
                    _row(
                        (r.name, r.filter),
                        (round(r.prepaid_left_minutes / 60, 1), None),
                        (round(sum(m for _, m in r.expiring) / 60, 1), None),
                        ("; ".join(f"{t:%Y-%m-%d}: {m / 60:.1f} h" for t, m in r.expiring), None),
                    )
                    for r in d.one_on_one
                ]
            )

        def weekly() -> None:
            headers = ["Organisation", *(f"Week of {w:%d %b}" for w in d.weeks)]
            if headers != self.weekly.model.headers:
                self.weekly.model.headers = headers
                self.weekly.model.headerDataChanged.emit(
                    Qt.Orientation.Horizontal, 0, max(len(headers) - 1, 0)
                )
            self.weekly.model.set_rows(
                [
                    _row(
                        (r.name, r.filter), *((round(m / 60, 1), None) for _, m in r.weekly_billed)
                    )
                    for r in d.one_on_one
                ]
            )

        # The table on show first: the others are not painted until their tab is opened.
        steps = {
            self.soon: soon,
            self.response: response,
            self.load: load,
            self.levels: health,
            self.allowance: allowance,
            self.hours: hours,
            self.weekly: weekly,
        }
        current = self.tabs.currentWidget()
        return [step for table, step in steps.items() if table is current] + [
            step for table, step in steps.items() if table is not current
        ]

    # ------------------------------------------------------------------ click-through

    def _tile_clicked(self, tile: _Tile) -> None:
        if tile.figure is not None:
            self.filterRequested.emit(tile.figure.filter)

    def _bar_clicked(self, chart: BarChart, index: int) -> None:
        found = self._chart_filters.get(chart, [])
        if 0 <= index < len(found):
            self.filterRequested.emit(found[index])


def _row(*cells: tuple[Any, ...]) -> FigureRow:
    """``(value, filter)`` or ``(value, filter, text)`` per cell."""
    values: list[Cell] = []
    texts: list[str] = []
    filters: list[TicketFilter | None] = []
    for cell in cells:
        value, flt = cell[0], cell[1]
        text = (
            cell[2] if len(cell) > 2 else (f"{value:,}" if isinstance(value, int) else str(value))
        )
        values.append(value)
        texts.append(text)
        filters.append(flt)
    return FigureRow(tuple(values), tuple(texts), tuple(filters))


def _response_row(g: figures.ResponseStats) -> FigureRow:
    share = g.met_share
    met = replace(g.filter, met=True, label=f"{g.filter.label}, target met")
    return _row(
        (g.label, g.filter),
        (g.responded, g.filter),
        (_duration(g.median), None),
        (_duration(g.p90), None),
        (g.met, met),
        ("-" if share is None else f"{share:.0%}", None),
    )
