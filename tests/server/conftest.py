"""Server fixtures: an app and TestClient per database, a seeded tenant with one user per role,
and a ``login(username)`` helper.

Passwords are hashed with cheap argon2 parameters here (the production parameters cost ~150 ms
a hash, and these tests sign in hundreds of times); what is tested is that the server hashes
and verifies, not argon2's cost settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from agentdesk.models import Base
from agentdesk.models.db import make_engine, make_session_factory
from agentdesk.server import security
from agentdesk.server.app import create_app
from agentdesk.server.settings import ServerSettings
from tests.server.helpers import PASSWORD, Login, TestClient, World, client_for, seed_tenant


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(security, "_hasher", hasher)
    # Unknown usernames are verified against this dummy, so it must be cheap too.
    monkeypatch.setattr(security, "_DUMMY_HASH", hasher.hash("not-a-real-password"))


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[Engine]:
    """One migrated PostgreSQL database for the server tests, emptied before each test."""
    from tests.databases import drop_database, new_database_url

    url = new_database_url("postgresql", Path("unused"))
    engine = make_engine(url, poolclass=NullPool)
    yield engine
    engine.dispose()
    drop_database(url)


@pytest.fixture
def database_url(db_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """Overrides the suite-wide fixture with the same guarantee (every test starts from an
    empty, migrated schema) at a fraction of the cost: on SQLite a copy of a migrated file, on
    PostgreSQL one database whose tables are truncated before each test."""
    if db_kind != "postgresql":
        from tests.databases import new_database_url

        yield new_database_url("sqlite", tmp_path)
        return
    engine: Engine = request.getfixturevalue("_pg_database")
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        # A connection leaked by an earlier test would block TRUNCATE: fail, never hang.
        conn.execute(text("SET LOCAL lock_timeout = '10s'"))
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    yield engine.url.render_as_string(hide_password=False)


@pytest.fixture
def make_app(database_url: str) -> Iterator[Callable[..., FastAPI]]:
    """Apps on the test's database with settings overridden per call."""
    made: list[FastAPI] = []

    def make(**overrides: Any) -> FastAPI:
        overrides.setdefault("migrate_on_start", False)
        app = create_app(ServerSettings(database_url=database_url, **overrides))
        made.append(app)
        return app

    yield make
    for app in made:
        app.state.engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client that does not run the app's lifespan: these endpoints need none of it (it starts
    the sync change feed), and starting it costs a PostgreSQL LISTEN connection per test. The
    live-server test runs the app with its lifespan."""
    with client_for(app) as client:
        yield client


@pytest.fixture
def sessions(app: FastAPI) -> sessionmaker[Session]:
    return make_session_factory(app.state.engine)


@pytest.fixture
def engine(app: FastAPI) -> Engine:
    engine: Engine = app.state.engine
    return engine


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> World:
    return seed_tenant(sessions)


@pytest.fixture
def other_world(sessions: sessionmaker[Session], world: World) -> World:
    """A second tenant on the same server (usernames ``b-<role>``)."""
    return seed_tenant(sessions, prefix="b-", name="Initech Helpdesk")


@pytest.fixture
def login(client: TestClient, world: World) -> Login:
    """``login("lead")`` -> the ``Authorization`` header of a fresh token for that user."""

    def do_login(username: str, password: str = PASSWORD) -> dict[str, str]:
        response = client.post("/api/v1/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    return do_login
