"""The queue's read side without Qt: sort keys, the SLA clock, re-reading a pull's tickets and
planning a pull's changes against the list on screen.

Expected values come from the policy functions and from sorting the whole list again, never
from the functions under test.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Engine, Table, update

from agentdesk.models import Organisation, Ticket
from agentdesk.policy.calendar import BusinessCalendar
from agentdesk.policy.queue import queue_key as policy_queue_key
from agentdesk.policy.sla import sla_status
from agentdesk.queries.queue import Column, QueueQuery, SavedView, fetch_keys, kid, queue_key
from agentdesk.queries.queue_diff import DiffPlan, plan_pull
from agentdesk.queries.queue_rows import ChangedRow, QueueRow, read_changes
from agentdesk.queries.sla_clock import SlaClock, SlaInputs
from tests.ui.queue_fixtures import OFFICE, QueueData, queue_db

TICKETS = cast(Table, Ticket.__table__)


@pytest.fixture
def data(tmp_path: Path) -> QueueData:
    return queue_db(tmp_path, 400)


@pytest.fixture
def engine(data: QueueData) -> Iterator[Engine]:
    eng = data.engine()
    yield eng
    eng.dispose()


def test_queue_key_bytes_sort_like_the_policy_key() -> None:
    base = datetime.fromisoformat("2026-03-11T15:00:00+00:00")
    cases = [
        (tier, rank, base + timedelta(microseconds=us), uuid.UUID(int=n))
        for tier in (1, 4)
        for rank in (-2, 0, 3)
        for us in (0, 1, 10**6)
        for n in (1, 2**120)
    ]
    by_bytes = sorted(cases, key=lambda c: queue_key(c[0], c[1], c[2], c[3]))
    by_policy = sorted(
        cases,
        key=lambda c: policy_queue_key(
            tier=c[0], stated_urgency=None, plan_rank=c[1], arrival=c[2], ticket_id=str(c[3])
        ),
    )
    assert by_bytes == by_policy


def test_sla_clock_fast_path_agrees_with_sla_status(data: QueueData, engine: Engine) -> None:
    clock = SlaClock(BusinessCalendar.from_dict(OFFICE))
    with engine.connect() as conn:
        clock.load(conn)
    plan_of = {}
    with engine.connect() as conn:
        for org in conn.execute(Organisation.__table__.select()):
            plan_of[org.id] = org.plan_id
    pauses: dict[uuid.UUID, list[tuple[datetime, datetime | None]]] = {}
    for w in data.waits:
        pauses.setdefault(w["ticket_id"], []).append((w["started_at"], w["ended_at"]))
    moments = [
        data.now - timedelta(days=1),
        data.now,
        data.now + timedelta(minutes=1),
        data.now + timedelta(minutes=20),
        data.now + timedelta(hours=3),
        data.now + timedelta(days=2, minutes=7),
    ]
    checked = 0
    for now in moments:  # the same clock object across moments: caches are exercised
        for t in data.tickets:
            if t["first_response_at"] is not None and t["first_response_at"] > now:
                continue
            if t["arrived_at"] > now:
                continue
            inputs = SlaInputs(
                t["arrived_at"],
                t["urgency"],
                plan_of[t["organisation_id"]],
                t["first_response_at"],
                tuple(pauses.get(t["id"], ())),
            )
            plan, calendar = data.policy_plan(t["organisation_id"])
            expected = sla_status(
                t["arrived_at"],
                t["urgency"],
                plan,
                calendar,
                now,
                first_response=t["first_response_at"],
                paused=pauses.get(t["id"], ()),
            )
            # state() first: it bounds "time left" from the previous moment's exact value.
            assert clock.state(inputs, now) is expected.state, t
            for _ in range(2):
                got = clock.status(inputs, now)
                assert got is not None
                assert (got.state, got.due, got.business_left, got.business_total) == (
                    expected.state,
                    expected.due,
                    expected.business_left,
                    expected.business_total,
                ), t
                assert clock.state(inputs, now) is expected.state
            checked += 1
    assert checked > 1000


def test_read_changes_says_which_tickets_the_query_still_lists_and_under_which_key(
    data: QueueData, engine: Engine
) -> None:
    clock = SlaClock(BusinessCalendar.from_dict(OFFICE))
    query = QueueQuery(view=SavedView.UNASSIGNED, sort_column=Column.SUBJECT)
    with engine.connect() as conn:
        listed = fetch_keys(conn, clock, query, data.now)
    taken, renamed = uuid.UUID(bytes=kid(listed[0])), uuid.UUID(bytes=kid(listed[1]))
    missing = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            update(TICKETS).where(TICKETS.c.id == taken).values(assignee_id=data.user_ids[0])
        )
        conn.execute(update(TICKETS).where(TICKETS.c.id == renamed).values(subject="Zebra"))
    with engine.connect() as conn:
        found = read_changes(conn, clock, query, [taken, renamed, missing], data.now)
        again = fetch_keys(conn, clock, query, data.now)
    assert set(found) == {taken.bytes, renamed.bytes}  # a ticket not in the replica: absent
    assert found[taken.bytes].key is None  # assigned: no longer Unassigned
    assert found[taken.bytes].row.assignee_id is not None
    renamed_key = found[renamed.bytes].key
    assert renamed_key is not None
    assert renamed_key in again  # the very key the key query builds
    assert renamed_key[0] == "zebra"
    assert found[renamed.bytes].row.subject == "Zebra"


def _random_keys(rng: random.Random, n: int) -> list[bytes]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return sorted(
        queue_key(
            rng.randint(1, 4),
            rng.randint(0, 3),
            start + timedelta(seconds=rng.randrange(10**7)),
            uuid.UUID(int=rng.getrandbits(128)),
        )
        for _ in range(n)
    )


def _changed(key: bytes | None) -> ChangedRow:
    row: Any = object.__new__(QueueRow)  # plan_pull reads only the key
    return ChangedRow(row, key)


def _replay(snapshot: list[bytes], plan: DiffPlan) -> list[bytes]:
    """What a model's list becomes after a plan's runs (removals from the end, then inserts)."""
    keys = list(snapshot)
    for start, count in reversed(plan.removals):
        del keys[start : start + count]
    for start, new in plan.insertions:
        keys[start:start] = new
    return keys


@pytest.mark.parametrize("seed", range(6))
def test_a_pull_with_many_moves_is_planned_as_runs_then_one_layout_change(seed: int) -> None:
    rng = random.Random(seed)
    snapshot = _random_keys(rng, 3000)
    pos = {kid(k): k for k in snapshot}
    chosen = rng.sample(snapshot, 400)
    rows: dict[bytes, ChangedRow] = {}
    expected = set(snapshot)
    for key in chosen[:40]:  # left the view
        rows[kid(key)] = _changed(None)
        expected.discard(key)
    for key in chosen[40:240]:  # changed place
        new = queue_key(rng.randint(1, 4), 1, datetime(2026, 2, 1, tzinfo=UTC), key[-16:])
        rows[kid(key)] = _changed(new)
        expected.discard(key)
        expected.add(new)
    for key in chosen[240:]:  # cells only
        rows[kid(key)] = _changed(key)
    joined = _random_keys(rng, 30)
    for key in joined:
        rows[kid(key)] = _changed(key)
        expected.add(key)
    gone = uuid.uuid4()  # named by the pull, not in the replica, never listed
    ids = frozenset(uuid.UUID(bytes=k) for k in rows) | {gone}
    old = {k: pos[k] for k in rows if k in pos}
    plan = plan_pull(QueueQuery(), snapshot, old, ids, rows, 7, move_limit=50)
    assert plan.moves == 200
    assert plan.keys == sorted(expected)
    assert plan.membership is not None
    middle = _replay(snapshot, plan.membership)
    # the model's id index after the runs, updated with the moved keys, indexes the final list
    index = {kid(k): k for k in middle}
    assert plan.moved is not None
    index.update((kid(k), k) for k in plan.moved)
    assert index == {kid(k): k for k in sorted(expected)}
    assert middle == sorted(middle)
    # the runs only add and drop rows: the moved tickets are still at their old keys
    assert sorted(kid(k) for k in middle) == sorted(kid(k) for k in plan.keys)
    assert plan.membership.changed == 40 + 30
    assert plan.base_version == 7


def test_a_pull_with_few_moves_leaves_the_list_to_the_model() -> None:
    rng = random.Random(1)
    snapshot = _random_keys(rng, 500)
    moved = snapshot[10]
    new = queue_key(1, 3, datetime(2025, 1, 1, tzinfo=UTC), moved[-16:])
    rows = {kid(moved): _changed(new), kid(snapshot[20]): _changed(None)}
    ids = frozenset(uuid.UUID(bytes=k) for k in rows)
    plan = plan_pull(
        QueueQuery(),
        snapshot,
        {k: k2 for k2 in snapshot if (k := kid(k2)) in rows},
        ids,
        rows,
        3,
        move_limit=50,
    )
    assert plan.moves == 1
    assert plan.keys is None
    assert plan.membership is None
    assert plan.rows == rows


def test_a_pull_that_only_moves_rows_plans_no_runs_and_the_moved_keys() -> None:
    """A retriage moves rows but none leaves or joins: no merge of the whole list (it held the
    GIL against the GUI thread on every pull), only the final list and the moved keys."""
    rng = random.Random(3)
    snapshot = _random_keys(rng, 2000)
    chosen = rng.sample(snapshot, 300)
    rows: dict[bytes, ChangedRow] = {}
    expected = set(snapshot)
    moved = []
    for key in chosen:
        new = queue_key(rng.randint(1, 4), 2, datetime(2026, 3, 1, tzinfo=UTC), key[-16:])
        rows[kid(key)] = _changed(new)
        expected.discard(key)
        expected.add(new)
        moved.append(new)
    ids = frozenset(uuid.UUID(bytes=k) for k in rows)
    old = {kid(k): k for k in chosen}
    plan = plan_pull(QueueQuery(), snapshot, old, ids, rows, 4, move_limit=50)
    assert plan.membership == DiffPlan([], [], 0, 0)
    assert plan.keys == sorted(expected)
    assert plan.moved == sorted(moved)


def test_open_tickets_per_agent_are_one_index_only_scan(engine: Engine, data: QueueData) -> None:
    """The ticket card's "assign to" loads: the same counts as a plain count of open tickets,
    read through ``ix_tickets_open`` (SQLite's planner, left alone, took the status index and
    looked up every open row: ~370 ms on 100,000 open tickets, ~10 ms through the index)."""
    from sqlalchemy import func, select

    from agentdesk.policy.workflow import OPEN_STATUSES
    from agentdesk.queries.queue import open_counts_by_assignee

    with engine.connect() as conn:
        plain = {
            row[0]: int(row[1])
            for row in conn.execute(
                select(Ticket.assignee_id, func.count())
                .where(
                    Ticket.assignee_id.is_not(None),
                    Ticket.deleted.is_(False),
                    Ticket.status.in_(sorted(OPEN_STATUSES)),
                )
                .group_by(Ticket.assignee_id)
            )
        }
        plans: list[str] = []

        def explain(_conn: Any, cursor: Any, statement: str, params: Any, *_a: Any) -> None:
            if "count(*)" in statement:
                plans.extend(
                    str(r[-1]) for r in cursor.connection.execute(f"EXPLAIN QUERY PLAN {statement}")
                )

        from sqlalchemy import event

        event.listen(engine, "before_cursor_execute", explain)
        try:
            counted = open_counts_by_assignee(conn)
        finally:
            event.remove(engine, "before_cursor_execute", explain)
    assert plain
    assert counted == plain
    assert any("COVERING INDEX ix_tickets_open" in p for p in plans), plans
