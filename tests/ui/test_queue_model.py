"""The queue model: Qt's model contract, seed 003's order, saved views, search, column sorts,
lazy rows, SLA cells, and incremental updates from a sync pull that never reset the model.

Expected values are computed independently from the generated rows with the policy functions
(``queue_key``, ``sla_status``), never by asking the model's own SQL.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import pytest
import shiboken6
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor, QPalette
from pytestqt.qtbot import QtBot
from sqlalchemy import Engine, Table, delete, event, insert, update

from agentdesk.models import Organisation, Ticket, TicketStatus, WaitingPeriod, new_id
from agentdesk.policy.calendar import BusinessCalendar
from agentdesk.policy.queue import queue_key as policy_queue_key
from agentdesk.policy.sla import SlaState, sla_status
from agentdesk.policy.workflow import OPEN_STATUSES
from agentdesk.ui import background
from agentdesk.ui.queue.model import (
    Column,
    QueueModel,
    SavedView,
    SlaStateRole,
    TicketIdRole,
)
from agentdesk.ui.sla_display import (
    SlaClock,
    SlaInputs,
    age_text,
    duration_text,
    is_dark,
    sla_colour,
    sla_text,
)
from tests.ui.queue_fixtures import OFFICE, QueueData, listed_ids, queue_db, ticket_row

TICKETS = cast(Table, Ticket.__table__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _app(qapp: Any) -> Any:
    """Timers and palettes need the application object."""
    return qapp


@pytest.fixture
def data(tmp_path: Path) -> QueueData:
    return queue_db(tmp_path, 400)


@pytest.fixture
def engine(data: QueueData) -> Iterator[Engine]:
    eng = data.engine()
    yield eng
    eng.dispose()


def rows_read(qtbot: QtBot, model: QueueModel, column: int = Column.SUBJECT) -> None:
    """Wait until every row shows its cells: an asynchronous model reads uncached rows on a
    worker, showing "…" meanwhile."""
    qtbot.waitUntil(
        lambda: all(model.index(r, column).data() != "…" for r in range(model.rowCount())),
        timeout=10_000,
    )


def make_model(engine: Engine, data: QueueData, **kwargs: Any) -> QueueModel:
    kwargs.setdefault("asynchronous", False)
    kwargs.setdefault("now", lambda: data.now)
    kwargs.setdefault("sla_clock", SlaClock(BusinessCalendar.from_dict(OFFICE)))
    return QueueModel(engine, **kwargs)


@pytest.fixture
def model(engine: Engine, data: QueueData) -> QueueModel:
    return make_model(engine, data)


ids = listed_ids


def open_tickets(data: QueueData) -> list[dict[str, Any]]:
    return [t for t in data.tickets if t["status"].value in OPEN_STATUSES and not t["deleted"]]


def expected_order(tickets: list[dict[str, Any]]) -> list[uuid.UUID]:
    return [
        t["id"]
        for t in sorted(
            tickets,
            key=lambda t: policy_queue_key(
                tier=t["tier"],
                stated_urgency=t["stated_urgency"],
                plan_rank=t["plan_rank"],
                arrival=t["arrived_at"],
                ticket_id=str(t["id"]),
            ),
        )
    ]


def expected_state(data: QueueData, t: dict[str, Any], now: datetime) -> SlaState:
    plan, calendar = data.policy_plan(t["organisation_id"])
    pauses = [(w["started_at"], w["ended_at"]) for w in data.waits if w["ticket_id"] == t["id"]]
    return sla_status(
        t["arrived_at"],
        t["urgency"],
        plan,
        calendar,
        now,
        first_response=t["first_response_at"],
        paused=pauses,
    ).state


def db_expected(engine: Engine) -> list[uuid.UUID]:
    """The queue order of what the replica holds now, by the policy's key."""
    with engine.connect() as conn:
        rows = [t._asdict() for t in conn.execute(TICKETS.select())]
    return expected_order(
        [t for t in rows if t["status"].value in OPEN_STATUSES and not t["deleted"]]
    )


def set_ticket(engine: Engine, ticket_id: uuid.UUID, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(TICKETS).where(TICKETS.c.id == ticket_id).values(**values))


class Signals:
    """Records the structural signals of a model; a reset fails the test at once."""

    def __init__(self, model: QueueModel) -> None:
        self.events: list[tuple[str, int, int]] = []
        self.changed_rows: set[int] = set()
        model.modelAboutToBeReset.connect(self._reset)
        model.rowsInserted.connect(lambda _p, a, b: self.events.append(("inserted", a, b)))
        model.rowsRemoved.connect(lambda _p, a, b: self.events.append(("removed", a, b)))
        model.rowsMoved.connect(lambda _p, a, _b, _d, dest: self.events.append(("moved", a, dest)))
        model.layoutChanged.connect(lambda *_: self.events.append(("layout", -1, -1)))
        model.dataChanged.connect(self._data_changed)

    def _reset(self) -> None:
        raise AssertionError("the model was reset")

    def _data_changed(self, top: QModelIndex, bottom: QModelIndex, _roles: Any = None) -> None:
        self.changed_rows.update(range(top.row(), bottom.row() + 1))

    def structural(self) -> list[tuple[str, int, int]]:
        return [e for e in self.events if e[0] != "layout"]


# ------------------------------------------------------------------------------ the contract


