"""Server settings, declared once with their defaults and why."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from ..sync.protocol import PROTOCOL_VERSION
from .notifications.config import SmtpConfig


@dataclass(frozen=True)
class ServerSettings:
    database_url: str
    #: How long a login token lives. Desktops sign in again after this; a day keeps a stolen
    #: token's window short while sparing agents a sign-in every morning break.
    token_ttl: timedelta = timedelta(hours=24)
    #: Request bodies above this are refused with 413 before they are parsed.
    max_body_bytes: int = 1024 * 1024
    #: Sign-in throttling (``routes.auth``). Failures count per (username, address): after
    #: ``login_failures_per_user`` of them that pair waits ``login_delay``, doubling with every
    #: further failure up to the window; the right password from another address is never
    #: held up by them (a lockout by username let anyone lock a teammate out). An address is
    #: refused outright after ``login_failures_per_address`` failures for any usernames.
    login_failures_per_user: int = 5
    login_failures_per_address: int = 20
    login_failure_window: timedelta = timedelta(minutes=15)
    login_delay: timedelta = timedelta(seconds=30)
    #: The portal's limit: valid submissions per client address per window, counted in the
    #: database so it holds across server processes (``intake.portal.RateLimit``).
    portal_submissions_per_address: int = 5
    portal_submission_window: timedelta = timedelta(minutes=10)
    #: Reverse proxies whose ``X-Forwarded-For`` names the client (IP addresses or networks,
    #: as uvicorn's ``forwarded_allow_ips``). None by default: a made-up header from anyone
    #: else must not move a client to another address and out of its throttle.
    trusted_proxies: tuple[str, ...] = ()
    #: Upgrade the database schema when the app starts.
    migrate_on_start: bool = True
    #: The most database connections one server process ever opens: its pool and, on
    #: PostgreSQL, the LISTEN connection (see ``app.pool_options``). The process runs as many
    #: request threads as its pool holds connections, so a burst waits for a thread inside the
    #: process rather than asking the database for more. Several processes on one PostgreSQL
    #: fit when processes x this <= ``max_connections`` - what else connects (docs/deploy.md);
    #: 20 lets three processes share PostgreSQL's default 100 with room for the rest.
    max_db_connections: int = 20
    #: The oldest desktop sync protocol served (``sync.protocol.PROTOCOL_VERSION``). Older
    #: desktops get 426 ``client_too_old`` on ``/api/v1/sync/*`` and keep their unsent work.
    min_client_protocol: int = PROTOCOL_VERSION
    #: Outgoing mail, read once at start (``SmtpConfig.from_env`` in the entry points) and
    #: validated then: ``None`` keeps every notification queued (local mode). Nothing reads the
    #: environment per request.
    smtp: SmtpConfig | None = None
    #: How often this process looks for prepaid-hours expiry warnings owed (``notifications.
    #: expiry``); ``None``: never. The server's entry points turn it on (hourly); tests and the
    #: desktop's local mode call the check themselves. Each warning is queued once per block
    #: and threshold however many processes check.
    expiry_check_interval: timedelta | None = None

    def __post_init__(self) -> None:
        if self.max_db_connections < MIN_DB_CONNECTIONS:
            raise ValueError(
                f"max_db_connections must be at least {MIN_DB_CONNECTIONS} (one "
                f"for requests, one for PostgreSQL's LISTEN), got "
                f"{self.max_db_connections}"
            )


#: One pooled connection for the request threads and one for PostgreSQL's LISTEN.
MIN_DB_CONNECTIONS = 2
#: The most a budget may say: far above any PostgreSQL's ``max_connections``, so a typo with
#: extra digits is caught rather than taken.
MAX_DB_CONNECTIONS = 10_000
#: The connection budget in the environment: how the ASGI entry point
#: (``agentdesk.server.asgi:app_from_env``) is told it, and what ``agentdesk server`` uses when
#: it has no ``--max-db-connections``.
MAX_DB_CONNECTIONS_VARIABLE = "AGENTDESK_MAX_DB_CONNECTIONS"


class SettingError(ValueError):
    """A server variable in the environment holds a value the server cannot use."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable} {problem}")
        self.variable = variable


def max_db_connections_from_env(env: Mapping[str, str] | None = None) -> int | None:
    """The budget in ``AGENTDESK_MAX_DB_CONNECTIONS``; ``None`` when unset or blank (the
    settings' default applies). Raises :class:`SettingError`, naming the variable, on a value
    that is not a whole number from :data:`MIN_DB_CONNECTIONS` to :data:`MAX_DB_CONNECTIONS`."""
    env = os.environ if env is None else env
    text = env.get(MAX_DB_CONNECTIONS_VARIABLE, "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not (
        MIN_DB_CONNECTIONS <= int(text) <= MAX_DB_CONNECTIONS
    ):
        raise SettingError(
            MAX_DB_CONNECTIONS_VARIABLE,
            f"must be a whole number from {MIN_DB_CONNECTIONS} (one connection for requests, "
            f"one for PostgreSQL's LISTEN) to {MAX_DB_CONNECTIONS}, not {text!r}",
        )
    return int(text)
