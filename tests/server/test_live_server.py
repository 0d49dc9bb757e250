"""The app behind a real uvicorn on a loopback port, spoken to with ``requests``: real HTTP,
real sockets, the way a desktop in local mode reaches its background server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests
import uvicorn
from fastapi import FastAPI

from agentdesk.server.embedded import EmbeddedServer
from agentdesk.server.settings import ServerSettings
from tests.server.helpers import PASSWORD, World


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def live_url(make_app: Callable[..., FastAPI], world: World) -> Iterator[str]:
    app = make_app()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=_free_port(), log_level="warning", ws="none", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn exited during startup"
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_login_me_logout_over_real_http(live_url: str, world: World) -> None:
    with requests.Session() as http:
        assert http.get(f"{live_url}/healthz", timeout=5).json()["status"] == "ok"
        login = http.post(
            f"{live_url}/api/v1/login",
            timeout=5,
            json={"username": "consultant", "password": PASSWORD},
        )
        assert login.status_code == 200
        assert login.headers["content-type"] == "application/json"
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        me = http.get(f"{live_url}/api/v1/me", headers=headers, timeout=5)
        assert me.status_code == 200
        assert me.json()["username"] == "consultant"
        assert http.post(f"{live_url}/api/v1/logout", headers=headers, timeout=5).status_code == 204
        after = http.get(f"{live_url}/api/v1/me", headers=headers, timeout=5)
        assert after.status_code == 401
        assert after.headers["www-authenticate"] == "Bearer"
        # A raw, malformed body over the wire gets the same JSON error shape.
        bad = http.post(
            f"{live_url}/api/v1/login",
            data=b"{not json",
            timeout=5,
            headers={"content-type": "application/json"},
        )
        assert bad.status_code == 422
        assert bad.json()["error"]["field"] == "body"


@pytest.mark.parametrize("trusted", [(), ("127.0.0.1",)])
def test_forwarded_for_counts_only_from_a_trusted_proxy(
    database_url: str, world: World, trusted: tuple[str, ...]
) -> None:
    """Finding 5 of issue 9: uvicorn believed ``X-Forwarded-For`` from 127.0.0.1 by default,
    so a made-up header dodged the per-address sign-in limit."""
    settings = ServerSettings(
        database_url=database_url,
        login_failures_per_address=3,
        login_failures_per_user=100,
        trusted_proxies=trusted,
    )
    server = EmbeddedServer(settings).start()
    try:
        with requests.Session() as http:
            statuses = [
                http.post(
                    f"{server.url}/api/v1/login",
                    timeout=10,
                    headers={"X-Forwarded-For": f"203.0.113.{i}"},
                    json={"username": f"guess{i}", "password": "wrong!!"},
                ).status_code
                for i in range(5)
            ]
    finally:
        server.stop()
    # Untrusted: every attempt comes from 127.0.0.1 whatever the header says, and the fourth
    # is refused. Behind a trusted proxy, each forwarded client has its own count.
    assert statuses == ([401, 401, 401, 429, 429] if not trusted else [401] * 5)
