"""Where AgentDesk keeps its files: the platformdirs user data directory, or
``AGENTDESK_DATA_DIR`` (tests and portable installs)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "AgentDesk"


def data_dir() -> Path:
    override = os.environ.get("AGENTDESK_DATA_DIR")
    path = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, APP_NAME))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_server_database_url() -> str:
    """The embedded server's SQLite file (local mode and ``agentdesk server`` by default)."""
    return f"sqlite+pysqlite:///{data_dir() / 'server.sqlite3'}"
