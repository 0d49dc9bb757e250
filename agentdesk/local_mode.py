"""Local mode: with no team server configured, the desktop runs the same server code itself.

An embedded server (SQLite under the user data directory, bound to 127.0.0.1 on a free port)
starts with the app, holds the demo team from the first start on, and the desktop syncs with it
exactly as it would with a team's server - one code path for one user and for a team.

This module composes layers (server + sync) and so lives outside both; the UI calls it through
the desktop start-up, never importing server internals itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from .models import Tenant
from .models.db import make_engine, make_session_factory, session_scope, sqlite_url
from .models.migrate import upgrade
from .paths import data_dir
from .server.demo import DEMO_USERS, generate_demo
from .server.embedded import EmbeddedServer
from .server.settings import ServerSettings

log = logging.getLogger(__name__)

#: Local mode signs in as the demo team lead unless told otherwise: one person wearing every
#: hat sees every screen. Any demo user can be chosen (:data:`LOCAL_PEOPLE`) to try a role.
LOCAL_USER = next(u for u in DEMO_USERS if u.username == "lead")
#: The demo team's people, whom local mode may sign in as: (username, "Name (duty)").
LOCAL_PEOPLE: tuple[tuple[str, str], ...] = tuple(
    (u.username, f"{u.display_name} ({u.duty})") for u in DEMO_USERS
)


def local_password(username: str) -> str:
    """The demo password of ``username`` (public by design); KeyError for anyone else."""
    for user in DEMO_USERS:
        if user.username == username:
            return user.password
    raise KeyError(
        f"{username!r} is not a demo user; local mode signs in as one of "
        f"{', '.join(u.username for u in DEMO_USERS)}"
    )


@dataclass
class LocalMode:
    server: EmbeddedServer
    username: str
    password: str
    database: Path
    seeded_now: bool

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()


def start_local_mode(
    directory: Path | None = None, *, demo_tickets: int | None = None
) -> LocalMode:
    """Start the embedded server, seeding the demo team on the first start only."""
    base = directory or data_dir()
    base.mkdir(parents=True, exist_ok=True)
    database = base / "local-server.sqlite3"
    url = sqlite_url(database)
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(make_session_factory(engine, write=False)) as session:
        has_team = bool(session.scalar(select(func.count()).select_from(Tenant)))
    if not has_team:
        summary = (
            generate_demo(engine)
            if demo_tickets is None
            else generate_demo(engine, tickets=demo_tickets)
        )
        log.info("local mode: created the demo team (%s tickets)", summary.counts.get("tickets"))
    engine.dispose()
    server = EmbeddedServer(ServerSettings(database_url=url)).start()
    return LocalMode(
        server=server,
        username=LOCAL_USER.username,
        password=LOCAL_USER.password,
        database=database,
        seeded_now=not has_team,
    )
