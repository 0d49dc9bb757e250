"""The live dashboard's incremental refresh equals a full computation.

A copy of the demo team's database is opened as a replica; rounds of random changes (any
column the figures read, new tickets, deletions, closing and reopening, reassignments,
answers, moved SLA instants) are written to it, the clock moves on (across SLA instants and
ageing edges) and the 30-day range rolls with it; after each round the figures moved by
:func:`agentdesk.queries.dashboard_live.advance` must equal
:func:`agentdesk.queries.dashboard.compute` over the same replica, and must have been moved,
not recomputed."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import Table, func, insert, select, update

from agentdesk.models import Level, Organisation, Ticket, TicketStatus, User, new_id
from agentdesk.queries import dashboard as dash
from agentdesk.queries import dashboard_live as live_mod
from agentdesk.sync.replica import Replica

TICKETS = cast(Table, Ticket.__table__)
RANGE = timedelta(days=30)


class World:
    """Ids to pick from, read once."""

    def __init__(self, r: Replica) -> None:
        with r.session() as s:
            self.tickets: list[uuid.UUID] = list(s.scalars(select(Ticket.id)))
            self.users: list[uuid.UUID] = list(s.scalars(select(User.id)))
            self.orgs: list[uuid.UUID] = list(
                s.scalars(select(Organisation.id).where(Organisation.deleted.is_(False)))
            )


def random_change(rng: random.Random, at: datetime, world: World) -> dict[str, Any]:
    """New values for some of the columns the figures read."""
    values: dict[str, Any] = {}
    if rng.random() < 0.5:
        values["status"] = rng.choice(list(TicketStatus))
    if rng.random() < 0.4:
        tier = rng.choice([None, 1, 2, 3, 4])
        values["tier"] = tier
        values["urgency"] = tier or rng.randint(1, 4)
    if rng.random() < 0.2:
        values["level"] = rng.choice(list(Level))
    if rng.random() < 0.4:
        values["assignee_id"] = rng.choice([None, *world.users])
    if rng.random() < 0.3:
        answered = rng.random() < 0.5
        values["first_response_at"] = (
            at - timedelta(minutes=rng.randint(0, 40 * 24 * 60)) if answered else None
        )
        values["first_response_business_s"] = rng.randint(0, 90_000) if answered else None
    if rng.random() < 0.4:
        if rng.random() < 0.15:
            values["sla_due_at"] = values["sla_risk_at"] = None  # paused
        else:
            due = at + timedelta(minutes=rng.randint(-240, 240))
            values["sla_due_at"] = due
            values["sla_risk_at"] = due - timedelta(minutes=rng.randint(0, 120))
    if rng.random() < 0.05:
        values["deleted"] = rng.random() < 0.7
    if rng.random() < 0.03:
        values["organisation_id"] = rng.choice(world.orgs)
    if rng.random() < 0.03:
        values["arrived_at"] = at - timedelta(minutes=rng.randint(0, 20 * 24 * 60))
    return values or {"status": rng.choice(list(TicketStatus))}


def write_round(r: Replica, rng: random.Random, at: datetime, world: World) -> set[uuid.UUID]:
    """A pull's worth of changes, committed as the sync thread would: one transaction."""
    changed: set[uuid.UUID] = set()
    with r.engine.begin() as conn:
        for tid in rng.sample(world.tickets, rng.randint(1, 40)):
            conn.execute(
                update(TICKETS).where(TICKETS.c.id == tid).values(**random_change(rng, at, world))
            )
            changed.add(tid)
        for _ in range(rng.randint(0, 3)):  # new tickets, copied from an existing one
            source = (
                conn.execute(select(TICKETS).where(TICKETS.c.id == rng.choice(world.tickets)))
                .mappings()
                .one()
            )
            tid = new_id()
            row = {**source, "id": tid, "arrived_at": at - timedelta(minutes=rng.randint(0, 600))}
            row.update(random_change(rng, at, world))
            conn.execute(insert(TICKETS).values(**row))
            world.tickets.append(tid)
            changed.add(tid)
    return changed


