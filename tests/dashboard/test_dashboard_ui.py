"""The dashboard in the real main window, attached to a lead's desk on a real embedded server:
figures as computed by the read side, click-through to exactly the rows behind a figure, a live
pull moving a ticket between SLA buckets without a reload, CSV export, layout in QSettings, and
no dashboard for agents."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, QPoint, QSettings, Qt
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agentdesk.models import Ticket
from agentdesk.queries import dashboard as figures
from agentdesk.queries.dashboard import SlaBucket, TicketFilter
from agentdesk.sync import admin as api
from agentdesk.ui.dashboard import DashboardView
from agentdesk.ui.dashboard.charts import BarChart
from agentdesk.ui.dashboard.tables import FIT_ROWS, FigureRow, FigureTable
from agentdesk.ui.shell.main_window import MainWindow, Workspace
from tests.dashboard.conftest import LeadDesk, desk_for
from tests.ui.shell_fixtures import shell_settings, sync_threads

__all__ = ["shell_settings"]


def open_window(qtbot: QtBot, store: QSettings, desk: LeadDesk) -> MainWindow:
    window = MainWindow(store)
    qtbot.addWidget(window)
    window.resize(1500, 950)
    window.show()
    qtbot.waitExposed(window)
    window.attach(
        Workspace(
            replica=desk.replica,
            client=desk.client,
            engine=desk.engine,
            user=desk.user,
            server_label="test",
            token_key=desk.server.url,
        )
    )
    return window


@pytest.fixture
def lead_window(
    qtbot: QtBot, shell_settings: QSettings, lead_desk: LeadDesk
) -> Iterator[MainWindow]:
    window = open_window(qtbot, shell_settings, lead_desk)
    view = window.dashboard_view
    assert view is not None
    window.dashboard_actions[0].trigger()  # View > Dashboard
    assert window.stack.currentWidget() is view
    qtbot.waitUntil(lambda: view.dashboard is not None, timeout=20_000)
    yield window
    window.detach()
    assert not sync_threads()


def listed_ids(qtbot: QtBot, window: MainWindow) -> set[uuid.UUID]:
    model = window.queue_model
    assert model is not None
    qtbot.waitUntil(lambda: not model.is_loading(), timeout=10_000)
    return {tid for r in range(model.rowCount()) if (tid := model.ticket_id(r)) is not None}


def ids_of(desk: LeadDesk, flt: TicketFilter) -> set[uuid.UUID]:
    with desk.replica.session() as s:
        return set(s.scalars(select(Ticket.id).where(*flt.clauses())))


def test_dashboard_shows_the_read_sides_figures(
    qtbot: QtBot,
    qtmodeltester: object,
    lead_window: MainWindow,
    lead_desk: LeadDesk,
) -> None:
    view = lead_window.dashboard_view
    assert view is not None
    d = view.dashboard
    assert d is not None
    with lead_desk.replica.session() as s:
        assert figures.compute(s, d.at, d.start, d.end) == d
    assert d.open is not None
    assert view.tiles["Open"].text() == f"Open\n{d.open.total.value:,}"
    sla = {c.filter.sla: c.value for c in d.sla}
    assert view.tiles["Breached"].text() == f"Breached\n{sla[SlaBucket.BREACHED]:,}"
    assert view.tier_chart.values() == [c.value for c in d.open.by_tier]
    assert [b.text() for b in view.tier_chart.buttons()] == [
        f"{c.label}: {c.value:,}" for c in d.open.by_tier
    ]
    assert view.load.model.rowCount() == len(d.load)
    assert view.soon.model.rowCount() == len(d.breaching_soon)
    for table in view.tables:
        qtmodeltester.check(table.model)  # type: ignore[attr-defined]


def click_bar(qtbot: QtBot, chart: BarChart, index: int) -> None:
    """A real mouse click in the middle of the bar."""
    point = chart.plot.mapFromScene(chart.bar_scene_pos(index))
    qtbot.mouseClick(chart.plot.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(point))


def test_click_through_opens_exactly_the_rows_behind_a_figure(
    qtbot: QtBot,
    lead_window: MainWindow,
    lead_desk: LeadDesk,
) -> None:
    view = lead_window.dashboard_view
    assert view is not None
    assert view.dashboard is not None
    assert view.dashboard.open is not None
    queue = lead_window.queue_view
    assert queue is not None
    d = view.dashboard
    # A bar of the tier chart, clicked with the mouse.
    assert d.open is not None
    tiers = d.open.by_tier
    index = max(range(len(tiers)), key=lambda i: tiers[i].value)
    click_bar(qtbot, view.tier_chart, index)
    assert lead_window.stack.currentWidget() is lead_window.main_splitter
    expected = ids_of(lead_desk, tiers[index].filter)
    assert len(expected) == tiers[index].value > 0
    assert listed_ids(qtbot, lead_window) == expected
    label, remove = queue.scope_bar()
    assert label.isVisible()
    assert tiers[index].filter.label in label.text()
    # Removing the filter lists the whole view again.
    qtbot.mouseClick(remove, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not label.isVisible())
    assert len(listed_ids(qtbot, lead_window)) == d.open.total.value
    # A headline number that is not an open-ticket figure: redirected requests.
    lead_window.dashboard_actions[0].trigger()
    assert d.redirected is not None
    assert d.redirected.value > 0
    qtbot.mouseClick(view.tiles["Redirected"], Qt.MouseButton.LeftButton)
    assert listed_ids(qtbot, lead_window) == ids_of(lead_desk, d.redirected.filter)
    # A table cell: an agent's at-risk or open tickets.
    lead_window.dashboard_actions[0].trigger()
    view.tabs.setCurrentWidget(view.load)
    agent = max(d.load, key=lambda a: a.open.value)
    row = next(i for i, a in enumerate(d.load) if a == agent)
    index_ = view.load.model.index(row, 1)
    rect = view.load.view.visualRect(index_)
    qtbot.mouseClick(view.load.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert listed_ids(qtbot, lead_window) == ids_of(lead_desk, agent.open.filter)
    assert len(ids_of(lead_desk, agent.open.filter)) == agent.open.value


def sla_ticket(view: DashboardView, desk: LeadDesk) -> tuple[uuid.UUID, uuid.UUID]:
    """The oldest ticket the SLA figures count (on track, at risk or breached), and its
    organisation. Which bucket it is in depends on the hour the demo was generated at (early
    on a Monday in New York the demo has none on track), so the test puts it where it needs it."""
    d = view.dashboard
    assert d is not None
    counted = [c for c in d.sla if c.filter.sla is not SlaBucket.PAUSED]
    rows = []
    with desk.replica.session() as s:
        for bucket in counted:
            row = s.execute(
                select(Ticket.arrived_at, Ticket.id, Ticket.organisation_id)
                .where(*bucket.filter.clauses())
                .order_by(Ticket.arrived_at)
                .limit(1)
            ).first()
            if row is not None:
                rows.append(row)
    assert rows, "the demo has tickets with a response due"
    _, ticket, org = min(rows)
    return ticket, org


def bucket_of(view: DashboardView, desk: LeadDesk, ticket: uuid.UUID) -> SlaBucket | None:
    """The ticket's bucket once the dashboard shows what the replica holds (None before)."""
    d = view.dashboard
    assert d is not None
    with desk.replica.session() as s, s.begin():  # one snapshot: a pull may land meanwhile
        if figures.compute(s, d.at, d.start, d.end) != d:
            return None  # pulled, not yet counted
        return next(
            (
                c.filter.sla
                for c in d.sla
                if ticket in set(s.scalars(select(Ticket.id).where(*c.filter.clauses())))
            ),
            None,
        )