@pytest.mark.parametrize("force_py", [False, True], ids=["cpp-tester", "py-tester"])
def test_model_passes_qtmodeltester_through_every_kind_of_change(
    qtmodeltester: Any, engine: Engine, data: QueueData, force_py: bool
) -> None:
    model = make_model(engine, data)
    qtmodeltester.check(model, force_py=force_py)
    listed = ids(model)
    # Moves both ways, an insert, removals, a data-only change: each checked by the tester.
    set_ticket(engine, listed[-1], urgency=1, tier=1)
    set_ticket(engine, listed[0], urgency=4, tier=4)
    set_ticket(engine, listed[5], status=TicketStatus.RESOLVED)
    set_ticket(engine, listed[7], subject="Renamed")
    new = ticket_row(data, stated_urgency=2)
    with engine.begin() as conn:
        conn.execute(insert(TICKETS), [new])
    model.apply_changes({listed[-1], listed[0], listed[5], listed[7], new["id"]})
    model.set_search("slow")
    model.set_search("")
    model.sort(Column.SUBJECT, Qt.SortOrder.DescendingOrder)
    set_ticket(engine, listed[10], subject="aaa first of all")
    model.apply_changes({listed[10]})
    model.sort(-1)
    model.set_view(SavedView.UNASSIGNED)
    model.set_view(SavedView.BREACHED)
    model.refresh()
    assert model.rowCount() > 0


# ------------------------------------------------------------------------------ order and views


def test_default_order_is_the_policy_queue_order(model: QueueModel, data: QueueData) -> None:
    expected = expected_order(open_tickets(data))
    assert len(expected) > 300
    assert ids(model) == expected
    # An exact arrival tie exists in the fixture and is broken by the id.
    arrivals = [t["arrived_at"] for t in open_tickets(data)]
    assert len(arrivals) > len(set(arrivals))


@pytest.mark.parametrize("view", [v for v in SavedView if v is not SavedView.RECENT])
def test_saved_views_list_exactly_their_tickets(
    engine: Engine, data: QueueData, view: SavedView
) -> None:
    """(Recent needs ticket histories, which this fixture has not: see
    tests/ui/test_agent_day.py.)"""
    me = data.user_ids[0]
    model = make_model(engine, data, view=view, user_id=me)
    candidates = open_tickets(data)
    if view in (SavedView.EVERY, SavedView.RESOLVED, SavedView.CLOSED, SavedView.REDIRECTED):
        candidates = [t for t in data.tickets if not t["deleted"]]
    wanted: Callable[[dict[str, Any]], bool] = {
        SavedView.EVERY: lambda t: True,
        SavedView.RESOLVED: lambda t: t["status"] is TicketStatus.RESOLVED,
        SavedView.CLOSED: lambda t: t["status"] is TicketStatus.CLOSED,
        SavedView.REDIRECTED: lambda t: t["status"] is TicketStatus.REDIRECTED,
        SavedView.ALL_OPEN: lambda t: True,
        SavedView.MY_TICKETS: lambda t: t["assignee_id"] == me,
        SavedView.UNASSIGNED: lambda t: t["assignee_id"] is None,
        SavedView.TRIAGE: lambda t: t["status"] is TicketStatus.NEW,
        SavedView.WAITING: lambda t: t["status"] is TicketStatus.WAITING_ON_CUSTOMER,
        SavedView.AT_RISK: lambda t: expected_state(data, t, data.now) is SlaState.AT_RISK,
        SavedView.BREACHED: lambda t: expected_state(data, t, data.now) is SlaState.BREACHED,
    }[view]
    expected = expected_order([t for t in candidates if wanted(t)])
    assert expected, f"the fixture should have {view} tickets"
    assert ids(model) == expected
    if view in (SavedView.AT_RISK, SavedView.BREACHED):
        state = SlaState.AT_RISK if view is SavedView.AT_RISK else SlaState.BREACHED
        assert all(model.index(r, 0).data(SlaStateRole) == state for r in range(model.rowCount()))


def test_my_tickets_without_a_user_is_empty(engine: Engine, data: QueueData) -> None:
    assert make_model(engine, data, view=SavedView.MY_TICKETS).rowCount() == 0


def test_search_matches_every_word_somewhere_case_insensitively(
    model: QueueModel, data: QueueData
) -> None:
    org = data.org_ids[3]
    org_name = data.org_names[org]
    model.set_search(f"  {org_name.split()[1].upper()}   ")  # "Org 0003 ..." -> "0003"
    assert ids(model) == expected_order(
        [t for t in open_tickets(data) if "0003" in data.org_names[t["organisation_id"]]]
    )
    model.set_search("slow")
    slow = [t for t in open_tickets(data) if "slow" in t["subject"].lower()]
    assert slow
    assert ids(model) == expected_order(slow)
    model.set_search("slow 0003")
    both = [t for t in slow if "0003" in data.org_names[t["organisation_id"]]]
    assert ids(model) == expected_order(both)
    model.set_search("Agent1")  # assignee display names: "... Agent1", "... Agent10", ...
    assert model.rowCount() > 0
    model.set_search("")
    assert ids(model) == expected_order(open_tickets(data))


def test_search_wildcards_are_literal(model: QueueModel, engine: Engine, data: QueueData) -> None:
    listed = ids(model)
    set_ticket(engine, listed[3], subject="Discount 100% off_now")
    model.apply_changes({listed[3]})
    model.set_search("100%")
    assert ids(model) == [listed[3]]
    model.set_search("f_n")
    assert ids(model) == [listed[3]]
    model.set_search("%")
    assert ids(model) == [listed[3]]


