"""The server's logs, captured from a real ``agentdesk server`` process serving real requests:
JSON lines when stderr is not a terminal, a request id on every line of a request (the one the
response carries), and never a password, token or customer message text."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import requests
from sqlalchemy import select

from agentdesk.models import Ticket
from agentdesk.models.db import make_engine
from agentdesk.server.demo import generate_demo
from agentdesk.server.logs import JsonFormatter, RequestIdFilter, redact, resolve_format
from tests.plugins.live_team import free_port

MARKER = "Customer says: my card 4111-1111-1111-1111 and grandma's maiden name Zyxwq"


def _start(url: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentdesk",
            "server",
            "--port",
            str(port),
            "--log-level",
            "debug",
            *extra,
        ],
        env={**os.environ, "AGENTDESK_DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                raise AssertionError(proc.communicate()[1])
            try:
                if requests.get(f"{base}/healthz", timeout=10).ok:
                    return proc, base
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server did not start")
            time.sleep(0.1)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        raise


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == ""
    return err


def test_logs_of_real_requests_are_json_with_request_ids_and_no_secrets(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    summary = generate_demo(engine, seed=2, tickets=10)
    agent = next(u for u in summary.users if u.role.value == "agent")
    with engine.connect() as conn:
        ticket_id = conn.execute(select(Ticket.id).limit(1)).scalar_one()
    engine.dispose()

    proc, base = _start(database_url)
    answers: list[tuple[str, requests.Response]] = []
    try:
        login = requests.post(
            f"{base}/api/v1/login",
            timeout=10,
            json={"username": agent.username, "password": agent.password},
        )
        assert login.status_code == 200
        answers.append(("login", login))
        token = login.json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        client_id = str(uuid.uuid4())
        push = requests.post(
            f"{base}/api/v1/sync/push",
            timeout=10,
            headers={**auth, "X-Request-ID": "trace-42.a"},
            json={
                "client_id": client_id,
                "mutations": [
                    {
                        "id": 1,
                        "name": "add_note",
                        "args": {"ticket_id": str(ticket_id), "body": MARKER},
                    },
                    {
                        "id": 2,
                        "name": "tell_customer",
                        "args": {"ticket_id": str(ticket_id), "message": MARKER},
                    },
                ],
            },
        )
        assert push.status_code == 200, push.text
        assert push.headers["X-Request-ID"] == "trace-42.a"
        answers.append(("push", push))
        # Refused input that echoes nothing of the body into the log either.
        bad = requests.post(
            f"{base}/api/v1/sync/push",
            headers=auth,
            timeout=10,
            json={
                "client_id": client_id,
                "mutations": [
                    {"id": 3, "name": "add_note", "args": {"body": MARKER}},
                    {"id": "x", "name": MARKER},
                ],
            },
        )
        assert bad.status_code in (200, 422)
        answers.append(("bad", bad))
        # A request id that is not a short safe token is replaced, not echoed.
        odd = requests.get(
            f"{base}/healthz",
            params={"token": token},
            timeout=10,
            headers={"X-Request-ID": 'evil" \\n {"level": "x"}'},
        )
        assert odd.headers["X-Request-ID"] != 'evil" \\n {"level": "x"}'
        answers.append(("odd", odd))
        wrong = requests.post(
            f"{base}/api/v1/login",
            timeout=10,
            json={"username": agent.username, "password": "Wrong-Pa55word"},
        )
        assert wrong.status_code == 401
        answers.append(("wrong", wrong))
    finally:
        err = _stop(proc)

    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert len(lines) >= len(answers) + 2
    for line in lines:
        assert {"ts", "level", "logger", "message", "request_id"} <= set(line)
    access = [line for line in lines if line["logger"] == "agentdesk.access"]
    for what, response in answers:
        rid = response.headers["X-Request-ID"]
        mine = [line for line in access if line["request_id"] == rid]
        assert len(mine) == 1, (what, rid)
        assert mine[0]["status"] == response.status_code
        assert mine[0]["method"] == response.request.method
        assert "?" not in mine[0]["path"]
        assert mine[0]["duration_ms"] >= 0
    # A line written inside the push handler carries the push's request id.
    pushed = [line for line in lines if line["message"].startswith("push from client")]
    assert [line["request_id"] for line in pushed][:1] == ["trace-42.a"]
    # Outside requests (start, stop) the id is "-".
    assert any(line["request_id"] == "-" and "starting" in line["message"] for line in lines)
    for secret in (agent.password, "Wrong-Pa55word", token, MARKER, "4111", "Zyxwq"):
        assert secret not in err, secret


def test_formats_and_redaction_helpers() -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    assert resolve_format("auto", Tty()) == "text"
    assert resolve_format("auto", object()) == "json"
    assert resolve_format("json", Tty()) == "json"
    assert redact("GET /x?token=abc&password=pw HTTP/1.1") == (
        "GET /x?token=***&password=*** HTTP/1.1"
    )
    assert redact("Authorization: Bearer eyJhbGci.x-y") == "Authorization: Bearer ***"
    record: Any = logging.LogRecord(
        "agentdesk.x", logging.WARNING, __file__, 1, "hi %s", ("there",), None
    )
    RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hi there"
    assert line["request_id"] == "-"
    assert line["level"] == "warning"


def test_an_unhandled_error_is_logged_with_its_request_id_and_answered_500(
    tmp_path: Any,
) -> None:
    from fastapi.testclient import TestClient

    from agentdesk.models.db import sqlite_url
    from agentdesk.server.app import create_app
    from agentdesk.server.settings import ServerSettings

    app = create_app(ServerSettings(database_url=sqlite_url(tmp_path / "s.sqlite3")))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("agentdesk.server")
    logger.addHandler(handler)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/boom", headers={"X-Request-ID": "bug-report-7"})
    finally:
        logger.removeHandler(handler)
        app.state.engine.dispose()
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "bug-report-7"
    errors = [r for r in records if r.exc_info]
    assert [getattr(r, "request_id", None) for r in errors] == ["bug-report-7"]
    assert "RuntimeError: a bug" in JsonFormatter().format(errors[0])
