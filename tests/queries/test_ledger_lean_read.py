"""The ledger's lean read (no per-value result processing) gives what the typed ORM read gave.

The timer's prepaid balance and today's totals now read through :mod:`agentdesk.queries.ledger`
(values straight from the driver, converted once); the statement's entries too. The references
below are the previous typed reads, kept here as the oracle, run on random ledgers: overlapping
and chained blocks, voided and voiding entries, deleted rows, entries spanning centuries,
zero-length entries, entries on tickets (general support or not), several organisations.
"""

from __future__ import annotations

import gc
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from agentdesk.models import HourBlock, Ticket, TicketKind, TimeEntry, TimeKind
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from agentdesk.policy import billing
from agentdesk.policy.billing import WorkItem, WorkKind
from agentdesk.queries import ledger
from agentdesk.queries.balances import clipped_work, prepaid_figures, read_prepaid
from agentdesk.queries.statement import read_statement
from tests.sync.world import World, build_world

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
TZ = "America/New_York"
_DAY_SLACK = timedelta(days=2)


# -- the previous typed reads (the oracle) -------------------------------------------------


def old_clipped_work(
    session: Session, org_id: uuid.UUID, since: datetime, until: datetime
) -> list[WorkItem]:
    rows = session.execute(
        select(
            TimeEntry.id,
            TimeEntry.person_id,
            TimeEntry.kind,
            TimeEntry.started_at,
            TimeEntry.ended_at,
            TimeEntry.billable,
            TimeEntry.extra_engineer,
            TimeEntry.source,
        ).where(
            TimeEntry.organisation_id == org_id,
            TimeEntry.deleted.is_(False),
            TimeEntry.started_at < until,
            TimeEntry.ended_at >= since,
        )
    ).all()
    voided = set(
        session.scalars(
            select(TimeEntry.voids_id).where(
                TimeEntry.organisation_id == org_id,
                TimeEntry.voids_id.is_not(None),
                TimeEntry.deleted.is_(False),
            )
        )
    )
    items = []
    for row in rows:
        if row.id in voided or row.source == "void":
            continue
        start, end = row.started_at, row.ended_at
        if start < since or end > until:
            start, end = max(start, since), min(end, until)
            end = max(start, end)
        items.append(
            WorkItem(
                customer_id=str(org_id),
                person=str(row.person_id),
                kind=WorkKind(row.kind.value),
                start=start,
                end=end,
                billable=row.billable,
                extra_engineer=row.extra_engineer,
                id=str(row.id),
            )
        )
    return items


def old_prepaid(
    session: Session, org_id: uuid.UUID, now: datetime
) -> tuple[tuple[billing.HourBlock, ...], list[WorkItem], datetime | None] | None:
    blocks = [
        billing.HourBlock(
            id=str(r.id), customer_id=str(org_id), purchased_at=r.purchased_at, minutes=r.minutes
        )
        for r in session.scalars(
            select(HourBlock)
            .where(HourBlock.organisation_id == org_id, HourBlock.deleted.is_(False))
            .order_by(HourBlock.purchased_at)
        )
    ]
    if not blocks:
        return None
    start = now
    for block in reversed(blocks):
        if block.expires_at > start - _DAY_SLACK:
            start = min(start, block.purchased_at)
    since = start - _DAY_SLACK
    kept = tuple(b for b in blocks if b.expires_at > since and b.purchased_at <= now)
    if not any(b.expires_at > now for b in kept):
        return (), [], max(b.expires_at for b in blocks)
    return kept, old_clipped_work(session, org_id, since, now + timedelta(days=1)), None


def old_live_entries(
    session: Session, since: datetime, until: datetime, org_id: uuid.UUID
) -> list[tuple[object, ...]]:
    """The statement's previous typed read, as comparable tuples."""
    rows = session.execute(
        select(TimeEntry, Ticket.subject, Ticket.kind)
        .outerjoin(Ticket, Ticket.id == TimeEntry.ticket_id)
        .where(
            TimeEntry.organisation_id == org_id,
            TimeEntry.deleted.is_(False),
            TimeEntry.started_at < until,
            TimeEntry.ended_at >= since,
            TimeEntry.source != "void",
        )
    ).all()
    voided = set(
        session.scalars(
            select(TimeEntry.voids_id).where(
                TimeEntry.voids_id.is_not(None), TimeEntry.deleted.is_(False)
            )
        )
    )
    return [
        (
            str(e.id),
            e.organisation_id,
            e.person_id,
            e.ticket_id,
            subject or "",
            kind is TicketKind.GENERAL,
            e.kind,
            e.started_at,
            e.ended_at,
            e.billable,
            e.extra_engineer,
            e.note,
            e.source,
            e.voids_id,
        )
        for e, subject, kind in rows
        if e.id not in voided
    ]