def _sort_values(model: QueueModel, column: Column) -> list[Any]:
    return [model.index(r, column).data() for r in range(model.rowCount())]


@pytest.mark.parametrize("column", [c for c in Column if c is not Column.TIER])
def test_column_sorts_are_ordered_with_queue_order_among_ties(
    model: QueueModel, data: QueueData, column: Column
) -> None:
    queue = ids(model)
    rank = {tid: i for i, tid in enumerate(queue)}
    by_id = {t["id"]: t for t in data.tickets}
    model.sort(column, Qt.SortOrder.AscendingOrder)
    ascending = ids(model)
    assert sorted(ascending, key=rank.__getitem__) == queue  # same rows

    def value(tid: uuid.UUID) -> Any:
        t = by_id[tid]
        if column is Column.SLA:
            row = model.row_of(tid)
            assert row is not None
            state = model.index(row, 0).data(SlaStateRole)
            return 1 if state in (SlaState.MET, SlaState.MET_LATE) else 0
        by_column: dict[Column, Callable[[], Any]] = {
            Column.PLAN: lambda: {"basic": 0, "standard": 1, "premium": 2, "enterprise": 3}[
                data.org_plan[t["organisation_id"]]
            ],
            Column.ORGANISATION: lambda: data.org_names[t["organisation_id"]].casefold(),
            Column.REQUESTER: lambda: (
                model.index(model.row_of(tid) or 0, column)
                .data()[2:]
                .removesuffix(" (not validated)")
                .casefold()
            ),
            Column.SUBJECT: lambda: t["subject"].casefold(),
            Column.CHANNEL: lambda: t["channel"],
            Column.LEVEL: lambda: t["level"].value,
            Column.STATUS: lambda: list(TicketStatus).index(t["status"]),
            Column.ASSIGNEE: lambda: (
                t["assignee_id"] is None,
                (
                    model.index(model.row_of(tid) or 0, column).data() if t["assignee_id"] else ""
                ).casefold(),
            ),
            Column.AGE: lambda: -(t["arrived_at"] - EPOCH) // timedelta(microseconds=1),
        }
        return by_column[column]()

    values = [value(tid) for tid in ascending]
    assert values == sorted(values)
    # Among equal values the queue order holds.
    for a, b in itertools.pairwise(ascending):
        if value(a) == value(b) and column is not Column.SLA:
            assert rank[a] < rank[b]
    model.sort(column, Qt.SortOrder.DescendingOrder)
    assert ids(model) == ascending[::-1]
    model.reset_order()
    assert ids(model) == queue


def test_sort_change_keeps_the_selection_on_its_ticket(model: QueueModel) -> None:
    from PySide6.QtCore import QItemSelectionModel

    selection = QItemSelectionModel(model)
    target = model.ticket_id(17)
    selection.setCurrentIndex(model.index(17, 3), QItemSelectionModel.SelectionFlag.Select)
    model.sort(Column.SUBJECT, Qt.SortOrder.AscendingOrder)
    current = selection.currentIndex()
    assert current.isValid()
    assert model.ticket_id(current.row()) == target
    assert current.column() == 3


# ------------------------------------------------------------------------------ sync pulls


def test_a_data_only_change_emits_data_changed_for_that_row_only(
    model: QueueModel, engine: Engine
) -> None:
    listed = ids(model)
    model.data(model.index(30, Column.SUBJECT))  # cached before the change
    signals = Signals(model)
    set_ticket(engine, listed[30], subject="Checkout fails on Safari")
    model.apply_changes({listed[30]})
    assert signals.structural() == []
    assert signals.changed_rows == {30}
    assert model.index(30, Column.SUBJECT).data() == "Checkout fails on Safari"
    assert ids(model) == listed


def test_a_retriaged_ticket_moves_to_its_new_place(
    model: QueueModel, engine: Engine, data: QueueData
) -> None:
    listed = ids(model)
    moving = listed[-1]
    signals = Signals(model)
    set_ticket(engine, moving, tier=1, urgency=1)
    model.apply_changes({moving})
    expected = db_expected(engine)
    assert ids(model) == expected
    new_row = expected.index(moving)
    assert new_row < len(listed) - 1
    assert signals.structural() == [("moved", len(listed) - 1, new_row)]
    assert new_row in signals.changed_rows
    assert model.index(new_row, Column.TIER).data() == "T1"


def test_inserts_and_removals_land_in_the_right_rows(
    model: QueueModel, engine: Engine, data: QueueData
) -> None:
    listed = ids(model)
    signals = Signals(model)
    new = ticket_row(
        data, tier=1, organisation_id=data.org_ids[3], arrived_at=data.now - timedelta(days=30)
    )
    closing = listed[12]
    with engine.begin() as conn:
        conn.execute(insert(TICKETS), [new])
    set_ticket(engine, closing, status=TicketStatus.RESOLVED)
    untouched = listed[40]  # named in the pull without a change: no structural signal
    model.apply_changes({new["id"], closing, untouched})
    assert ids(model) == db_expected(engine)
    assert closing not in ids(model)
    assert new["id"] in ids(model)
    kinds = sorted(e[0] for e in signals.structural())
    assert kinds == ["inserted", "removed"]
    removed = next(e for e in signals.events if e[0] == "removed")
    assert removed[1:] == (12, 12)
    inserted = next(e for e in signals.events if e[0] == "inserted")
    assert inserted[1] == inserted[2] == model.row_of(new["id"])