def put_on_plan(desk: LeadDesk, org: uuid.UUID, key: str, minutes: int) -> None:
    """A round-the-clock plan promising a first response within ``minutes``, for ``org``
    (through the REST API, as the admin screens do)."""
    client = desk.client
    calendars = client.request("GET", "/api/v1/calendars").json()
    always = next(
        c["id"]
        for c in calendars
        if c["tz"] == "UTC" and sum(bool(v) for v in c["hours"].values()) == 7
    )
    plan = client.request(
        "POST",
        "/api/v1/plans",
        json={
            "key": key,
            "name": key.title(),
            "rank": 9,
            "channels": ["portal"],
            "calendar_id": always,
            "response_targets": {str(k): {"minutes": minutes} for k in (1, 2, 3, 4)},
        },
    )
    assert plan.status_code == 201, plan.text
    moved_org = client.request(
        "PATCH", f"/api/v1/organisations/{org}", json={"plan_id": plan.json()["id"]}
    )
    assert moved_org.status_code == 200, moved_org.text


def test_a_pull_that_breaches_a_ticket_moves_it_between_sla_buckets_without_a_reload(
    qtbot: QtBot,
    lead_window: MainWindow,
    lead_desk: LeadDesk,
) -> None:
    """The lead puts an organisation on a plan with a generous target, then on one promising a
    first response within a minute: each time the server recomputes its open tickets' instants,
    the desk's sync loop pulls them, and the dashboard moves the ticket from its bucket to on
    track, then to breached, in place."""
    view = lead_window.dashboard_view
    assert view is not None
    assert view.dashboard is not None
    resets: list[str] = []
    for table in view.tables:
        table.model.modelReset.connect(lambda t=table.title: resets.append(t))
    ticket, org = sla_ticket(view, lead_desk)

    put_on_plan(lead_desk, org, "relaxed", 1_000_000)

    def relaxed() -> bool:
        """The relaxed plan's due instant (years away) pulled, and the dashboard showing it:
        the ticket may have been on track before, so its bucket alone does not say so."""
        with lead_desk.replica.session() as s:
            due = s.scalar(select(Ticket.sla_due_at).where(Ticket.id == ticket))
        far = datetime.now(UTC) + timedelta(days=365)
        return (
            due is not None
            and due > far
            and bucket_of(view, lead_desk, ticket) is (SlaBucket.ON_TRACK)
        )

    qtbot.waitUntil(relaxed, timeout=20_000)
    assert view.dashboard is not None
    before = {c.filter.sla: c.value for c in view.dashboard.sla}

    put_on_plan(lead_desk, org, "urgent", 1)
    qtbot.waitUntil(
        lambda: bucket_of(view, lead_desk, ticket) is SlaBucket.BREACHED, timeout=20_000
    )
    d = view.dashboard
    assert d is not None
    now = {c.filter.sla: c.value for c in d.sla}
    assert now[SlaBucket.ON_TRACK] < before[SlaBucket.ON_TRACK]
    assert now[SlaBucket.BREACHED] > before[SlaBucket.BREACHED]
    assert view.sla_chart.values() == [c.value for c in d.sla]
    assert view.tiles["Breached"].text() == f"Breached\n{now[SlaBucket.BREACHED]:,}"
    with lead_desk.replica.session() as s:
        assert figures.compute(s, d.at, d.start, d.end) == d
    assert resets == []


