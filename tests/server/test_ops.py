"""/healthz and /metrics: what an operator's probes and Prometheus rely on."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from anyio import to_thread
from sqlalchemy.pool import QueuePool

from agentdesk.server.app import create_app, pool_options
from agentdesk.server.settings import ServerSettings
from tests.server.helpers import Login, TestClient, World


def test_healthz_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_healthz_503_when_the_database_is_unreachable(kind: str, tmp_path: Path) -> None:
    # No server needs to run for either: a directory is no SQLite file, and nothing listens on
    # port 1. No TestClient context: the app's startup would try to LISTEN on PostgreSQL.
    url = (f"sqlite+pysqlite:///{tmp_path}" if kind == "sqlite"
           else "postgresql+psycopg://postgres@127.0.0.1:1/agentdesk?connect_timeout=2")
    app = create_app(ServerSettings(database_url=url, migrate_on_start=False))
    try:
        response = TestClient(app).get("/healthz")
    finally:
        app.state.engine.dispose()
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample, matching all the given labels."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[len(name):line.rindex("}")]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_are_labelled_by_route_template(client: TestClient, world: World,
                                                login: Login) -> None:
    lead = login("lead")
    ids = [uuid.uuid4(), uuid.uuid4()]
    for plan_id in ids:
        assert client.get(f"/api/v1/plans/{plan_id}", headers=lead).status_code == 404
    assert client.get(f"/api/v1/plans/{world.basic}", headers=lead).status_code == 200
    assert client.get(f"/no/such/{ids[0]}").status_code == 404
    text = client.get("/metrics").text
    for plan_id in ids:
        assert str(plan_id) not in text
    template = "/api/v1/plans/{plan_id}"
    assert _sample(text, "agentdesk_http_requests_total", method="GET", route=template,
                   status="404") == 2
    assert _sample(text, "agentdesk_http_requests_total", method="GET", route=template,
                   status="200") == 1
    assert _sample(text, "agentdesk_http_requests_total", method="POST",
                   route="/api/v1/login", status="200") == 1
    assert _sample(text, "agentdesk_http_requests_total", method="GET", route="unmatched",
                   status="404") == 1
    assert _sample(text, "agentdesk_http_request_duration_seconds_count", method="GET",
                   route=template) == 3
    assert _sample(text, "agentdesk_http_request_duration_seconds_bucket", method="GET",
                   route=template, le="+Inf") == 3
    for state in ("checked_out", "idle", "overflow"):
        value = _sample(text, "agentdesk_db_pool_connections", state=state)
        assert value is not None
        assert value >= 0


def test_every_request_thread_has_a_pooled_connection(database_url: str) -> None:
    """Push and pull hold one connection per worker thread: the pool is as large as the
    thread limiter (plus overflow), and the app sets the limiter to that count."""
    app = create_app(ServerSettings(database_url=database_url, migrate_on_start=False,
                                    request_threads=12))
    pool = app.state.engine.pool
    assert isinstance(pool, QueuePool)
    assert (pool.size(), pool._max_overflow) == (12, 3)
    try:
        with TestClient(app) as client:
            async def tokens() -> float:
                return to_thread.current_default_thread_limiter().total_tokens

            assert client.portal is not None
            assert client.portal.call(tokens) == 12
            assert client.get("/healthz").status_code == 200
    finally:
        app.state.engine.dispose()
    # An in-memory SQLite database keeps its single-connection pool.
    assert pool_options(ServerSettings(database_url="sqlite://")) == {}