def test_leaving_and_joining_a_saved_view(engine: Engine, data: QueueData) -> None:
    model = make_model(engine, data, view=SavedView.UNASSIGNED)
    listed = ids(model)
    signals = Signals(model)
    set_ticket(engine, listed[2], assignee_id=data.user_ids[1])  # taken: leaves Unassigned
    outside = next(t for t in open_tickets(data) if t["assignee_id"] is not None)
    set_ticket(engine, outside["id"], assignee_id=None)  # released: joins
    model.apply_changes({listed[2], outside["id"]})
    assert listed[2] not in ids(model)
    assert outside["id"] in ids(model)
    assert sorted(e[0] for e in signals.structural()) == ["inserted", "removed"]


def test_tombstones_and_vanished_rows_are_removed(model: QueueModel, engine: Engine) -> None:
    listed = ids(model)
    signals = Signals(model)
    set_ticket(engine, listed[0], deleted=True)
    with engine.begin() as conn:
        conn.execute(delete(TICKETS).where(TICKETS.c.id == listed[1]))
    model.apply_changes({listed[0], listed[1]})
    assert ids(model) == listed[2:]
    assert [e[0] for e in signals.structural()] == ["removed", "removed"]


def test_a_row_gone_before_the_pull_shows_a_placeholder_not_an_error(
    model: QueueModel, engine: Engine
) -> None:
    listed = ids(model)
    with engine.begin() as conn:
        conn.execute(delete(TICKETS).where(TICKETS.c.id == listed[250]))
    assert model.index(250, Column.SUBJECT).data() == "…"
    assert model.index(250, Column.SUBJECT).data(TicketIdRole) is None
    assert model.index(251, Column.SUBJECT).data() not in (None, "…")


def test_a_hundred_changes_in_one_pull_are_applied_without_a_reset(
    engine: Engine, data: QueueData
) -> None:
    model = make_model(engine, data)
    model.RESET_SHARE = Fraction(1)  # instance override: force the in-place path
    listed = ids(model)
    changed = listed[::4][:100]
    signals = Signals(model)
    with engine.begin() as conn:
        for i, tid in enumerate(changed):
            values: dict[str, Any] = {"subject": f"changed {i}"}
            if i % 3 == 0:
                values.update(tier=(i % 4) + 1, urgency=(i % 4) + 1)
            if i % 10 == 5:
                values["status"] = TicketStatus.CLOSED
            conn.execute(update(TICKETS).where(TICKETS.c.id == tid).values(**values))
    model.apply_changes(set(changed))
    reference = make_model(engine, data)
    assert ids(model) == ids(reference)
    assert signals.structural()
    for row in range(model.rowCount()):
        assert (
            model.index(row, Column.SUBJECT).data() == reference.index(row, Column.SUBJECT).data()
        )


def test_a_pull_that_changes_most_rows_requeries_instead(
    model: QueueModel, engine: Engine, data: QueueData
) -> None:
    listed = ids(model)
    with engine.begin() as conn:
        conn.execute(update(TICKETS).values(subject="Bulk renamed"))
    model.apply_changes(set(listed))
    assert ids(model) == listed
    assert {model.index(r, Column.SUBJECT).data() for r in range(model.rowCount())} == {
        "Bulk renamed"
    }


def test_updates_keep_working_in_a_descending_column_sort(
    model: QueueModel, engine: Engine, data: QueueData
) -> None:
    model.sort(Column.SUBJECT, Qt.SortOrder.DescendingOrder)
    listed = ids(model)
    signals = Signals(model)
    set_ticket(engine, listed[0], subject="zzzz last alphabetically")  # stays first
    set_ticket(engine, listed[5], subject="aaaa first alphabetically")  # moves to the end
    new = ticket_row(data, subject="mmmm")
    with engine.begin() as conn:
        conn.execute(insert(TICKETS), [new])
    model.apply_changes({listed[0], listed[5], new["id"]})
    subjects = [model.index(r, Column.SUBJECT).data().casefold() for r in range(model.rowCount())]
    assert subjects == sorted(subjects, reverse=True)
    assert model.ticket_id(model.rowCount() - 1) == listed[5]
    assert ("moved", 5, model.rowCount() - 1) in signals.events  # before the insert


def test_waiting_periods_changes_reach_the_sla_cell(
    model: QueueModel, engine: Engine, data: QueueData
) -> None:
    row = next(
        r
        for r in range(model.rowCount())
        if model.index(r, 0).data(SlaStateRole) == SlaState.BREACHED
        and "⏸" not in model.index(r, Column.SLA).data()
    )
    tid = model.ticket_id(row)
    assert tid is not None
    with engine.begin() as conn:
        conn.execute(
            insert(WaitingPeriod),
            [
                {
                    "id": new_id(),
                    "tenant_id": data.tenant_id,
                    "version": 3,
                    "deleted": False,
                    "ticket_id": tid,
                    "started_at": data.now - timedelta(days=25),
                    "ended_at": None,
                }
            ],
        )
    model.apply_changes({tid})
    paused_row = model.row_of(tid)
    assert paused_row is not None
    assert model.index(paused_row, Column.SLA).data().startswith("⏸")


