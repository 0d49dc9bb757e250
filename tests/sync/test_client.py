"""The desktop's HTTP client against a real server: sign-in, typed errors, retries, secrecy."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from agentdesk.models import LoginFailure, Role
from agentdesk.sync.client import (
    ApiClient,
    BadRequest,
    Forbidden,
    Offline,
    ResetRequired,
    ServerError,
    TlsError,
    Unauthorized,
)
from agentdesk.sync.credentials import TokenStore
from agentdesk.sync.protocol import Mutation, PullRequest, PushRequest
from tests.plugins.live_team import PASSWORD, MemoryKeyring, Team, free_port, ticket_args


def test_login_returns_the_user_and_the_token_goes_to_the_keyring(
    team: Team, memory_keyring: MemoryKeyring
) -> None:
    client = team.client()
    result = client.login("coordinator", PASSWORD)
    assert result.user.username == "coordinator"
    assert result.user.role is Role.COORDINATOR
    assert result.user.id == team.world.users["coordinator"]
    assert result.user.tenant_id == team.world.tenant
    assert result.user.team_timezone == "America/New_York"
    assert client.signed_in
    assert client.me() == result.user

    outcome = TokenStore(team.url, "coordinator").save(result.token)
    assert outcome.persisted
    assert memory_keyring.secrets == {("agentdesk", f"{team.url}|coordinator"): result.token}
    assert result.token not in repr(result)
    assert result.token not in repr(client)
    client.close()


def test_sign_in_errors_are_typed_and_not_retried(team: Team) -> None:
    client = team.client()
    with pytest.raises(Unauthorized) as exc:
        client.login("agent", "not the password")
    assert exc.value.status == 401
    assert exc.value.code == "bad_credentials"
    assert exc.value.message == "wrong username or password"
    assert not client.signed_in
    with team.db() as s:
        failures = s.scalar(select(func.count()).select_from(LoginFailure))
    assert failures == 1, "a 4xx must not be retried"
    with pytest.raises(BadRequest) as bad:
        client.login("bad name!", PASSWORD)
    assert (bad.value.status, bad.value.code, bad.value.field) == (422, "invalid", "username")
    client.close()


def test_a_closed_port_is_offline() -> None:
    client = ApiClient(f"http://127.0.0.1:{free_port()}", retries=2, backoff_factor=0.01)
    with pytest.raises(Offline) as exc:
        client.poke(0, 0)
    assert "127.0.0.1" in exc.value.message
    assert exc.value.status is None
    client.close()


def test_after_logout_the_token_is_unauthorized(team: Team) -> None:
    client = team.client()
    token = client.login("agent", PASSWORD).token
    client.pull(PullRequest(client_id=uuid.uuid4(), cursor=0))
    client.logout()
    assert not client.signed_in
    with pytest.raises(Unauthorized):  # no token at all
        client.pull(PullRequest(client_id=uuid.uuid4(), cursor=0))
    client.token = token  # the revoked token, replayed
    with pytest.raises(Unauthorized) as exc:
        client.pull(PullRequest(client_id=uuid.uuid4(), cursor=0))
    assert "revoked" in exc.value.message
    client.close()


def test_another_users_client_id_is_forbidden(team: Team) -> None:
    alice, bob = team.client(), team.client()
    alice.login("agent", PASSWORD)
    bob.login("agent2", PASSWORD)
    client_id = uuid.uuid4()
    alice.pull(PullRequest(client_id=client_id, cursor=0))
    alice.push(
        PushRequest(
            client_id=client_id,
            mutations=[Mutation(id=1, name="create_ticket", args=ticket_args(team.world))],
        )
    )
    with pytest.raises(Forbidden) as exc:
        bob.push(
            PushRequest(
                client_id=client_id,
                mutations=[Mutation(id=2, name="create_ticket", args=ticket_args(team.world))],
            )
        )
    assert exc.value.field == "client_id"
    alice.close()
    bob.close()


def test_a_cursor_beyond_the_server_requires_a_reset(team: Team) -> None:
    client = team.client()
    client.login("agent", PASSWORD)
    with pytest.raises(ResetRequired) as exc:
        client.pull(PullRequest(client_id=uuid.uuid4(), cursor=10**9))
    assert exc.value.response.reset
    assert exc.value.response.cursor == 0
    client.close()


# --------------------------------------------------------------------------- retries


class _Flaky(BaseHTTPRequestHandler):
    """Answers each path from a script of (status, body) pairs; the last one repeats."""

    script: dict[str, list[tuple[int, dict[str, object]]]] = {}
    hits: dict[str, int] = {}

    def _answer(self) -> None:
        path = self.path.split("?")[0]
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        n = self.hits.get(path, 0)
        self.hits[path] = n + 1
        steps = self.script[path]
        status, body = steps[min(n, len(steps) - 1)]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    _Flaky.hits = {}
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_pushes_are_retried_on_503_and_4xx_are_not(flaky: str) -> None:
    unavailable: tuple[int, dict[str, object]] = (
        503,
        {"error": {"code": "busy", "message": "try again", "field": None}},
    )
    pushed: tuple[int, dict[str, object]] = (
        200,
        {"last_mutation_id": 1, "results": [{"id": 1, "status": "applied"}], "version": 7},
    )
    _Flaky.script = {
        "/api/v1/sync/push": [unavailable, unavailable, pushed],
        "/api/v1/sync/pull": [
            (409, {"error": {"code": "conflict", "message": "no", "field": "cursor"}})
        ],
        "/api/v1/sync/poke": [(502, {})],
    }
    client = ApiClient(flaky, token="t0k3n", retries=3, backoff_factor=0.01)
    request = PushRequest(
        client_id=uuid.uuid4(), mutations=[Mutation(id=1, name="add_note", args={})]
    )
    assert client.push(request).last_mutation_id == 1
    assert _Flaky.hits["/api/v1/sync/push"] == 3
    with pytest.raises(BadRequest) as exc:
        client.pull(PullRequest(client_id=uuid.uuid4(), cursor=0))
    assert (exc.value.status, exc.value.field) == (409, "cursor")
    assert _Flaky.hits["/api/v1/sync/pull"] == 1
    with pytest.raises(ServerError) as server_error:
        client.poke(0, 0)
    assert server_error.value.status == 502
    assert _Flaky.hits["/api/v1/sync/poke"] == 4  # the first try and three retries
    client.close()


def test_an_answer_off_the_protocol_is_a_server_error(flaky: str) -> None:
    _Flaky.script = {"/api/v1/sync/poke": [(200, {"version": "many"})]}
    client = ApiClient(flaky, retries=0)
    with pytest.raises(ServerError) as exc:
        client.poke(0, 0)
    assert exc.value.code == "bad_response"
    client.close()


def test_tls_is_verified_by_default_and_a_ca_bundle_can_be_named(flaky: str) -> None:
    assert ApiClient("https://support.example").verify is True
    assert ApiClient("https://support.example", ca_bundle="/etc/team-ca.pem").verify == (
        "/etc/team-ca.pem"
    )
    with pytest.raises(ValueError, match="not a server address"):
        ApiClient("support.example")
    # Speaking TLS to a plain-HTTP server fails the handshake, and says so: not "offline".
    _Flaky.script = {"/api/v1/sync/poke": [(200, {"version": 1, "changed": True})]}
    client = ApiClient(flaky.replace("http://", "https://"), retries=1, backoff_factor=0.01)
    with pytest.raises(TlsError):
        client.poke(0, 0)
    assert client.headers["User-Agent"].startswith("AgentDesk/")
    client.close()


def test_the_token_never_reaches_the_logs(team: Team, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = team.client()
    token = client.login("agent", PASSWORD).token
    client_id = uuid.uuid4()
    client.push(
        PushRequest(
            client_id=client_id,
            mutations=[Mutation(id=1, name="create_ticket", args=ticket_args(team.world))],
        )
    )
    client.pull(PullRequest(client_id=client_id, cursor=0))
    client.poke(0, 0)
    client.me()
    with pytest.raises(ResetRequired):
        client.pull(PullRequest(client_id=client_id, cursor=10**9))
    client.logout()
    client.token = token
    with pytest.raises(Unauthorized):
        client.me()
    assert "POST /api/v1/sync/push -> 200" in caplog.text  # the client did log, at DEBUG
    assert "Starting new HTTP connection" in caplog.text  # and so did urllib3
    assert token not in caplog.text
    assert token not in repr(client)
    assert token not in repr(client.auth)
    client.close()
