"""An ASGI entry point configured from the environment, for running under any ASGI server
(``uvicorn --factory agentdesk.server.asgi:app_from_env``) and for multi-process deployments."""

from __future__ import annotations

import os
from datetime import timedelta

from fastapi import FastAPI

from ..paths import default_server_database_url
from .app import create_app
from .notifications.config import SmtpConfig
from .settings import ServerSettings


def app_from_env() -> FastAPI:
    """Every setting read from the environment here, once: a bad value stops the start with
    :class:`~.notifications.config.SmtpConfigError` naming the variable."""
    url = os.environ.get("AGENTDESK_DATABASE_URL") or default_server_database_url()
    return create_app(
        ServerSettings(
            database_url=url, smtp=SmtpConfig.from_env(), expiry_check_interval=timedelta(hours=1)
        )
    )
