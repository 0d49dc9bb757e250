"""An ASGI entry point configured from the environment, for running under any ASGI server
(``uvicorn --factory agentdesk.server.asgi:app_from_env``) and for multi-process deployments."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import timedelta

from fastapi import FastAPI

from ..paths import default_server_database_url
from .app import create_app
from .notifications.config import SmtpConfig
from .settings import ServerSettings, max_db_connections_from_env


def app_from_env() -> FastAPI:
    """Every setting read from the environment here, once: a bad value stops the start with
    :class:`~.notifications.config.SmtpConfigError` or :class:`~.settings.SettingError`
    naming the variable. ``AGENTDESK_MAX_DB_CONNECTIONS`` is the budget of each process (each
    of ``uvicorn --workers N``): N of them share PostgreSQL's ``max_connections``."""
    url = os.environ.get("AGENTDESK_DATABASE_URL") or default_server_database_url()
    settings = ServerSettings(
        database_url=url, smtp=SmtpConfig.from_env(), expiry_check_interval=timedelta(hours=1)
    )
    budget = max_db_connections_from_env()
    if budget is not None:  # else the settings' default, stated once
        settings = replace(settings, max_db_connections=budget)
    return create_app(settings)
