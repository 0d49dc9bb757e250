"""A database the server cannot reach answers 503 with Retry-After, never a 500: the desktop's
client retries a 503 with backoff, and the request changed nothing.

The outage is real: the server's PostgreSQL database is dropped, or its SQLite file's folder
removed, after the app started.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from agentdesk.models.db import make_engine, sqlite_url
from agentdesk.models.migrate import upgrade
from agentdesk.server.app import create_app
from agentdesk.server.settings import ServerSettings
from tests.databases import drop_database, new_database_url
from tests.server.helpers import client_for


def test_sign_in_while_the_database_is_gone_is_a_503_with_retry_after(
    db_kind: str, tmp_path: Path
) -> None:
    if db_kind == "sqlite":
        folder = tmp_path / "gone"
        folder.mkdir()
        url = sqlite_url(folder / "server.sqlite3")
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
    else:
        url = new_database_url(db_kind, tmp_path)
    app = create_app(ServerSettings(database_url=url, migrate_on_start=False))
    try:
        app.state.engine.dispose()
        if db_kind == "sqlite":
            shutil.rmtree(folder)
        else:
            drop_database(url)
        with client_for(app) as client:
            resp = client.post(
                "/api/v1/login", json={"username": "dana", "password": "whatever-it-is"}
            )
            assert resp.status_code == 503, resp.text
            assert resp.headers["Retry-After"] == "1"
            assert resp.json()["error"]["code"] == "unavailable"
            assert "try again" in resp.json()["error"]["message"]
            assert client.get("/healthz").status_code == 503
    finally:
        app.state.engine.dispose()
        if db_kind != "sqlite":
            drop_database(url)
