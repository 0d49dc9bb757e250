"""/healthz and /metrics: what an operator's probes and Prometheus rely on."""

from __future__ import annotations

import re
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from anyio import to_thread
from sqlalchemy import event, text
from sqlalchemy.pool import NullPool, QueuePool

from agentdesk.models.db import make_engine, make_session_factory
from agentdesk.server.app import create_app, pool_options, request_threads
from agentdesk.server.asgi import app_from_env
from agentdesk.server.embedded import EmbeddedServer
from agentdesk.server.settings import (
    MAX_DB_CONNECTIONS_VARIABLE,
    ServerSettings,
    SettingError,
    max_db_connections_from_env,
)
from agentdesk.sync.protocol import PROTOCOL_HEADER, PROTOCOL_VERSION
from tests.server.helpers import PASSWORD, Login, TestClient, World, seed_tenant


def test_healthz_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_healthz_503_when_the_database_is_unreachable(kind: str, tmp_path: Path) -> None:
    # No server needs to run for either: a directory is no SQLite file, and nothing listens on
    # port 1. No TestClient context: the app's startup would try to LISTEN on PostgreSQL.
    url = (
        f"sqlite+pysqlite:///{tmp_path}"
        if kind == "sqlite"
        else "postgresql+psycopg://postgres@127.0.0.1:1/agentdesk?connect_timeout=2"
    )
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
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[len(name) : line.rindex("}")]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_are_labelled_by_route_template(
    client: TestClient, world: World, login: Login
) -> None:
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
    assert (
        _sample(text, "agentdesk_http_requests_total", method="GET", route=template, status="404")
        == 2
    )
    assert (
        _sample(text, "agentdesk_http_requests_total", method="GET", route=template, status="200")
        == 1
    )
    assert (
        _sample(
            text,
            "agentdesk_http_requests_total",
            method="POST",
            route="/api/v1/login",
            status="200",
        )
        == 1
    )
    assert (
        _sample(
            text, "agentdesk_http_requests_total", method="GET", route="unmatched", status="404"
        )
        == 1
    )
    assert (
        _sample(text, "agentdesk_http_request_duration_seconds_count", method="GET", route=template)
        == 3
    )
    assert (
        _sample(
            text,
            "agentdesk_http_request_duration_seconds_bucket",
            method="GET",
            route=template,
            le="+Inf",
        )
        == 3
    )
    for state in ("checked_out", "idle", "overflow"):
        value = _sample(text, "agentdesk_db_pool_connections", state=state)
        assert value is not None
        assert value >= 0


def test_request_threads_match_the_pool_and_the_pool_never_overflows(
    database_url: str, db_kind: str
) -> None:
    """One request thread per pooled connection (on PostgreSQL one of the budget is LISTEN),
    and no overflow: the budget is a ceiling, not a starting size."""
    app = create_app(
        ServerSettings(database_url=database_url, migrate_on_start=False, max_db_connections=12)
    )
    pool = app.state.engine.pool
    assert isinstance(pool, QueuePool)
    threads = 11 if db_kind == "postgresql" else 12
    assert (pool.size(), pool._max_overflow) == (threads, 0)
    try:
        with TestClient(app) as client:

            async def tokens() -> float:
                return to_thread.current_default_thread_limiter().total_tokens

            assert client.portal is not None
            assert client.portal.call(tokens) == threads
            assert client.get("/healthz").status_code == 200
    finally:
        app.state.engine.dispose()
    # An in-memory SQLite database keeps its single-connection pool.
    assert pool_options(ServerSettings(database_url="sqlite://")) == {}
    with pytest.raises(ValueError, match="max_db_connections must be at least 2"):
        ServerSettings(database_url=database_url, max_db_connections=1)


@pytest.mark.parametrize(
    "value", ["1", "0", "-3", "twenty", "20.5", "10001", "\uff12\uff10", "2 0"]
)
def test_a_connection_budget_in_the_environment_that_cannot_be_used_is_refused_by_name(
    value: str,
) -> None:
    with pytest.raises(SettingError) as caught:
        max_db_connections_from_env({MAX_DB_CONNECTIONS_VARIABLE: value})
    assert caught.value.variable == "AGENTDESK_MAX_DB_CONNECTIONS"
    assert str(caught.value) == (
        "AGENTDESK_MAX_DB_CONNECTIONS must be a whole number from 2 (one connection for "
        f"requests, one for PostgreSQL's LISTEN) to 10000, not {value!r}"
    )


def test_a_connection_budget_in_the_environment_is_read_when_set() -> None:
    assert max_db_connections_from_env({MAX_DB_CONNECTIONS_VARIABLE: " 15 "}) == 15
    assert max_db_connections_from_env({MAX_DB_CONNECTIONS_VARIABLE: "2"}) == 2
    assert max_db_connections_from_env({MAX_DB_CONNECTIONS_VARIABLE: ""}) is None
    assert max_db_connections_from_env({}) is None