def test_a_pull_is_read_and_planned_off_the_gui_thread(
    qtbot: QtBot, engine: Engine, data: QueueData
) -> None:
    model = make_model(engine, data, asynchronous=True)
    with qtbot.waitSignal(model.queryApplied, timeout=10_000):
        pass
    listed = ids(model)
    threads: list[int] = []
    event.listen(engine, "before_cursor_execute", lambda *_a: threads.append(threading.get_ident()))
    model.data(model.index(3, Column.SUBJECT))  # cached before the change
    set_ticket(engine, listed[-1], tier=1, urgency=1)
    set_ticket(engine, listed[3], subject="Renamed off the GUI thread")
    threads.clear()
    with qtbot.waitSignal(model.changesApplied, timeout=10_000):
        model.apply_changes({listed[-1], listed[3]})
        assert ids(model) == listed  # nothing applied before the worker's answer
    assert threads
    assert threading.get_ident() not in threads
    assert ids(model) == db_expected(engine)
    row = model.row_of(listed[3])
    assert row is not None
    threads.clear()
    assert model.index(row, Column.SUBJECT).data() == "Renamed off the GUI thread"
    assert threads == []  # the worker's read filled the row cache


def test_many_moved_rows_are_one_layout_change_that_keeps_the_selection(
    qtmodeltester: Any, engine: Engine, data: QueueData
) -> None:
    from PySide6.QtCore import QItemSelectionModel

    model = make_model(engine, data)
    model.SMALL_CHANGE = 5  # instance override: 12 moves count as many
    qtmodeltester.check(model)
    listed = ids(model)
    selection = QItemSelectionModel(model)
    selected = listed[-3]
    selection.setCurrentIndex(
        model.index(len(listed) - 3, 2), QItemSelectionModel.SelectionFlag.Select
    )
    signals = Signals(model)
    moving = listed[-12:]
    for tid in moving:
        set_ticket(engine, tid, tier=1, urgency=1)
    set_ticket(engine, listed[4], status=TicketStatus.RESOLVED)
    new = ticket_row(data, stated_urgency=4)
    with engine.begin() as conn:
        conn.execute(insert(TICKETS), [new])
    model.apply_changes({*moving, listed[4], new["id"]})
    assert ids(model) == db_expected(engine)
    assert [e[0] for e in signals.structural()] == ["removed", "inserted"]
    assert signals.events[-1] == ("layout", -1, -1)
    current = selection.currentIndex()
    assert model.ticket_id(current.row()) == selected
    assert current.column() == 2
    assert model.index(model.row_of(moving[0]) or 0, Column.TIER).data() == "T1"


