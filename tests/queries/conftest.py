"""A small team (tests/sync/world.py) on a fresh database, with a clock the mutators use."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from agentdesk.models.db import make_engine, make_session_factory
from tests.plugins.live_team import ticket_args
from tests.sync.world import World, build_world

#: Late in the year, so a test's ledger (the months before) is all in the past.
NOW = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)


class Ledger:
    """Writes ledger facts through the real mutators, as the given role."""

    def __init__(self, world: World) -> None:
        self.world = world
        world.now = NOW

    def at(self, when: datetime) -> Ledger:
        self.world.now = when
        return self

    def org(self, key: str = "globex") -> uuid.UUID:
        return self.world.orgs[key]

    def user(self, who: str) -> uuid.UUID:
        return self.world.users[who]

    def buy(
        self,
        when: datetime,
        hours: float,
        *,
        org: str = "globex",
        price: str | None = None,
        who: str = "lead",
    ) -> str:
        block = str(uuid.uuid4())
        self.world.run(
            who,
            "record_hour_purchase",
            block_id=block,
            organisation_id=str(self.org(org)),
            minutes=int(hours * 60),
            purchased_at=when.isoformat(),
            price=price,
        )
        return block

    def work(
        self,
        start: datetime,
        end: datetime,
        *,
        org: str = "globex",
        who: str = "consultant",
        **kw: Any,
    ) -> str:
        entry = str(uuid.uuid4())
        args: dict[str, Any] = dict(
            entry_id=entry,
            organisation_id=str(self.org(org)),
            started_at=start.isoformat(),
            ended_at=end.isoformat(),
            note="worked",
        )
        args.update(kw)
        self.world.run(who, "add_time_entry", **args)
        return entry

    def correct(
        self,
        entry: str,
        start: datetime,
        end: datetime,
        *,
        on: datetime,
        note: str,
        who: str = "lead",
        person: str = "consultant",
    ) -> str:
        """``who`` replaces ``person``'s ``entry`` with ``start``-``end`` on ``on`` (a
        correction: a new entry voiding the old one)."""
        return self.at(on).work(
            start,
            end,
            who=who,
            person_id=str(self.user(person)),
            voids_id=entry,
            note=note,
        )

    def ticket(self, **kw: Any) -> uuid.UUID:
        args = ticket_args(self.world, **kw)
        self.world.run("coordinator", "create_ticket", **args)
        return uuid.UUID(args["ticket_id"])

    def session(self) -> Session:
        return self.world.sessions()


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    engine = make_engine(database_url)
    world = build_world(make_session_factory(engine))
    yield Ledger(world)
    engine.dispose()