def next_clock(r: Replica, rng: random.Random, at: datetime) -> datetime:
    """Seconds to half an hour on, or just past some open ticket's SLA instant (so tickets
    move between SLA buckets with no change of their own)."""
    if rng.random() < 0.5:
        with r.session() as s:
            instants = [
                x
                for x in s.scalars(
                    select(Ticket.sla_due_at).where(
                        Ticket.sla_due_at > at, Ticket.sla_due_at < at + timedelta(hours=1)
                    )
                )
                if x is not None
            ]
        if instants:
            return rng.choice(instants) + timedelta(seconds=1)
    return at + timedelta(seconds=rng.randint(0, 1800))


def full(r: Replica, at: datetime, start: datetime, end: datetime) -> dash.Dashboard:
    with r.session() as s:
        return dash.compute(s, at, start, end)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_changes_move_the_figures_exactly_as_a_full_computation(
    replica: Replica, seed: int
) -> None:
    rng = random.Random(seed)
    world = World(replica)
    at = datetime.now(UTC).replace(microsecond=0)
    live = live_mod.start(replica.engine, at, at - RANGE, at)
    try:
        assert live.dashboard == full(replica, at, at - RANGE, at)
        moved = 0
        for _round in range(12):
            changed = write_round(replica, rng, at, world)
            at = next_clock(replica, rng, at)
            live = live_mod.advance(live, at, at - RANGE, at, changed, one_on_one_too=True)
            moved += live.moved
            assert live.dashboard == full(replica, at, at - RANGE, at), f"round {_round}"
        assert moved == 12, "every round was moved, none recomputed"
    finally:
        live.close()


def test_a_refresh_after_nothing_changed_reads_nothing_but_the_clock(replica: Replica) -> None:
    at = datetime.now(UTC).replace(microsecond=0)
    live = live_mod.start(replica.engine, at, at - RANGE, at)
    try:
        later = at + timedelta(minutes=1)
        live = live_mod.advance(live, later, later - RANGE, later, set())
        assert live.moved
        assert live.dashboard.at == later
        expected = full(replica, later, later - RANGE, later)
        assert live.dashboard.open == expected.open
        assert live.dashboard.sla == expected.sla
        assert live.dashboard.first_response == expected.first_response
    finally:
        live.close()


def test_what_a_delta_cannot_follow_is_computed_afresh(replica: Replica) -> None:
    """An organisation moved to another plan (a lookup, noticed by its new version), a range
    that jumps, a clock that goes back, too many changed tickets: each is recomputed, and
    still right."""
    world = World(replica)
    at = datetime.now(UTC).replace(microsecond=0)
    live = live_mod.start(replica.engine, at, at - RANGE, at)
    try:
        with replica.engine.begin() as conn:
            org = world.orgs[0]
            plans = list(conn.execute(select(Organisation.plan_id).distinct()).scalars())
            other = next(
                p
                for p in plans
                if p != conn.scalar(select(Organisation.plan_id).where(Organisation.id == org))
            )
            # As a pull writes it: the server stamps the change with a new version.
            newest = conn.scalar(select(func.max(Organisation.version))) or 0
            conn.execute(
                update(Organisation)
                .where(Organisation.id == org)
                .values(plan_id=other, version=newest + 1)
            )
        live = live_mod.advance(live, at, at - RANGE, at, set())
        assert not live.moved
        assert live.dashboard == full(replica, at, at - RANGE, at)
        week = at - timedelta(days=7)
        live = live_mod.advance(live, at, week, at, set())  # 30 days -> 7 days
        assert not live.moved
        assert live.dashboard == full(replica, at, week, at)
        earlier = at - timedelta(minutes=5)
        live = live_mod.advance(live, earlier, earlier - timedelta(days=7), earlier, set())
        assert not live.moved
        many = {uuid.uuid4() for _ in range(live_mod.MAX_CHANGED + 1)}
        live = live_mod.advance(live, earlier, earlier - timedelta(days=7), earlier, many)
        assert not live.moved
        assert live.dashboard == full(replica, earlier, earlier - timedelta(days=7), earlier)
    finally:
        live.close()


def test_the_snapshot_is_let_go(replica: Replica) -> None:
    """Each refresh releases the snapshot it started from; closing releases the last."""
    at = datetime.now(UTC).replace(microsecond=0)
    first = live_mod.start(replica.engine, at, at - RANGE, at)
    second = live_mod.advance(first, at, at - RANGE, at, set())
    assert first.pin.closed
    assert not second.pin.closed
    second.close()
    assert second.pin.closed
    with pytest.raises(RuntimeError, match="released"), second.pin.session():
        pass
