"""A delivery's state and its ticket's history line are one transaction: the sender never leaves
a delivery marked sent with no "Email sent to ..." line, nor the line with a delivery still due
(which would go out again). A failed record is tried again, so the customer gets the message
once; if the history keeps failing, the state is recorded alone rather than sending it again."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agentdesk.models import DeliveryStatus, EventKind, NotificationDelivery, TicketEvent
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from agentdesk.server.notifications import history
from agentdesk.server.notifications import sender as sender_module
from agentdesk.server.notifications.sender import RetryPolicy, Sender
from tests.notifications.conftest import Api, ticket_args
from tests.notifications.test_sender import Clock, Smtp, smtp

__all__ = ["smtp"]

#: No pause between tries: the test is about what is recorded, not how long it waits.
QUICK = RetryPolicy(record_pause=timedelta(0))


State = tuple[list[tuple[str, DeliveryStatus]], list[str]]


@pytest.fixture
def reader(database_url: str) -> Iterator[sessionmaker[Session]]:
    """Read-only sessions on an engine of their own: they look at the database while the
    sender's transaction is open (SQLite: WAL lets them, without the write lock)."""
    engine = make_engine(database_url)
    yield make_session_factory(engine, write=False)
    engine.dispose()


def _state(reader: sessionmaker[Session]) -> State:
    """(email, status) of each delivery, and the addresses of the history's "sent" events."""
    with session_scope(reader) as s:
        deliveries = [
            (d.email, d.status)
            for d in s.scalars(select(NotificationDelivery).order_by(NotificationDelivery.email))
        ]
        sent_lines = sorted(
            str(e.data.get("email"))
            for e in s.scalars(
                select(TicketEvent).where(TicketEvent.kind == EventKind.NOTIFICATION)
            )
            if e.data.get("delivery") == "sent"
        )
    return deliveries, sent_lines


def _failing_history(
    reader: sessionmaker[Session], failures: int, seen: list[State]
) -> Callable[..., int]:
    """``add_sent_events`` that raises the first ``failures`` times, after recording what the
    database holds for everyone else at that moment (``seen``)."""
    real = history.add_sent_events
    calls = 0

    def add_sent_events(
        session: Session, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID], now: datetime
    ) -> int:
        nonlocal calls
        calls += 1
        seen.append(_state(reader))
        if calls <= failures:
            # The deliveries are already marked sent in this transaction: the error must take
            # that back with it.
            raise RuntimeError("the history write failed")
        return real(session, tenant_id, ids, now)

    return add_sent_events


def test_a_failed_history_write_takes_the_sent_mark_with_it_and_is_tried_again(
    api: Api, smtp: Smtp, reader: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    api.push("agent", ("create_ticket", ticket_args(api.world, who="cy")))  # Ann, Bo, Cy
    seen: list[State] = []
    monkeypatch.setattr(sender_module, "add_sent_events", _failing_history(reader, 1, seen))
    clock = Clock()
    sender = Sender(api.world.sessions, smtp.config(), QUICK, clock=clock)
    assert sender.run_once().sent == 3
    # The second try saw what the first left: nothing marked sent, no history line.
    deliveries_then, lines_then = seen[1]
    assert {status for _email, status in deliveries_then} == {DeliveryStatus.SENDING}
    assert lines_then == []
    deliveries, sent_lines = _state(reader)
    assert {status for _e, status in deliveries} == {DeliveryStatus.SENT}
    assert sent_lines == ["ann@globex.test", "bo@globex.test", "cy@globex.test"]
    # Delivered once each: nothing went out again, now or after the lease.
    clock.now += timedelta(hours=1)
    assert sender.drain().claimed == 0
    assert sorted(str(m["To"]) for m in smtp.inbox.messages) == [
        "Ann <ann@globex.test>",
        "Bo <bo@globex.test>",
        "Cy <cy@globex.test>",
    ]


def test_a_history_that_keeps_failing_never_gets_a_message_sent_twice(
    api: Api,
    smtp: Smtp,
    reader: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.push("agent", ("create_ticket", ticket_args(api.world)))  # Ann
    seen: list[State] = []
    monkeypatch.setattr(sender_module, "add_sent_events", _failing_history(reader, 99, seen))
    clock = Clock()
    sender = Sender(api.world.sessions, smtp.config(), QUICK, clock=clock)
    with caplog.at_level(logging.WARNING, logger=sender_module.__name__):
        assert sender.run_once().sent == 1
    assert len(seen) == QUICK.record_tries
    assert all(state == ([("ann@globex.test", DeliveryStatus.SENDING)], []) for state in seen)
    # Recorded as sent without the line (and said so), so that the lease's end does not send it
    # again: the customer's inbox matters more than the history.
    assert _state(reader) == ([("ann@globex.test", DeliveryStatus.SENT)], [])
    assert any(
        r.levelno == logging.ERROR and "kept failing" in r.getMessage() for r in caplog.records
    )
    clock.now += timedelta(hours=1)
    assert sender.drain().claimed == 0
    assert len(smtp.inbox.messages) == 1


def test_a_failure_note_and_the_failed_mark_are_one_transaction(
    api: Api, smtp: Smtp, reader: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    api.push("agent", ("create_ticket", ticket_args(api.world)))
    smtp.inbox.refuse = {"ann@globex.test"}
    real = history.add_failure_notes
    calls: list[tuple[str, DeliveryStatus]] = []

    def add_failure_notes(
        session: Session, tenant_id: uuid.UUID, errors: dict[uuid.UUID, str], now: datetime
    ) -> int:
        calls.extend(_state(reader)[0])
        if len(calls) == 1:
            raise RuntimeError("the note could not be written")
        return real(session, tenant_id, errors, now)

    monkeypatch.setattr(sender_module, "add_failure_notes", add_failure_notes)
    assert Sender(api.world.sessions, smtp.config(), QUICK).run_once().failed == 1
    assert calls == [("ann@globex.test", DeliveryStatus.SENDING)] * 2
    with session_scope(reader) as s:
        [row] = s.scalars(select(NotificationDelivery))
        assert row.status is DeliveryStatus.FAILED
        assert row.attempts == 1  # counted once, not once per try
        notes = [e for e in s.scalars(select(TicketEvent)) if e.data.get("delivery_failed")]
        assert len(notes) == 1
        assert "550" in notes[0].body
