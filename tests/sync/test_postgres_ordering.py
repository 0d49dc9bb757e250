"""PostgreSQL under concurrency: versions become visible in commit order, and a change pushed
to one server process wakes a poller on another (LISTEN/NOTIFY)."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from agentdesk.models import AuthToken, Ticket, utcnow
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from agentdesk.models.versioning import current_version, enable_stamping
from agentdesk.server.security import token_hash
from tests.databases import drop_database, new_database_url
from tests.sync.world import World, build_world

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_world(tmp_path: Path) -> Iterator[tuple[str, World]]:
    url = new_database_url("postgresql", tmp_path)
    engine = make_engine(url, pool_size=20)
    yield url, build_world(make_session_factory(engine))
    engine.dispose()
    drop_database(url)


def test_a_concurrent_puller_never_skips_a_version(pg_world: tuple[str, World]) -> None:
    """Writers sleep randomly between taking a version and committing; a puller polls
    "version > cursor" the whole time. Every row must be seen, none skipped."""
    _, world = pg_world
    sessions = world.sessions
    rng = random.Random(7)
    delays = [rng.uniform(0, 0.05) for _ in range(120)]
    seen: set[uuid.UUID] = set()
    done = threading.Event()
    errors: list[BaseException] = []

    def writer(chunk: list[float]) -> None:
        try:
            for delay in chunk:
                with session_scope(sessions) as s:
                    enable_stamping(s, world.tenant)
                    org = world.orgs["globex"]
                    s.add(
                        Ticket(
                            tenant_id=world.tenant,
                            subject="race",
                            channel="portal",
                            organisation_id=org,
                            requester_id=world.contacts["ann"],
                            stated_urgency=3,
                            urgency=3,
                            plan_rank=1,
                            arrived_at=utcnow(),
                        )
                    )
                    s.flush()  # version taken, counter row locked
                    time.sleep(delay)  # ... commit late
        except BaseException as exc:
            errors.append(exc)

    def puller() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            with session_scope(sessions) as s:
                head = current_version(s, world.tenant)
                rows = s.execute(
                    select(Ticket.id, Ticket.version).where(
                        Ticket.subject == "race", Ticket.version > cursor, Ticket.version <= head
                    )
                ).all()
            for row_id, _version in rows:
                seen.add(row_id)
            cursor = head
            if finished:
                return
            time.sleep(0.002)

    writers = [threading.Thread(target=writer, args=(delays[i::6],)) for i in range(6)]
    reader = threading.Thread(target=puller)
    reader.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    done.set()
    reader.join()
    assert errors == []
    with session_scope(sessions) as s:
        all_ids = set(s.scalars(select(Ticket.id).where(Ticket.subject == "race")))
        versions = sorted(s.scalars(select(Ticket.version).where(Ticket.subject == "race")))
    assert len(all_ids) == 120
    assert len(set(versions)) == 120, "each transaction took its own version"
    assert seen == all_ids, f"the puller skipped {len(all_ids - seen)} rows"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "agentdesk.server.asgi:app_from_env",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env={**os.environ, "AGENTDESK_DATABASE_URL": url},
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise AssertionError(f"server on {port} did not start: {log.read_text()}")


def test_a_push_to_one_process_wakes_a_poller_on_another(
    pg_world: tuple[str, World], tmp_path: Path
) -> None:
    url, world = pg_world
    token = f"tok-{uuid.uuid4().hex}"
    with session_scope(world.sessions) as s:
        s.add(
            AuthToken(
                user_id=world.users["agent"],
                token_hash=token_hash(token),
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
    headers = {"Authorization": f"Bearer {token}"}
    a_port, b_port = _free_port(), _free_port()
    a = _start_server(url, a_port, tmp_path / "a.log")
    b = _start_server(url, b_port, tmp_path / "b.log")
    try:
        head = requests.get(
            f"http://127.0.0.1:{b_port}/api/v1/sync/poke",
            params={"cursor": 0, "wait": 0},
            headers=headers,
            timeout=5,
        ).json()
        result: dict[str, float] = {}

        def poll() -> None:
            started = time.monotonic()
            r = requests.get(
                f"http://127.0.0.1:{b_port}/api/v1/sync/poke",
                params={"cursor": head["version"], "wait": 20},
                headers=headers,
                timeout=30,
            )
            result.update(r.json(), elapsed=time.monotonic() - started)

        poller = threading.Thread(target=poll)
        poller.start()
        time.sleep(0.5)
        pushed_at = time.monotonic()
        r = requests.post(
            f"http://127.0.0.1:{a_port}/api/v1/sync/push",
            headers=headers,
            timeout=10,
            json={
                "client_id": str(uuid.uuid4()),
                "mutations": [
                    {
                        "id": 1,
                        "name": "create_ticket",
                        "args": {
                            "ticket_id": str(uuid.uuid4()),
                            "subject": "cross-process",
                            "channel": "portal",
                            "organisation_id": str(world.orgs["globex"]),
                            "requester_id": str(world.contacts["ann"]),
                            "stated_urgency": 2,
                        },
                    }
                ],
            },
        )
        assert r.status_code == 200, r.text
        poller.join(timeout=25)
        assert result["changed"] is True
        assert result["version"] > head["version"]
        woke_after = time.monotonic() - pushed_at
        # Woken by NOTIFY, well before the 2 s database re-check or the 20 s timeout.
        assert woke_after < 1.5, woke_after
    finally:
        for proc in (a, b):
            proc.terminate()
            proc.wait(timeout=10)
