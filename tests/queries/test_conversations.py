"""The one count of an organisation's conversations in a calendar year (seed 000), on SQLite and
PostgreSQL: the team's wall-clock year, deleted and redirected tickets left out, the ticket being
opened excluded, and a ticket's position within its year."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from agentdesk.models import Ticket, TicketStatus
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from agentdesk.models.versioning import enable_stamping
from agentdesk.policy import entitlements
from agentdesk.policy.errors import PolicyError
from agentdesk.queries.conversations import (
    conversations_in_year,
    conversations_in_year_by_organisation,
    conversations_this_year,
)
from tests.sync.world import World, build_world

NY = "America/New_York"


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    engine = make_engine(database_url)
    try:
        yield build_world(make_session_factory(engine))
    finally:
        engine.dispose()


def add_ticket(
    world: World,
    arrived_at: datetime,
    *,
    org: str = "initech",
    status: TicketStatus = TicketStatus.NEW,
    deleted: bool = False,
    ticket_id: uuid.UUID | None = None,
) -> uuid.UUID:
    requester = {"initech": "dee", "globex": "ann"}[org]
    with session_scope(world.sessions) as s:
        enable_stamping(s, world.tenant)
        t = Ticket(
            tenant_id=world.tenant,
            subject="Help",
            channel="portal",
            organisation_id=world.orgs[org],
            requester_id=world.contacts[requester],
            stated_urgency=3,
            urgency=3,
            arrived_at=arrived_at,
            status=status,
            deleted=deleted,
        )
        if ticket_id is not None:
            t.id = ticket_id
        s.add(t)
        s.flush()
        return t.id


def count(sessions: sessionmaker[Session], *args: object, **kw: object) -> int:
    with session_scope(sessions) as s:
        return conversations_in_year(s, *args, **kw)  # type: ignore[arg-type]


def test_counts_the_teams_wall_clock_year(world: World) -> None:
    org = world.orgs["initech"]
    # 03:00 UTC on 1 January 2026 is still New Year's Eve 2025 in New York.
    add_ticket(world, datetime(2026, 1, 1, 3, 0, tzinfo=UTC))
    add_ticket(world, datetime(2026, 1, 1, 6, 0, tzinfo=UTC))
    add_ticket(world, datetime(2026, 12, 31, 23, 0, tzinfo=UTC))  # 18:00 in New York
    add_ticket(world, datetime(2027, 1, 1, 4, 59, tzinfo=UTC))  # 23:59 on 31 Dec in New York
    add_ticket(world, datetime(2027, 1, 1, 5, 0, tzinfo=UTC))  # midnight: 2027
    assert count(world.sessions, org, 2025, NY) == 1
    assert count(world.sessions, org, 2026, NY) == 3
    assert count(world.sessions, org, 2027, NY) == 1
    assert count(world.sessions, org, 2026, "UTC") == 3


def test_leaves_out_deleted_redirected_other_organisations_and_the_excluded(world: World) -> None:
    org = world.orgs["initech"]
    at = datetime(2026, 3, 1, 15, tzinfo=UTC)
    kept = add_ticket(world, at)
    add_ticket(world, at, deleted=True)
    add_ticket(world, at, status=TicketStatus.REDIRECTED)
    add_ticket(world, at, status=TicketStatus.RESOLVED)  # worked, so it counts
    add_ticket(world, at, org="globex")
    assert count(world.sessions, org, 2026, NY) == 2
    assert count(world.sessions, org, 2026, NY, exclude=kept) == 1
    with session_scope(world.sessions) as s:
        now = datetime(2026, 6, 1, tzinfo=UTC)
        assert conversations_this_year(s, org, now, NY) == 2
        assert conversations_this_year(s, org, now, NY, exclude=kept) == 1
        assert conversations_this_year(s, org, now + timedelta(days=365), NY) == 0


def test_position_within_the_year_breaks_ties_by_id(world: World) -> None:
    org = world.orgs["initech"]
    at = datetime(2026, 5, 5, 12, tzinfo=UTC)
    low, high = uuid.UUID(int=1), uuid.UUID(int=2**127)
    add_ticket(world, at - timedelta(days=200))  # 2025 in New York: another year
    add_ticket(world, at - timedelta(hours=1))
    add_ticket(world, at, ticket_id=high)
    add_ticket(world, at, ticket_id=low)
    add_ticket(world, at + timedelta(hours=1))
    assert count(world.sessions, org, 2026, NY, before=(at, low)) == 1
    assert count(world.sessions, org, 2026, NY, before=(at, high)) == 2
    assert count(world.sessions, org, 2026, NY, before=(at + timedelta(hours=2), low)) == 4


def test_agrees_with_the_rules_count_over_the_same_arrivals(world: World) -> None:
    """The SQL range and the policy's own per-arrival year function are the same rule."""
    org = world.orgs["initech"]
    start = datetime(2025, 12, 31, 0, tzinfo=UTC)
    arrivals = [start + timedelta(hours=3 * i + 0.5) for i in range(24)]
    for at in arrivals:
        add_ticket(world, at)
    for tz in (NY, "UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"):
        for year in (2025, 2026):
            assert count(world.sessions, org, year, tz) == entitlements.conversations_in_year(
                arrivals, year, tz
            ), (tz, year)


def test_unknown_zone_is_a_policy_error(world: World) -> None:
    with pytest.raises(PolicyError) as err:
        count(world.sessions, world.orgs["initech"], 2026, "Mars/Olympus_Mons")
    assert err.value.field == "tz"


def test_the_grouped_count_is_the_same_rule_per_organisation(world: World) -> None:
    """The team lead's allowance figures count every organisation at once; each count is what
    the one-organisation count says (year edges in the team's zone, deleted and redirected
    tickets left out)."""
    for org in ("initech", "globex"):
        add_ticket(world, datetime(2026, 1, 1, 3, 0, tzinfo=UTC), org=org)  # 2025 in New York
        add_ticket(world, datetime(2026, 1, 1, 6, 0, tzinfo=UTC), org=org)
        add_ticket(world, datetime(2027, 1, 1, 5, 0, tzinfo=UTC), org=org)
    add_ticket(world, datetime(2026, 6, 1, tzinfo=UTC), deleted=True)
    add_ticket(world, datetime(2026, 6, 1, tzinfo=UTC), status=TicketStatus.REDIRECTED)
    add_ticket(world, datetime(2026, 6, 1, tzinfo=UTC), status=TicketStatus.CLOSED)
    orgs = [world.orgs["initech"], world.orgs["globex"]]
    for year in (2025, 2026, 2027):
        with session_scope(world.sessions) as s:
            grouped = conversations_in_year_by_organisation(s, orgs, year, NY)
        expected = {o: count(world.sessions, o, year, NY) for o in orgs}
        assert grouped == {o: n for o, n in expected.items() if n}, year
    with session_scope(world.sessions) as s:
        assert conversations_in_year_by_organisation(s, orgs, 2026, NY) == {
            world.orgs["initech"]: 2,
            world.orgs["globex"]: 1,
        }
        assert conversations_in_year_by_organisation(s, orgs[1:], 2026, NY) == {
            world.orgs["globex"]: 1
        }
