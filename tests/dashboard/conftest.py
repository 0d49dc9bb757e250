"""A real embedded server with demo data, and a lead's desk (replica + HTTP client + sync
engine) synced from it: the dashboard's figures are computed from that replica.

The demo database is generated once per session (argon2 hashes and a few hundred tickets take
seconds) and copied per test with SQLite's backup API, so each test may change it freely.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentdesk.models.db import make_engine, sqlite_url
from agentdesk.models.migrate import upgrade
from agentdesk.server.demo import DEMO_USERS, generate_demo
from agentdesk.sync.client import ApiClient, UserInfo
from agentdesk.sync.engine import SyncEngine
from agentdesk.sync.replica import Replica
from tests.plugins.live_team import LiveServer

DEMO_TICKETS = 400


@dataclass
class LeadDesk:
    server: LiveServer
    replica: Replica
    client: ApiClient
    engine: SyncEngine
    database: Path
    user: UserInfo

    def sync(self) -> None:
        self.engine.sync_once()


def demo_password(username: str) -> str:
    return next(u.password for u in DEMO_USERS if u.username == username)


@pytest.fixture(scope="session")
def dash_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dashboard-demo") / "server.sqlite3"
    engine = make_engine(sqlite_url(path))
    upgrade(engine)
    generate_demo(engine, tickets=DEMO_TICKETS, seed=12)
    engine.dispose()
    return path


@pytest.fixture
def replica(dash_template: Path, tmp_path: Path) -> Iterator[Replica]:
    """A copy of the demo team's database, opened as a desktop's replica."""
    path = tmp_path / "replica.sqlite3"
    shutil.copyfile(dash_template, path)
    r = Replica(path)
    try:
        yield r
    finally:
        r.close()


def desk_for(server: LiveServer, tmp_path: Path, who: str, database: Path) -> LeadDesk:
    client = ApiClient(server.url, backoff_factor=0.01, connect_timeout=2.0)
    login = client.login(who, demo_password(who))
    replica = Replica(tmp_path / f"replica-{who}.sqlite3")
    replica.configure(
        server_url=server.url,
        tenant_id=login.user.tenant_id,
        user_id=login.user.id,
        username=who,
        role=login.user.role,
        timezone=login.user.team_timezone,
    )
    engine = SyncEngine(replica, client, poke_wait=1.0, backoff_base=0.05, backoff_cap=0.3)
    desk = LeadDesk(server, replica, client, engine, database, login.user)
    desk.sync()
    return desk


@contextmanager
def serving_copy(template: Path, directory: Path) -> Iterator[tuple[LiveServer, Path]]:
    target = directory / "server.sqlite3"
    source, copy = sqlite3.connect(template), sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    server = LiveServer(sqlite_url(target))
    server.start()
    try:
        yield server, target
    finally:
        server.stop()


@contextmanager
def lead_on(template: Path, directory: Path) -> Iterator[LeadDesk]:
    with serving_copy(template, directory) as (server, database):
        desk = desk_for(server, directory, "lead", database)
        try:
            yield desk
        finally:
            desk.client.close()
            desk.replica.close()


@pytest.fixture
def lead_desk(dash_template: Path, tmp_path: Path) -> Iterator[LeadDesk]:
    """A lead's desk on a server of its own: the test may change anything."""
    with lead_on(dash_template, tmp_path) as desk:
        yield desk


@pytest.fixture(scope="module")
def shared_lead(
    dash_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LeadDesk]:
    """One lead's desk for a module's read-only tests (a server start and a sync each cost
    seconds on a loaded machine)."""
    with lead_on(dash_template, tmp_path_factory.mktemp("shared-lead")) as desk:
        yield desk