def test_a_pull_of_changed_tickets_moves_the_figures_without_recomputing(
    qtbot: QtBot,
    lead_window: MainWindow,
    lead_desk: LeadDesk,
    tmp_path: Path,
) -> None:
    """The coordinator, on another desktop, assigns an unassigned ticket to an agent: the lead's
    sync loop pulls it, the view hands the ticket's id to the incremental refresh, and the
    figures move by that one ticket (unassigned down one, the agent's load up one) to exactly
    what a full computation gives."""
    view = lead_window.dashboard_view
    assert view is not None
    assert view.dashboard is not None
    before = view.dashboard
    assert before.unassigned is not None
    with lead_desk.replica.session() as s:
        ticket = s.scalar(
            select(Ticket.id)
            .where(*before.unassigned.filter.clauses())
            .order_by(Ticket.id)
            .limit(1)
        )
    assert ticket is not None
    coordinator = desk_for(lead_desk.server, tmp_path, "coordinator", lead_desk.database)
    try:
        agent = next(
            uuid.UUID(u["id"])
            for u in api.list_users(coordinator.client)
            if u["username"] == "agent2"
        )
        coordinator.replica.mutate(
            "assign_ticket",
            {"ticket_id": str(ticket), "assignee_id": str(agent), "expected_assignee_id": None},
        )
        coordinator.sync()
        assert coordinator.replica.pending_count() == 0
    finally:
        coordinator.client.close()
        coordinator.replica.close()

    def unassigned() -> int:
        d = view.dashboard
        assert d is not None
        assert d.unassigned is not None
        return d.unassigned.value

    was = before.unassigned.value
    qtbot.waitUntil(lambda: unassigned() == was - 1, timeout=20_000)
    qtbot.waitUntil(lambda: view._running is None or view._running.done, timeout=20_000)
    assert view._live is not None
    assert view._live.moved
    d = view.dashboard
    assert d is not None
    load = {a.user_id: a.open.value for a in d.load}
    loaded = {a.user_id: a.open.value for a in before.load}
    assert load[agent] == loaded.get(agent, 0) + 1
    with lead_desk.replica.session() as s:
        assert figures.compute(s, d.at, d.start, d.end) == d