def test_changes_during_a_query_in_flight_are_not_lost(
    qtbot: QtBot, engine: Engine, data: QueueData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker reads the list, then a pull changes a ticket before the list is applied:
    the change must be re-applied on top of the (older) list."""
    import agentdesk.ui.queue.model as qm

    model = make_model(engine, data, asynchronous=True)
    with qtbot.waitSignal(model.queryApplied, timeout=10_000):
        pass
    listed = ids(model)
    target = next(
        tid
        for tid in listed
        if "slow" not in model.index(model.row_of(tid) or 0, Column.SUBJECT).data().lower()
    )
    computed, release = threading.Event(), threading.Event()
    real = qm.fetch_keys

    def slow_fetch(*args: Any) -> Any:
        keys = real(*args)
        computed.set()
        assert release.wait(10)
        return keys

    monkeypatch.setattr(qm, "fetch_keys", slow_fetch)
    with qtbot.waitSignal(model.queryApplied, timeout=10_000):
        model.set_search("slow")
        assert computed.wait(10)
        set_ticket(engine, target, subject="Now slow too")
        model.apply_changes({target})
        release.set()
    assert target in ids(model)
    reference = make_model(engine, data)
    reference.set_search("slow")
    assert ids(model) == ids(reference)


def test_changes_queued_behind_a_pull_in_flight_survive_a_requery(
    qtbot: QtBot, engine: Engine, data: QueueData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One pull's tickets are being re-read, a second pull's wait behind them, and then a
    re-query starts: both pulls must reach the screen after it."""
    import agentdesk.ui.queue.model as qm

    model = make_model(engine, data, asynchronous=True)
    with qtbot.waitSignal(model.queryApplied, timeout=10_000):
        pass
    listed = ids(model)
    reading, release = threading.Event(), threading.Event()
    real = qm.read_changes  # type: ignore[attr-defined]  # patched where it is used

    def slow_read(*args: Any) -> Any:
        reading.set()
        assert release.wait(10)
        return real(*args)

    for row in (1, 2):
        model.index(row, Column.SUBJECT).data()  # cached: only a re-read shows the change
    monkeypatch.setattr(qm, "read_changes", slow_read)
    set_ticket(engine, listed[1], subject="First pull")
    model.apply_changes({listed[1]})
    assert reading.wait(10)
    set_ticket(engine, listed[2], subject="Second pull")
    model.apply_changes({listed[2]})  # waits behind the first
    model.refresh()
    monkeypatch.setattr(qm, "read_changes", real)
    release.set()
    qtbot.waitUntil(
        lambda: not model.is_loading() and model._change_op is None and not model._changes,
        timeout=10_000,
    )
    qtbot.wait(50)
    for tid, subject in ((listed[1], "First pull"), (listed[2], "Second pull")):
        shown = model.row_of(tid)
        assert shown is not None
        assert model.index(shown, Column.SUBJECT).data() == subject


def test_a_query_finishing_after_the_model_was_deleted_is_dropped_quietly(
    qtbot: QtBot, engine: Engine, data: QueueData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing the window deletes the model while a worker may still be reading; its result
    arriving afterwards must not touch the deleted C++ object (an exception in the Qt loop)."""
    import agentdesk.ui.queue.model as qm

    model = make_model(engine, data, asynchronous=True)
    with qtbot.waitSignal(model.queryApplied, timeout=10_000):
        pass
    computed, release = threading.Event(), threading.Event()
    real = qm.fetch_keys

    def slow_fetch(*args: Any) -> Any:
        keys = real(*args)
        computed.set()
        assert release.wait(10)
        return keys

    monkeypatch.setattr(qm, "fetch_keys", slow_fetch)
    model.set_search("slow")
    assert computed.wait(10)
    in_flight = list(model._ops)
    assert in_flight
    shiboken6.delete(model)
    release.set()
    qtbot.waitUntil(lambda: all(op.done for op in in_flight), timeout=10_000)
    qtbot.wait(50)  # the finished signal is delivered on the GUI thread


def test_only_the_newest_of_overlapping_queries_is_applied(
    qtbot: QtBot, engine: Engine, data: QueueData
) -> None:
    model = make_model(engine, data, asynchronous=True)
    with qtbot.waitSignal(model.queryApplied, timeout=10_000):
        pass
    applied: list[str] = []
    model.queryApplied.connect(lambda: applied.append(model.query().search))
    loading: list[bool] = []
    model.loadingChanged.connect(loading.append)
    for text in ("s", "sl", "slo", "slow"):
        model.set_search(text)
    qtbot.waitUntil(lambda: not model.is_loading(), timeout=10_000)
    assert applied == ["slow"]
    assert loading == [True, False]
    rows_read(qtbot, model)
    assert all(
        "slow" in model.index(r, Column.SUBJECT).data().lower()
        or "slow" in (model.index(r, Column.ORGANISATION).data() or "").lower()
        for r in range(model.rowCount())
    )


def test_query_failures_are_reported(
    qtbot: QtBot, engine: Engine, data: QueueData, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make_model(engine, data, asynchronous=True)
    with qtbot.waitSignal(model.queryApplied, timeout=10_000):
        pass
    import agentdesk.ui.queue.model as qm

    def broken(*_args: Any) -> list[Any]:
        raise RuntimeError("replica is locked")

    monkeypatch.setattr(qm, "fetch_keys", broken)
    with qtbot.waitSignal(model.queryFailed, timeout=10_000) as failed:
        model.set_search("x")
    assert failed.args == ["replica is locked"]
    assert not model.is_loading()
    assert model.rowCount() > 0  # the old rows stay


def test_synchronous_background_mode_is_honoured(
    engine: Engine, data: QueueData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(background, "SYNCHRONOUS", True)
    model = make_model(engine, data, asynchronous=True)
    assert model.rowCount() > 0
    assert not model.is_loading()


# ------------------------------------------------------------------------------ laziness


def test_rows_are_read_lazily_in_blocks_into_a_bounded_cache(
    tmp_path: Path,
) -> None:
    data = queue_db(tmp_path, 2000, seed=3)
    engine = data.engine()
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_a: statements.append(sql))
    try:
        model = make_model(engine, data)
        model.CACHE_ROWS = 500
        statements.clear()
        model.index(1500, Column.SUBJECT).data()
        row_reads = [s for s in statements if "FROM tickets LEFT OUTER JOIN" in s]
        assert len(row_reads) == 1
        for r in range(1500, 1700):  # the rest of that block and the next: one more read
            model.index(r, Column.SUBJECT).data()
        assert len([s for s in statements if "FROM tickets LEFT OUTER JOIN" in s]) == 2
        for r in range(model.rowCount()):
            model.index(r, Column.TIER).data()
        assert len(model._rows) <= 500
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------ cells


def test_cells_show_tier_requester_mark_age_and_tooltips(
    model: QueueModel, data: QueueData
) -> None:
    by_id = {t["id"]: t for t in data.tickets}
    seen_validated = seen_unvalidated = seen_untriaged = False
    for row in range(model.rowCount()):
        t = by_id[model.ticket_id(row)]
        tier = model.index(row, Column.TIER).data()
        assert tier == (f"T{t['tier']}" if t["tier"] else f"T{t['stated_urgency']}?")
        requester = model.index(row, Column.REQUESTER).data()
        tip = model.index(row, Column.REQUESTER).data(Qt.ItemDataRole.ToolTipRole)
        if requester.startswith("✓ "):
            seen_validated = True
            assert "validated support contact" in tip.lower()
        else:
            seen_unvalidated = True
            assert requester.startswith("⚠ ")
            assert requester.endswith("(not validated)")
            assert "Not a validated support contact" in tip
        if t["tier"] is None:
            seen_untriaged = True
            assert "stated urgency" in model.index(row, Column.TIER).data(
                Qt.ItemDataRole.ToolTipRole
            )
        assert model.index(row, Column.AGE).data() == age_text(t["arrived_at"], data.now)
        assert model.index(row, Column.STATUS).data() in {
            "New",
            "Triaged",
            "In progress",
            "Waiting on customer",
        }
        assert model.index(row, 0).data(TicketIdRole) == t["id"]
    assert seen_validated
    assert seen_unvalidated
    assert seen_untriaged
    assert model.headerData(Column.SLA, Qt.Orientation.Horizontal) == "SLA"
    assert model.headerData(0, Qt.Orientation.Vertical) is None


def test_sla_cells_count_down_colour_and_explain(engine: Engine, data: QueueData) -> None:
    clock = [data.now]
    model = make_model(engine, data, now=lambda: clock[0])
    palette = QPalette()
    palette.setColor(QPalette.ColorRole.Base, QColor("white"))
    model.set_palette(palette)
    states: dict[SlaState, int] = {}
    for row in range(model.rowCount()):
        if not model.index(row, Column.SLA).data().startswith("⏸"):
            states.setdefault(model.index(row, 0).data(SlaStateRole), row)
    assert {SlaState.ON_TRACK, SlaState.AT_RISK, SlaState.BREACHED, SlaState.MET} <= set(states)
    at_risk = model.index(states[SlaState.AT_RISK], Column.SLA)
    assert at_risk.data().endswith(" left")
    assert at_risk.data(Qt.ItemDataRole.ForegroundRole) == QColor("#a35c00")
    tip = at_risk.data(Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("Tier ")
    assert ", due " in tip
    assert "At risk:" in tip
    breached = model.index(states[SlaState.BREACHED], Column.SLA)
    assert breached.data().startswith(("Overdue", "⏸ Overdue"))
    assert breached.data(Qt.ItemDataRole.ForegroundRole) == QColor("#c62828")
    met = model.index(states[SlaState.MET], Column.SLA)
    assert met.data() == "Met"
    assert met.data(Qt.ItemDataRole.ForegroundRole) == palette.color(
        QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text
    )
    on_track = model.index(states[SlaState.ON_TRACK], Column.SLA)
    assert on_track.data(Qt.ItemDataRole.ForegroundRole) is None
    # Two hours later (still business hours on every calendar): the countdown moved.
    before = on_track.data()
    clock[0] = data.now + timedelta(hours=2)
    assert on_track.data() != before
    dark = QPalette()
    dark.setColor(QPalette.ColorRole.Base, QColor("#202020"))
    model.set_palette(dark)
    assert is_dark(dark)
    assert breached.data(Qt.ItemDataRole.ForegroundRole) == QColor("#ff6e6e")


def test_the_countdown_repaints_only_the_visible_rows(model: QueueModel) -> None:
    changes: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(
        lambda a, b, _r=None: changes.append((a.row(), b.row(), a.column(), b.column()))
    )
    model.tick()
    assert changes == []  # no view has said what is visible
    model.set_visible_rows(20, 45)
    model.tick()
    assert sorted(changes) == [(20, 45, Column.SLA, Column.SLA), (20, 45, Column.AGE, Column.AGE)]
    model.set_visible_rows(-1, -1)
    changes.clear()
    model.tick()
    assert changes == []


def test_the_countdown_timer_runs_only_while_rows_are_visible(
    qtbot: QtBot, engine: Engine, data: QueueData
) -> None:
    model = make_model(engine, data)
    model.COUNTDOWN_MS = 20
    model._timer.setInterval(20)
    model.set_visible_rows(0, 5)
    with qtbot.waitSignal(model.dataChanged, timeout=2000):
        pass
    model.set_visible_rows(-1, -1)
    assert not model._timer.isActive()


# ------------------------------------------------------------------------------ SLA clock


def test_sla_clock_without_the_plan_says_so(data: QueueData) -> None:
    clock = SlaClock()
    inputs = SlaInputs(data.now, 2, uuid.uuid4(), None, ())
    assert clock.status(inputs, data.now) is None
    assert sla_text(None) == "—"
    assert sla_colour(None, QPalette()) is None


@pytest.mark.parametrize(
    ("value", "text", "with_seconds"),
    [
        (timedelta(seconds=5), "<1m", "0m 05s"),
        (timedelta(minutes=12, seconds=5), "12m", "12m 05s"),
        (timedelta(hours=3, minutes=2), "3h 02m", "3h 02m"),
        (timedelta(days=2), "2d", "2d"),
        (timedelta(days=2, hours=5), "2d 5h", "2d 5h"),
        (-timedelta(minutes=90), "1h 30m", "1h 30m"),
    ],
)
def test_duration_text(value: timedelta, text: str, with_seconds: str) -> None:
    assert duration_text(value) == text
    assert duration_text(value, seconds=True) == with_seconds


def test_age_text(data: QueueData) -> None:
    assert age_text(data.now, data.now) == "<1m"
    assert age_text(data.now - timedelta(hours=3, minutes=12), data.now) == "3h 12m"
    assert age_text(data.now - timedelta(days=2, hours=23), data.now) == "2d"


def test_lookup_changes_are_picked_up_on_request(
    model: QueueModel, engine: Engine, data: QueueData
) -> None:
    from agentdesk.models import Plan

    row = 0
    tid = model.ticket_id(row)
    org = next(t["organisation_id"] for t in data.tickets if t["id"] == tid)
    assert model.index(row, Column.ORGANISATION).data() == data.org_names[org]
    with engine.begin() as conn:
        conn.execute(update(Organisation).where(Organisation.id == org).values(name="Renamed Org"))
        conn.execute(update(Plan).values(name="Gold"))
    assert model.index(row, Column.ORGANISATION).data() == data.org_names[org]  # cached
    changed: list[int] = []
    model.dataChanged.connect(lambda a, b, _r=None: changed.append(b.row() - a.row() + 1))
    model.invalidate_lookups()
    assert changed == [model.rowCount()]  # one signal for the whole table
    assert model.index(row, Column.ORGANISATION).data() == "Renamed Org"
    assert model.index(row, Column.PLAN).data() == "Gold"
    model.set_search("renamed org")
    assert {model.ticket_id(r) for r in range(model.rowCount())} == {
        t["id"] for t in open_tickets(data) if t["organisation_id"] == org
    }


def test_plans_and_calendars_are_re_read_off_the_gui_thread(
    qtbot: QtBot, engine: Engine, data: QueueData
) -> None:
    from agentdesk.models import Plan

    model = make_model(engine, data, asynchronous=True)
    with qtbot.waitSignal(model.queryApplied, timeout=10_000):
        pass
    threads: list[int] = []
    event.listen(engine, "before_cursor_execute", lambda *_a: threads.append(threading.get_ident()))
    with engine.begin() as conn:
        conn.execute(update(Plan).values(name="Platinum"))
    threads.clear()
    with qtbot.waitSignal(model.queryApplied, timeout=10_000):
        model.invalidate_lookups()
        assert threading.get_ident() not in threads  # the GUI thread read nothing
    assert threads
    assert threading.get_ident() not in threads
    assert {p.name for p in model.sla_clock.plans().values()} == {"Platinum"}
    rows_read(qtbot, model, Column.PLAN)
    assert model.index(0, Column.PLAN).data() == "Platinum"
    assert threading.get_ident() not in threads


def test_rows_not_yet_read_are_read_off_the_gui_thread(
    qtbot: QtBot, engine: Engine, data: QueueData
) -> None:
    """Scrolling to rows not cached: the cells show "…" (the ticket id is already known) and
    the block of rows is read on a worker, then repainted; the GUI thread never reads."""
    model = make_model(engine, data, asynchronous=True)
    with qtbot.waitSignal(model.queryApplied, timeout=10_000):
        pass
    threads: list[int] = []
    event.listen(engine, "before_cursor_execute", lambda *_a: threads.append(threading.get_ident()))
    row = model.rowCount() - 1  # the last block: not read by the first paint
    tid = model.ticket_id(row)
    assert model.index(row, Column.SUBJECT).data() == "…"
    assert model.index(row, Column.SUBJECT).data(TicketIdRole) == tid
    assert threading.get_ident() not in threads
    with qtbot.waitSignal(model.dataChanged, timeout=10_000):
        pass  # the block's rows arrived: repainted
    qtbot.waitUntil(lambda: model.index(row, Column.SUBJECT).data() != "…", timeout=10_000)
    subject = next(t["subject"] for t in data.tickets if t["id"] == tid)
    assert model.index(row, Column.SUBJECT).data() == subject
    assert threads
    assert threading.get_ident() not in threads


def test_my_tickets_follow_the_signed_in_user(engine: Engine, data: QueueData) -> None:
    model = make_model(engine, data, view=SavedView.MY_TICKETS)
    assert model.rowCount() == 0
    model.set_user_id(data.user_ids[2])
    assert model.rowCount() > 0
    assert set(ids(model)) == {
        t["id"] for t in open_tickets(data) if t["assignee_id"] == data.user_ids[2]
    }


def test_sla_views_refresh_their_membership_periodically(engine: Engine, data: QueueData) -> None:
    model = make_model(engine, data)
    assert not model._membership_timer.isActive()
    model.set_view(SavedView.AT_RISK)
    assert model._membership_timer.isActive()
    at_risk_now = set(ids(model))
    later = [data.now + timedelta(hours=3)]
    model._now_fn = lambda: later[0]
    model._refresh_sla_view()  # what the timer does
    assert set(ids(model)) != at_risk_now  # some breached, others became at risk
    assert all(
        model.index(r, 0).data(SlaStateRole) == SlaState.AT_RISK for r in range(model.rowCount())
    )
    model.set_view(SavedView.UNASSIGNED)
    assert not model._membership_timer.isActive()


def test_a_ticket_the_sla_policy_refuses_shows_no_sla_and_breaks_nothing(
    model: QueueModel, engine: Engine, data: QueueData, caplog: pytest.LogCaptureFixture
) -> None:
    tid = model.ticket_id(3)
    assert tid is not None
    arrived = next(t["arrived_at"] for t in data.tickets if t["id"] == tid)
    set_ticket(engine, tid, first_response_at=arrived - timedelta(hours=1))  # before arrival
    model.apply_changes({tid})
    row = model.row_of(tid)
    assert row is not None
    assert model.index(row, Column.SLA).data() == "—"
    assert "first_response" in caplog.text
    model.sort(Column.SLA)
    assert model.row_of(tid) is not None
    model.set_view(SavedView.BREACHED)
    assert model.row_of(tid) is None


def test_search_folds_case_beyond_ascii(model: QueueModel, engine: Engine) -> None:
    listed = ids(model)
    set_ticket(engine, listed[5], subject="Émilie's invoice shows ÖSTERREICH twice")
    model.apply_changes({listed[5]})
    for query in ("émilie", "ÉMILIE", "österreich", "Österreich émilie"):
        model.set_search(query)
        assert ids(model) == [listed[5]], query
    model.set_search("émilia")
    assert ids(model) == []
