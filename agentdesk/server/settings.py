"""Server settings, declared once with their defaults and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ..sync.protocol import PROTOCOL_VERSION


@dataclass(frozen=True)
class ServerSettings:
    database_url: str
    #: How long a login token lives. Desktops sign in again after this; a day keeps a stolen
    #: token's window short while sparing agents a sign-in every morning break.
    token_ttl: timedelta = timedelta(hours=24)
    #: Request bodies above this are refused with 413 before they are parsed.
    max_body_bytes: int = 1024 * 1024
    #: Failed logins allowed per username / per client address within the window.
    login_failures_per_user: int = 5
    login_failures_per_address: int = 20
    login_failure_window: timedelta = timedelta(minutes=15)
    #: Upgrade the database schema when the app starts.
    migrate_on_start: bool = True
    #: Worker threads for sync (``def``) handlers - push, pull and most routes - and the size
    #: of the database connection pool that serves them (see ``app.pool_options``). 40 is
    #: AnyIO's own default; the app sets it explicitly so the pool cannot drift from it.
    request_threads: int = 40
    #: The oldest desktop sync protocol served (``sync.protocol.PROTOCOL_VERSION``). Older
    #: desktops get 426 ``client_too_old`` on ``/api/v1/sync/*`` and keep their unsent work.
    min_client_protocol: int = PROTOCOL_VERSION
