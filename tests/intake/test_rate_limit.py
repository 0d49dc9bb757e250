"""The portal's rate limit is one limit for every server process sharing the database: counted
per process, two processes behind nginx let a client through twice as often."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta

import requests
from sqlalchemy import func, select

from agentdesk.models import RateLimitHit, utcnow
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from agentdesk.server.intake.portal import RateLimit
from tests.intake.conftest import Door
from tests.intake.test_portal import _post, _tickets
from tests.plugins.live_team import LiveServer


def test_two_server_processes_share_one_limit(door: Door, database_url: str) -> None:
    other = LiveServer(database_url)
    other.start()
    try:
        second = replace(door, url=other.url)
        statuses = []
        for i in range(6):  # alternately through each server, as a proxy would spread them
            through = door if i % 2 == 0 else second
            r = _post(through, requests.Session(), subject=f"Spread {i} {uuid.uuid4().hex[:6]}")
            statuses.append(r.status_code)
        r = _post(second, requests.Session())
    finally:
        other.stop()
    assert statuses == [201] * 5 + [429]
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0
    assert _tickets(door) == 5


def test_the_window_passes_and_old_hits_are_forgotten(database_url: str, door: Door) -> None:
    engine = make_engine(database_url)
    sessions = make_session_factory(engine, write=True)
    now = [utcnow()]

    def clock() -> datetime:
        return now[0]

    first, second = (
        RateLimit(sessions, limit=2, window=timedelta(minutes=10), clock=clock) for _ in range(2)
    )
    try:
        assert first.allow("203.0.113.9") is None
        now[0] += timedelta(minutes=4)
        assert second.allow("203.0.113.9") is None
        assert second.allow("198.51.100.1") is None  # another address has its own count
        wait = first.allow("203.0.113.9")
        assert wait is not None
        assert 5 * 60 < wait <= 6 * 60  # until the first hit is ten minutes old
        now[0] += timedelta(minutes=6, seconds=1)
        assert second.allow("203.0.113.9") is None
        with session_scope(sessions) as s:
            left = s.scalar(
                select(func.count())
                .select_from(RateLimitHit)
                .where(RateLimitHit.key == "203.0.113.9")
            )
        assert left == 2  # the expired hit was deleted
    finally:
        engine.dispose()
