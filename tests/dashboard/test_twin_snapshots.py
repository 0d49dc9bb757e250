"""Two snapshots of one instant, and the dashboard read on two threads in them.

:func:`agentdesk.queries.snapshot.pin_twins` must give two read transactions that see the same
commit even when a writer commits while they are taken, must not wait behind a long write, and
:func:`agentdesk.queries.dashboard_live.start` must read its two large parts on two threads and
still equal the one-snapshot computation."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, QueuePool, select

from agentdesk.models import Ticket
from agentdesk.models.db import make_engine
from agentdesk.models.migrate import upgrade
from agentdesk.queries import dashboard as dash
from agentdesk.queries import dashboard_live as live_mod
from agentdesk.queries import snapshot
from agentdesk.sync.replica import Replica

RANGE = timedelta(days=30)


def subject_in(pin: snapshot.Pin, ticket: Any) -> str:
    with pin.session() as s:
        return str(s.scalar(select(Ticket.subject).where(Ticket.id == ticket)))


def test_no_commit_can_land_between_the_two_pins(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that tries to commit right after the first pin is taken (as the sync thread
    may) is refused until both are taken; both see the replica as it was."""
    with replica.engine.connect() as conn:
        ticket, subject = conn.execute(select(Ticket.id, Ticket.subject).limit(1)).one()
    path = str(replica.engine.url.database)
    change = "UPDATE tickets SET subject = 'changed meanwhile' WHERE id = ?"
    refused: list[str] = []
    real_pin = snapshot.Pin

    def pin_then_write(engine: Engine, **kw: Any) -> snapshot.Pin:
        pin = real_pin(engine, **kw)
        if not refused:
            with closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as writer:
                try:
                    writer.execute(change, (ticket.hex,))
                    refused.append("committed")  # without the lock: lands between the pins
                except sqlite3.OperationalError as error:
                    refused.append(str(error))
        return pin

    monkeypatch.setattr(snapshot, "Pin", pin_then_write)
    first, second = snapshot.pin_twins(replica.engine)
    assert second is not None
    try:
        assert refused == ["database is locked"]
        assert subject_in(first, ticket) == subject
        assert subject_in(second, ticket) == subject
    finally:
        first.close()
        second.close()
    with closing(sqlite3.connect(path, timeout=5, isolation_level=None)) as writer:
        writer.execute(change, (ticket.hex,))  # after: at once


def test_a_write_in_progress_gives_one_pin_at_once(replica: Replica) -> None:
    path = str(replica.engine.url.database)
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # a pull page being applied
        started = time.monotonic()
        first, second = snapshot.pin_twins(replica.engine)
        waited = time.monotonic() - started
        other.execute("ROLLBACK")
    try:
        assert second is None
        assert waited < 10 * snapshot.TWIN_LOCK_WAIT_S + 1
        with first.session() as s:
            assert s.scalar(select(Ticket.id).limit(1)) is not None
    finally:
        first.close()


def test_an_in_memory_database_gets_one_pin() -> None:
    """No file to open a locking connection on: one pin, read on one thread."""
    engine = make_engine("sqlite+pysqlite:///:memory:")
    try:
        upgrade(engine)
        first, second = snapshot.pin_twins(engine)
        assert second is None
        first.close()
    finally:
        engine.dispose()


def record_response_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads ``start`` reads the first responses on."""
    threads: list[str] = []
    real = dash.response_rows

    def recorded(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(live_mod, "response_rows", recorded)
    return threads


def record_pins(
    monkeypatch: pytest.MonkeyPatch,
) -> list[tuple[snapshot.Pin, snapshot.Pin | None]]:
    """The pins ``start`` takes, as :func:`snapshot.pin_twins` hands them out."""
    taken: list[tuple[snapshot.Pin, snapshot.Pin | None]] = []

    def recording(engine: Engine, *, checkpoint: bool = False) -> Any:
        pair = snapshot.pin_twins(engine, checkpoint=checkpoint)
        taken.append(pair)
        return pair

    monkeypatch.setattr(live_mod, "pin_twins", recording)
    return taken


def checked_out(r: Replica) -> int:
    pool = r.engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedout()


def full(r: Replica, at: datetime) -> dash.Dashboard:
    with r.session() as s:
        return dash.compute(s, at, at - RANGE, at)


def test_start_reads_the_responses_on_a_second_thread_and_equals_the_computation(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = record_response_threads(monkeypatch)
    pins = record_pins(monkeypatch)
    at = datetime.now(UTC).replace(microsecond=0)
    live = live_mod.start(replica.engine, at, at - RANGE, at)
    try:
        assert len(threads) == 1
        assert threads[0].startswith("dashboard-read")
        assert live.dashboard == full(replica, at)
        first, twin = pins[0]
        assert live.pin is first
        assert not first.closed
        assert twin is not None
        assert twin.closed, "the twin is let go once read"
    finally:
        live.close()
    assert checked_out(replica) == 0


def test_without_a_twin_start_reads_on_its_own_thread_and_equals_the_computation(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = record_response_threads(monkeypatch)
    monkeypatch.setattr(
        live_mod,
        "pin_twins",
        lambda engine, checkpoint=False: (snapshot.Pin(engine, checkpoint=checkpoint), None),
    )
    at = datetime.now(UTC).replace(microsecond=0)
    live = live_mod.start(replica.engine, at, at - RANGE, at)
    try:
        assert threads == [threading.current_thread().name]
        assert live.dashboard == full(replica, at)
    finally:
        live.close()


def test_an_error_on_the_second_thread_reaches_the_caller_and_both_snapshots_are_let_go(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr(live_mod, "response_rows", broken)
    pins = record_pins(monkeypatch)
    at = datetime.now(UTC).replace(microsecond=0)
    with pytest.raises(RuntimeError, match="disk I/O error"):
        live_mod.start(replica.engine, at, at - RANGE, at)
    first, twin = pins[0]
    assert first.closed
    assert twin is not None
    assert twin.closed
    assert checked_out(replica) == 0
