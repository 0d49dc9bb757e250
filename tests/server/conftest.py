"""Server fixtures: an app and TestClient per database, a seeded tenant with one user per role,
and a ``login(username)`` helper.

Passwords are hashed with cheap argon2 parameters here (the production parameters cost ~150 ms
a hash, and these tests sign in hundreds of times); what is tested is that the server hashes
and verifies, not argon2's cost settings.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from agentdesk.models.db import make_session_factory
from agentdesk.server import security
from agentdesk.server.app import create_app
from agentdesk.server.settings import ServerSettings
from tests.server.helpers import PASSWORD, Login, TestClient, World, seed_tenant


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


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
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


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
        response = client.post("/api/v1/login",
                               json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    return do_login


@pytest.fixture
def unique() -> Callable[[str], str]:
    """``unique("plan")`` -> "plan-1", "plan-2", ...: names that never clash within a test."""
    counter = itertools.count(1)
    return lambda stem: f"{stem}-{next(counter)}"