# -- random ledgers ------------------------------------------------------------------------


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    engine = make_engine(database_url)
    yield build_world(make_session_factory(engine))
    engine.dispose()


def _random_ledger(w: World, rnd: random.Random) -> list[uuid.UUID]:
    orgs = list(w.orgs.values())[:2]
    people = [w.users["consultant"], w.users["lead"]]
    with session_scope(w.sessions) as s:
        tickets = [
            (org, kind) for org in orgs for kind in (TicketKind.ONE_ON_ONE, TicketKind.GENERAL)
        ]
        ticket_ids: dict[uuid.UUID, list[uuid.UUID]] = {o: [] for o in orgs}
        for org, kind in tickets:
            contact = next(c for c in w.contacts.values())
            tid = uuid.uuid4()
            s.add(
                Ticket(
                    id=tid,
                    tenant_id=w.tenant,
                    organisation_id=org,
                    requester_id=contact,
                    subject=f"Ticket {rnd.randrange(1000)}",
                    kind=kind,
                    channel="email",
                    stated_urgency=3,
                    urgency=3,
                    arrived_at=NOW - timedelta(days=400),
                    updated_at=NOW - timedelta(days=400),
                )
            )
            ticket_ids[org].append(tid)
        s.flush()
        for org in orgs:
            at = NOW - timedelta(days=rnd.randrange(200, 1200))
            s.add(
                HourBlock(
                    id=uuid.uuid4(),
                    tenant_id=w.tenant,
                    organisation_id=org,
                    purchased_at=NOW - timedelta(days=rnd.randrange(1, 80)),
                    minutes=600,
                    recorded_by_id=w.users["lead"],
                    note="",
                )
            )
            while at < NOW + timedelta(days=5):
                s.add(
                    HourBlock(
                        id=uuid.uuid4(),
                        tenant_id=w.tenant,
                        organisation_id=org,
                        purchased_at=at,
                        minutes=60 * rnd.choice((1, 5, 10, 20)),
                        recorded_by_id=w.users["lead"],
                        note="",
                        deleted=rnd.random() < 0.05,
                    )
                )
                at += timedelta(
                    days=rnd.choice((30, 60, 89, 95, 200)), seconds=rnd.randrange(86400)
                )
            entries: list[uuid.UUID] = []
            for _ in range(rnd.randrange(20, 120)):
                start = NOW - timedelta(days=rnd.random() * 1300)
                if rnd.random() < 0.03:
                    start = datetime(1, 1, 1, tzinfo=UTC)
                end = min(
                    start + timedelta(minutes=rnd.choice((0, 1, 7, 45, 600))),
                    NOW + timedelta(hours=rnd.choice((-2, 2))),
                )
                end = max(start, end)
                eid = uuid.uuid4()
                s.add(
                    TimeEntry(
                        id=eid,
                        tenant_id=w.tenant,
                        organisation_id=org,
                        person_id=rnd.choice(people),
                        kind=rnd.choice(list(TimeKind)),
                        ticket_id=rnd.choice([None, *ticket_ids[org]]),
                        started_at=start,
                        ended_at=end,
                        billable=rnd.random() < 0.8,
                        extra_engineer=rnd.random() < 0.1,
                        note=rnd.choice(("", "worked", "=x")),
                        source="manual",
                        created_at=start,
                        deleted=rnd.random() < 0.05,
                    )
                )
                entries.append(eid)
            s.flush()
            for victim in rnd.sample(entries, k=len(entries) // 8):
                s.add(
                    TimeEntry(
                        id=uuid.uuid4(),
                        tenant_id=w.tenant,
                        organisation_id=org,
                        person_id=people[0],
                        kind=TimeKind.UNSCHEDULED,
                        started_at=NOW,
                        ended_at=NOW,
                        billable=False,
                        extra_engineer=False,
                        note="",
                        source="void",
                        voids_id=victim,
                        created_at=NOW,
                        deleted=rnd.random() < 0.2,
                    )
                )
    return orgs


@pytest.mark.parametrize("seed", range(6))
def test_the_lean_ledger_read_matches_the_typed_read(world: World, seed: int) -> None:
    rnd = random.Random(seed)
    orgs = _random_ledger(world, rnd)
    person = str(world.users["consultant"])
    checked = 0
    with session_scope(world.sessions) as s:
        for org in orgs:
            for now in (NOW, NOW - timedelta(days=rnd.randrange(1, 700))):
                old = old_prepaid(s, org, now)
                new = read_prepaid(s, org, now)
                if old is None:
                    assert new is None
                    continue
                assert new is not None
                blocks, items, last_expired = old
                assert new.blocks == blocks
                assert sorted(new.items, key=lambda i: i.id) == sorted(items, key=lambda i: i.id)
                assert new.last_expired == last_expired
                figures = prepaid_figures(s, org, None, person, TZ, now)
                if blocks:
                    work = [i for i in items if i.start <= now]
                    expected = billing.balance(
                        blocks, billing.bill_days(work, tz=TZ), now, customer_id=str(org)
                    )
                    assert figures.balance == expected
                    checked += 1
                since = now - timedelta(days=rnd.randrange(1, 400))
                until = since + timedelta(days=rnd.randrange(1, 30))
                assert sorted(clipped_work(s, org, since, until), key=lambda i: i.id) == sorted(
                    old_clipped_work(s, org, since, until), key=lambda i: i.id
                )
                lean = [
                    (
                        f.id,
                        f.organisation_id,
                        f.person_id,
                        f.ticket_id,
                        f.ticket_subject,
                        f.general_support,
                        f.kind,
                        f.started_at,
                        f.ended_at,
                        f.billable,
                        f.extra_engineer,
                        f.note,
                        f.source,
                        f.voids_id,
                    )
                    for f in ledger.live_entries(
                        s, since=since - timedelta(days=900), until=until, org_id=org
                    )
                ]
                typed = old_live_entries(s, since - timedelta(days=900), until, org)
                assert sorted(lean, key=str) == sorted(typed, key=str)
                assert lean, "the random ledger has live entries in the window"
    assert checked, "at least one balance was compared"


@pytest.mark.parametrize("seed", range(4))
def test_statements_equal_the_policy_over_the_typed_read(world: World, seed: int) -> None:
    """``read_statement`` reads the ledger lean straight into the policy's items, runs one time
    report from the replay start and pauses the cycle collector while it builds. Against it:
    the previous typed read of the same window, billed by ``bill_days`` and stated by
    ``statement`` the plain way, on random ledgers and periods."""
    collector_was_enabled = gc.isenabled()  # the test session keeps it off (tests/conftest.py)
    rnd = random.Random(100 + seed)
    orgs = _random_ledger(world, rnd)
    compared = 0
    with session_scope(world.sessions) as s:
        for org in orgs:
            for _ in range(4):
                last = (NOW - timedelta(days=rnd.randrange(0, 500))).date()
                first = last - timedelta(days=rnd.randrange(0, 300))
                view = read_statement(s, org, first, last, now=NOW)
                opens, closes = ledger.day_bounds(first, last, view.tz)
                until = min(closes, NOW)
                led = ledger.load_ledger(s, org, opens, until)
                typed: list[Any] = old_live_entries(s, led.since, until, org)
                assert sorted(
                    (i.id, i.person, i.kind.value, i.start, i.end, i.billable, i.extra_engineer)
                    for i in led.items
                ) == sorted((t[0], str(t[2]), t[6].value, t[7], t[8], t[9], t[10]) for t in typed)
                assert led.details == {t[0]: (t[4], t[11]) for t in typed}
                items = [
                    WorkItem(
                        customer_id=str(org),
                        person=str(t[2]),
                        kind=WorkKind(t[6].value),
                        start=t[7],
                        end=t[8],
                        billable=t[9],
                        extra_engineer=t[10],
                        id=t[0],
                    )
                    for t in typed
                    if t[7] <= NOW
                ]
                bills = billing.bill_days(items, tz=view.tz)
                expected = billing.statement(
                    led.blocks,
                    bills,
                    start=first,
                    end=last,
                    tz=view.tz,
                    as_of=NOW if closes > NOW else None,
                    customer_id=str(org),
                )
                assert view.statement == expected
                raw = {b.day: b.raw_unscheduled_seconds for b in bills}
                assert [(d.day, d.billed, d.raw_minutes) for d in view.days] == [
                    (u.day, u.billed_minutes, -(-raw.get(u.day, 0) // 60)) for u in expected.usage
                ]
                zone = ZoneInfo(view.tz)
                in_period = [i for i in items if first <= i.start.astimezone(zone).date() <= last]
                assert len(view.entries) >= len(in_period)
                compared += bool(view.entries)
    assert compared, "some periods have entries"
    assert gc.isenabled() == collector_was_enabled, "the collector is back as it was"