def test_the_asgi_entry_point_takes_its_connection_budget_from_the_environment(
    database_url: str, db_kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``uvicorn --factory agentdesk.server.asgi:app_from_env --workers N`` (issue 14): each
    worker's budget comes from ``AGENTDESK_MAX_DB_CONNECTIONS``, the default without it, and
    a value it cannot use stops the start before the database is touched."""
    monkeypatch.setenv("AGENTDESK_DATABASE_URL", database_url)
    for value, budget in (("7", 7), (None, ServerSettings.max_db_connections)):
        if value is None:
            monkeypatch.delenv(MAX_DB_CONNECTIONS_VARIABLE)
        else:
            monkeypatch.setenv(MAX_DB_CONNECTIONS_VARIABLE, value)
        app = app_from_env()
        try:
            assert app.state.agentdesk.settings.max_db_connections == budget
            pool = app.state.engine.pool
            assert isinstance(pool, QueuePool)
            assert pool.size() == budget - (1 if db_kind == "postgresql" else 0)
            # What a running worker was given, for its operator: /metrics says it.
            metrics = app.state.metrics.render().decode()
            assert f"\nagentdesk_db_connections_budget {float(budget)}\n" in metrics
        finally:
            app.state.engine.dispose()

    untouched = tmp_path / "never-created.sqlite3"
    monkeypatch.setenv("AGENTDESK_DATABASE_URL", f"sqlite+pysqlite:///{untouched}")
    monkeypatch.setenv(MAX_DB_CONNECTIONS_VARIABLE, "1")
    with pytest.raises(SettingError, match=r"^AGENTDESK_MAX_DB_CONNECTIONS must be"):
        app_from_env()
    assert not untouched.exists()


def test_a_server_never_opens_more_connections_than_its_budget(
    database_url: str, db_kind: str
) -> None:
    """Issue 14's team load: three processes sized for 40 request threads each asked a
    PostgreSQL with ``max_connections = 100`` for ~155 connections. Three times as many
    concurrent desktops as the budget, pulling and probing: every request is answered (none
    a 5xx; they queue for a thread inside the process), the pool never has more connections
    out than the budget, and PostgreSQL never sees more from the process than the budget."""
    budget, desktops, rounds = 4, 12, 8
    seed = make_engine(database_url, poolclass=NullPool)
    seed_tenant(make_session_factory(seed))
    seed.dispose()
    server = EmbeddedServer(
        ServerSettings(database_url=database_url, migrate_on_start=False, max_db_connections=budget)
    ).start()
    lock = threading.Lock()
    out = [0, 0]  # checked out now, most at once

    def checkout(*_args: object) -> None:
        with lock:
            out[0] += 1
            out[1] = max(out)

    def checkin(*_args: object) -> None:
        with lock:
            out[0] -= 1

    pool = server.app.state.engine.pool
    event.listen(pool, "checkout", checkout)
    event.listen(pool, "checkin", checkin)
    stop = threading.Event()
    seen_by_postgres = [0]

    def watch() -> None:
        watcher = make_engine(database_url, poolclass=NullPool)
        with watcher.connect() as conn:
            while not stop.is_set():
                n = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
                seen_by_postgres[0] = max(seen_by_postgres[0], int(n))
                time.sleep(0.005)
        watcher.dispose()

    statuses: list[int] = []

    def desktop() -> None:
        with requests.Session() as http:
            login = http.post(
                f"{server.url}/api/v1/login",
                timeout=60,
                json={"username": "agent", "password": PASSWORD},
            )
            statuses.append(login.status_code)
            headers = {
                "Authorization": f"Bearer {login.json()['token']}",
                PROTOCOL_HEADER: str(PROTOCOL_VERSION),
            }
            client_id = str(uuid.uuid4())
            for _ in range(rounds):
                pull = http.post(
                    f"{server.url}/api/v1/sync/pull",
                    headers=headers,
                    timeout=60,
                    json={"client_id": client_id, "cursor": 0, "limit": 500},
                )
                statuses.append(pull.status_code)
                statuses.append(http.get(f"{server.url}/healthz", timeout=60).status_code)

    watcher = threading.Thread(target=watch, daemon=True)
    if db_kind == "postgresql":
        watcher.start()
    try:
        clients = [threading.Thread(target=desktop, daemon=True) for _ in range(desktops)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(timeout=120)
        assert not any(c.is_alive() for c in clients)
    finally:
        stop.set()
        server.stop()
        if watcher.is_alive():
            watcher.join(timeout=10)
    assert len(statuses) == desktops * (1 + 2 * rounds)
    assert sorted(set(statuses)) == [200]
    assert 1 <= out[1] <= request_threads(server.settings)
    if db_kind == "postgresql":
        # The LISTEN connection included: the whole budget, never more.
        assert 1 <= seen_by_postgres[0] <= budget