def test_tables_export_csv_through_the_dialog(
    qtbot: QtBot,
    lead_window: MainWindow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view = lead_window.dashboard_view
    assert view is not None
    target = tmp_path / "load.csv"
    monkeypatch.setattr(
        QFileDialog,
        "getSaveFileName",
        staticmethod(lambda *_a, **_k: (str(target), "CSV files (*.csv)")),
    )
    qtbot.mouseClick(view.load.export_button, Qt.MouseButton.LeftButton)
    with target.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == view.load.model.headers
    assert len(rows) == 1 + view.load.model.rowCount()
    first = view.load.model.rows()[0]
    assert rows[1][0] == first.values[0]
    assert rows[1][1] == str(first.values[1])


def test_range_and_layout_are_remembered_per_user(
    qtbot: QtBot,
    shell_settings: QSettings,
    lead_desk: LeadDesk,
) -> None:
    view = DashboardView(lead_desk.replica, shell_settings, username="lead")
    qtbot.addWidget(view)
    view.set_range("7 days")
    view.tabs.setCurrentIndex(3)
    view.save_layout()
    qtbot.waitUntil(lambda: view._running is None or view._running.done, timeout=20_000)
    again = DashboardView(lead_desk.replica, shell_settings, username="lead")
    qtbot.addWidget(again)
    assert again.range_box.currentText() == "7 days"
    assert again.tabs.currentIndex() == 3
    other = DashboardView(lead_desk.replica, shell_settings, username="coordinator")
    qtbot.addWidget(other)
    assert other.range_box.currentText() == "30 days"


def test_a_chart_waits_in_words_and_shows_its_plot_with_its_first_figures(
    qtbot: QtBot,
    shell_settings: QSettings,
    lead_desk: LeadDesk,
) -> None:
    """Empty plots are not painted with the window (their first paint was its longest stall):
    each chart says it is waiting until its figures come, then shows them."""
    view = DashboardView(lead_desk.replica, shell_settings, username="lead")
    qtbot.addWidget(view)
    charts = (view.tier_chart, view.sla_chart, view.age_chart, view.plan_chart)
    view.resize(1400, 900)
    view.show()
    # Asked for before the window's first paint, the computation starts after it (the paint
    # would otherwise wait on the interpreter lock for each cell's text while it runs).
    view.refresh()
    assert view._running is None
    qtbot.waitExposed(view)
    for chart in charts:
        assert chart.plot.isHidden()
        assert chart._waiting.isVisible()
    sizes = [(chart.width(), chart.height()) for chart in charts]
    with qtbot.waitSignal(view.refreshed, timeout=20_000):
        pass  # started by the first paint (waitExposed above), shown when refreshed
    for chart in charts:
        assert chart.plot.isVisible()
        assert not chart._waiting.isVisible()
        assert chart.values(), chart.objectName()
        # The first figures fit the room each chart had: none asked for more and made its
        # neighbours re-lay out and repaint (the first fill's longest stall).
        assert chart.minimumSizeHint().width() <= chart.width(), chart.objectName()
        assert all(b.isVisible() and b.width() >= b.sizeHint().width() for b in chart.buttons())
    assert [(chart.width(), chart.height()) for chart in charts] == sizes
    # Under the bars, the words before an explanation; the buttons keep the whole label.
    assert view.sla_chart.tick_labels() == ["On track", "At risk", "Breached", "Paused"]
    assert any(
        b.text().startswith("Paused (waiting on customer): ") for b in view.sla_chart.buttons()
    )
    assert view.dashboard is not None
    opened = view.dashboard.open
    assert opened is not None
    assert view.tier_chart.values() == [c.value for c in opened.by_tier]


def test_a_failed_computation_says_so_where_the_charts_would_be(
    qtbot: QtBot,
    shell_settings: QSettings,
    lead_desk: LeadDesk,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agentdesk.queries import dashboard_live

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the replica could not be read")

    monkeypatch.setattr(dashboard_live, "start", broken)
    view = DashboardView(lead_desk.replica, shell_settings, username="lead")
    qtbot.addWidget(view)
    with qtbot.captureExceptions(), qtbot.assertNotEmitted(view.refreshed, wait=0):
        view.refresh()
        qtbot.waitUntil(lambda: view.status.text().startswith("Could not"), timeout=10_000)
    assert view.tier_chart.plot.isHidden()
    assert "could not be computed" in view.tier_chart._waiting.text()


def test_agents_get_no_dashboard(
    qtbot: QtBot, shell_settings: QSettings, dash_template: Path, tmp_path: Path
) -> None:
    from tests.dashboard.conftest import lead_on

    with lead_on(dash_template, tmp_path) as lead:
        agent_dir = tmp_path / "agent"
        agent_dir.mkdir()
        desk = desk_for(lead.server, agent_dir, "agent", lead.database)
        try:
            window = open_window(qtbot, shell_settings, desk)
            assert window.dashboard_view is None
            assert window.stack.currentWidget() is window.main_splitter
            assert not any("Dashboard" in a.text() for a in window.view_menu.actions())
            window.detach()
        finally:
            desk.client.close()
            desk.replica.close()


def test_the_window_reopens_on_the_page_the_lead_left(
    qtbot: QtBot,
    shell_settings: QSettings,
    lead_desk: LeadDesk,
) -> None:
    window = open_window(qtbot, shell_settings, lead_desk)
    assert window.stack.currentWidget() is window.main_splitter  # first start: the queue
    window.dashboard_actions[0].trigger()
    window.detach()
    window.attach(
        Workspace(
            replica=lead_desk.replica,
            client=lead_desk.client,
            engine=lead_desk.engine,
            user=lead_desk.user,
            server_label="test",
            token_key=lead_desk.server.url,
        )
    )
    assert window.dashboard_view is not None
    assert window.stack.currentWidget() is window.dashboard_view
    window.dashboard_actions[1].trigger()  # View > Queue
    assert window.stack.currentWidget() is window.main_splitter
    window.detach()
    assert not sync_threads()


def test_fitting_a_long_tables_columns_reads_a_bounded_number_of_rows(qtbot: QtBot) -> None:
    """Fitting the columns asks the model for the cells it measures, each a call into Python on
    the GUI thread: Qt's default is 1,000 rows, and the first fill of a year's tables stalled
    the GUI thread ~190 ms. It now looks at the visible rows and FIT_ROWS more."""
    table = FigureTable("Organisations", ["Organisation", "Tickets"])
    qtbot.addWidget(table)
    table.resize(400, 300)
    table.show()
    asked: list[int] = []
    real = table.model.data

    def counted(index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        asked.append(index.row())
        return real(index, role)

    table.model.data = counted  # type: ignore[method-assign,assignment]
    table.model.set_rows(
        [
            FigureRow(
                values=(f"Org {i:04d}", i), texts=(f"Org {i:04d}", str(i)), filters=(None, None)
            )
            for i in range(2_000)
        ]
    )
    assert table.model.rowCount() == 2_000
    assert asked, "the columns were fitted"
    assert max(asked) < 100 + FIT_ROWS, "rows far below the screen were not measured"
