"""Fixtures for the desktop UI tests.

Fixture names are prefixed (``panel_``) because several engineers' UI tests share this file.

``panel_team``: the sync tests' world (tests/sync/world.py: plans from the seeds, Globex on
Standard with Ann and Bo validated and Cy not, Initech on Basic/Free with Dee validated and Eve
not, Umbrella on Premium, one user per role) served by a REAL server on a loopback port, with
desks (replica + HTTP client + sync engine) signed in over HTTP. The panels under test act on
a desk's replica exactly as the app does, and a few tests sync to check the server's verdict.
The server runs on SQLite only: these tests are about the desktop, and the server's behaviour
on PostgreSQL is covered by the sync and server suites (running every UI test twice would
double their time for no new coverage).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from sqlalchemy import update

from agentdesk.models import User
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from tests.databases import new_database_url
from tests.plugins.live_team import PASSWORD, Desk, LiveServer, Team, ticket_args
from tests.sync.world import build_world

TEAM_TZ = "America/New_York"


@pytest.fixture
def panel_team(tmp_path: Path) -> Iterator[Team]:
    url = new_database_url("sqlite", tmp_path)
    server = LiveServer(url)
    server.start()
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    world = build_world(sessions)
    password_hash = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    with session_scope(sessions) as s:
        s.execute(update(User).values(password_hash=password_hash))
    team = Team(world=world, server=server, engine=engine, tmp_path=tmp_path)
    yield team
    for desk in team.desks:
        desk.client.close()
        desk.replica.close()
    server.stop()
    engine.dispose()


PanelDesk = Callable[[str], Desk]


@pytest.fixture
def panel_desk(panel_team: Team) -> PanelDesk:
    """A desk signed in as ``who`` (a role name, e.g. "coordinator") and synced once."""

    def make(who: str) -> Desk:
        desk = panel_team.desk(who)
        desk.sync()
        return desk

    return make


def new_ticket(desk: Desk, team: Team, **kw: object) -> uuid.UUID:
    """A ticket created on ``desk`` (from Ann at Globex unless told otherwise)."""
    args = ticket_args(team.world, **kw)
    desk.replica.mutate("create_ticket", args)
    return uuid.UUID(args["ticket_id"])


@dataclass
class FakeClock:
    """An injectable clock for the widgets: time moves only when a test says so."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def quiet_past(span: timedelta, tz: str = TEAM_TZ) -> datetime:
    """A start in the past from which ``span`` ends before the real now and on the same local
    day of the team: the server refuses timer times in the future, and today's totals are per
    local day, so a test's timeline must never straddle the team's midnight."""
    now = datetime.now(UTC)
    start = now - span - timedelta(minutes=1)
    zone = ZoneInfo(tz)
    local = start.astimezone(zone)
    midnight = datetime.combine(
        local.date() + timedelta(days=1), datetime.min.time(), tzinfo=zone
    ).astimezone(UTC)
    if start + span + timedelta(minutes=1) >= midnight:
        start = midnight - span - timedelta(minutes=2)
    return start.replace(second=0, microsecond=0)


@pytest.fixture
def panel_clock() -> FakeClock:
    """A clock 90 minutes before now (same team day), for timelines of up to 85 minutes."""
    return FakeClock(quiet_past(timedelta(minutes=90)))


@pytest.fixture
def inline_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The replica's writer (agentdesk.ui.writer) applies each request inline, on the thread
    that made it, so a test asserts a click's effect right after the click."""
    from agentdesk.ui import writer

    monkeypatch.setattr(writer, "SYNCHRONOUS", True)


@pytest.fixture
def inline_background(monkeypatch: pytest.MonkeyPatch) -> None:
    """Background operations (agentdesk.ui.background: the panels' and the timer's reads) run
    inline, so a test asserts what a panel shows right after asking it to show something."""
    from agentdesk.ui import background

    monkeypatch.setattr(background, "SYNCHRONOUS", True)
