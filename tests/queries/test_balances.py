"""The prepaid balance and today's totals cost what their window costs: an entry spanning
centuries (recorded before mutation arguments were bounded) is clipped to the window, so it
neither freezes a desktop nor overflows in a far-west zone (finding 1 of issue 9)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from agentdesk.models import HourBlock, TimeEntry, TimeKind
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from agentdesk.queries.balances import clipped_work, day_bounds, prepaid_figures, today_totals
from tests.sync.world import World, build_world

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
TZ = "America/New_York"


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    engine = make_engine(database_url)
    yield build_world(make_session_factory(engine))
    engine.dispose()


def _entry(w: World, start: datetime, end: datetime, **kw: object) -> TimeEntry:
    return TimeEntry(
        id=uuid.uuid4(),
        tenant_id=w.tenant,
        organisation_id=w.orgs["globex"],
        person_id=w.users["consultant"],
        kind=TimeKind.UNSCHEDULED,
        started_at=start,
        ended_at=end,
        billable=True,
        note="",
        source="manual",
        created_at=NOW,
        **kw,
    )


def _ledger(sessions: sessionmaker[Session], w: World, hostile: bool) -> None:
    with session_scope(sessions) as s:
        s.add(
            HourBlock(
                id=uuid.uuid4(),
                tenant_id=w.tenant,
                organisation_id=w.orgs["globex"],
                purchased_at=NOW - timedelta(days=10),
                minutes=600,
                recorded_by_id=w.users["lead"],
                note="",
            )
        )
        s.add(_entry(w, NOW - timedelta(minutes=40), NOW - timedelta(minutes=5)))
        if hostile:
            s.add(_entry(w, datetime(1, 1, 1, tzinfo=UTC), NOW - timedelta(minutes=1)))


@pytest.mark.parametrize("hostile", [False, True])
def test_a_centuries_long_entry_is_clipped_to_the_window(world: World, hostile: bool) -> None:
    _ledger(world.sessions, world, hostile)
    org, person = world.orgs["globex"], str(world.users["consultant"])
    started = time.perf_counter()
    with session_scope(world.sessions) as s:
        figures = prepaid_figures(s, org, None, person, TZ, NOW)
        day = NOW.astimezone(ZoneInfo(TZ)).date()
        since, until = day_bounds(day, TZ)
        items = clipped_work(s, org, since, until)
    totals = today_totals(items, org, day, TZ, None, person, NOW)
    assert time.perf_counter() - started < 2.0, "bounded by the window, not the data"
    assert all(since <= i.start <= i.end <= until for i in items)
    assert figures.balance is not None
    if hostile:
        # The hostile entry bills the whole of today up to now (09:59 local: 10 hours), and
        # within the 90-day window 600 prepaid minutes are used up.
        assert totals.raw == NOW - timedelta(minutes=1) - since
        assert figures.balance.total_minutes == 0
    else:
        assert totals.raw == timedelta(minutes=35)
        assert figures.balance.total_minutes == 600 - 60
