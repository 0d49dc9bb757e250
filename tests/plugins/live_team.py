"""Fixtures for the desktop sync tests: a REAL server (the app under uvicorn, on a loopback port,
in a background thread) on the ``database_url`` engine, a seeded team whose members can sign in
over HTTP, and "desks": one desktop each (replica + HTTP client + sync engine).

The server can be stopped and started again on the same port, to test going offline.
Passwords are hashed with cheap argon2 parameters: what matters here is sign-in over HTTP, not
argon2's cost (verification reads the parameters from the hash).
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keyring
import keyring.core
import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from agentdesk.models import User
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from agentdesk.server.app import create_app
from agentdesk.server.settings import ServerSettings
from agentdesk.sync.client import ApiClient, LoginResult
from agentdesk.sync.engine import SyncEngine
from agentdesk.sync.replica import Replica
from tests.databases import new_replica_file
from tests.sync.world import World, build_world

PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """The real app served by uvicorn on 127.0.0.1; ``stop()``/``start()`` keep the port."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app: FastAPI | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        assert not self.running
        # proto=IPPROTO_TCP, or asyncio leaves Nagle on for accepted connections and every
        # keep-alive request waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        app = create_app(ServerSettings(database_url=self.database_url, migrate_on_start=False))
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="on",
            ws="none",
            http="h11",
            loop="asyncio",
            timeout_graceful_shutdown=0.2,  # type: ignore[arg-type]
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{self.port}", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError("the test server did not start")
            time.sleep(0.01)
        self.app, self._server, self._thread, self._sock = app, server, thread, sock

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "the test server did not stop"
        if self._sock is not None:
            self._sock.close()
        if self.app is not None:
            self.app.state.engine.dispose()
        self._server = self._thread = self._sock = None


@dataclass
class Desk:
    """One desktop: a replica, its HTTP client and its sync engine, signed in as ``who``."""

    who: str
    replica: Replica
    client: ApiClient
    engine: SyncEngine
    login: LoginResult
    statuses: list[Any] = field(default_factory=list)

    @property
    def user_id(self) -> uuid.UUID:
        return self.login.user.id

    def sync(self) -> None:
        self.engine.sync_once()

    @contextmanager
    def running(self) -> Iterator[threading.Thread]:
        """The engine's background loop, stopped (and checked to stop) on exit."""
        stop = threading.Event()
        thread = threading.Thread(target=self.engine.run, args=(stop,), daemon=True)
        thread.start()
        try:
            yield thread
        finally:
            stop.set()
            thread.join(timeout=10)
            assert not thread.is_alive(), "the sync loop did not stop"


@dataclass
class Team:
    world: World
    server: LiveServer
    engine: Engine
    tmp_path: Path
    desks: list[Desk] = field(default_factory=list)
    _n: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return self.server.url

    @contextmanager
    def db(self) -> Iterator[Session]:
        """A unit of work on the server's database (assertions, and changes made "by the
        server" behind the desktops' backs)."""
        with session_scope(make_session_factory(self.engine)) as s:
            yield s

    def client(self, url: str | None = None, **kw: Any) -> ApiClient:
        kw.setdefault("backoff_factor", 0.01)
        kw.setdefault("connect_timeout", 2.0)
        return ApiClient(url or self.url, **kw)

    def desk(self, who: str = "agent", **engine_kw: Any) -> Desk:
        """A desktop signed in (over HTTP) as ``who``, not yet synced."""
        client = self.client()
        login = client.login(who, PASSWORD)
        replica = Replica(
            new_replica_file(self.tmp_path / f"replica-{who}-{next(self._n)}.sqlite3")
        )
        replica.configure(
            server_url=self.url,
            tenant_id=login.user.tenant_id,
            user_id=login.user.id,
            username=who,
            role=login.user.role,
            timezone=login.user.team_timezone,
        )
        engine_kw.setdefault("poke_wait", 3.0)
        engine_kw.setdefault("backoff_base", 0.05)
        engine_kw.setdefault("backoff_cap", 0.4)
        statuses: list[Any] = []
        engine = SyncEngine(replica, client, observer=statuses.append, **engine_kw)
        desk = Desk(who, replica, client, engine, login, statuses)
        self.desks.append(desk)
        return desk


@pytest.fixture
def live_server(database_url: str) -> Iterator[LiveServer]:
    server = LiveServer(database_url)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def team(database_url: str, live_server: LiveServer, tmp_path: Path) -> Iterator[Team]:
    """The sync world (tests/sync/world.py) on the live server, with passwords set."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    world = build_world(sessions)
    password_hash = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    with session_scope(sessions) as s:
        s.execute(update(User).values(password_hash=password_hash))
    t = Team(world=world, server=live_server, engine=engine, tmp_path=tmp_path)
    yield t
    for desk in t.desks:
        desk.client.close()
        desk.replica.close()
    live_server.stop()
    engine.dispose()


class MemoryKeyring(KeyringBackend):
    """A keyring that forgets everything at the end of the test."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring's base is unannotated
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.secrets.pop((service, username), None) is None:
            raise PasswordDeleteError("no such password")


@contextmanager
def keyring_backend(backend: KeyringBackend) -> Iterator[KeyringBackend]:
    # Restored through the private global: ``set_keyring(None)`` is not allowed, and calling
    # ``get_keyring()`` first would probe the real system keyring.
    previous = keyring.core._keyring_backend
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.core._keyring_backend = previous


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    from agentdesk.sync import credentials

    with keyring_backend(MemoryKeyring()) as backend:
        yield backend  # type: ignore[misc]
    credentials._memory.clear()


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.01) -> float:
    """Seconds until ``predicate()`` held; fails the test after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)
    return time.monotonic() - started


def ticket_args(world: World, **kw: Any) -> dict[str, Any]:
    """Arguments of a ``create_ticket`` from Ann at Globex (a validated contact)."""
    args: dict[str, Any] = dict(
        ticket_id=str(uuid.uuid4()),
        subject="Checkout is down",
        channel="portal",
        organisation_id=str(world.orgs["globex"]),
        requester_id=str(world.contacts["ann"]),
        stated_urgency=2,
    )
    args.update(kw)
    return args
