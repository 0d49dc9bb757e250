"""The one writer of local mutations, on its worker thread (the other UI tests run it inline).

A pull page holding the replica's write lock is stood in for by holding that lock from a helper
thread: the click must return without waiting for it, its outcome arrives by signal once the
lock is free, and closing the writer applies every queued click exactly once.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agentdesk.models import EventKind, TicketEvent
from agentdesk.sync.mutators import MutationRejected
from agentdesk.sync.replica import Replica
from agentdesk.ui import writer as writer_module
from agentdesk.ui.writer import CLOSED, MutationWriter, Outcome, Step
from tests.plugins.live_team import Team
from tests.plugins.panels import PanelDesk, new_ticket

#: Longest a test holds the write lock: a writer that waited for it would return only then.
HOLD_SECONDS = 5.0


@pytest.fixture(autouse=True)
def _threaded_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "SYNCHRONOUS", False)


@contextmanager
def write_lock_held(replica: Replica) -> Iterator[threading.Event]:
    """Hold the replica's write lock on another thread (as the sync thread does while it applies
    a pull page) until the yielded event is set, or :data:`HOLD_SECONDS` passed."""
    release, held = threading.Event(), threading.Event()

    def hold() -> None:
        with replica._write_lock:
            held.set()
            release.wait(HOLD_SECONDS)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    try:
        yield release
    finally:
        release.set()
        thread.join()


def _note(ticket_id: uuid.UUID, body: str) -> Step:
    return Step(
        "add_note", {"ticket_id": ticket_id, "body": body, "kind": "note"}, "the note", "note added"
    )


def _notes(replica: Replica, ticket_id: uuid.UUID) -> list[str]:
    with replica.session() as s:
        return list(
            s.scalars(
                select(TicketEvent.body)
                .where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == EventKind.NOTE)
                .order_by(TicketEvent.body)
            )
        )


def test_a_click_returns_at_once_while_a_pull_holds_the_write_lock(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("agent")
    ticket_id = new_ticket(desk, panel_team)
    writer = MutationWriter(desk.replica)
    before = desk.replica.outbox_ids()
    outcomes: list[Outcome] = []
    with write_lock_held(desk.replica) as release:
        writer.submit([_note(ticket_id, "checked the logs")], outcomes.append)
        # Returned while the lock is still held: nothing applied, nothing answered yet.
        assert outcomes == []
        assert desk.replica.outbox_ids() == before
        release.set()
    with qtbot.waitSignal(writer.outcomeReady):
        pass
    [outcome] = outcomes
    assert outcome.ok
    [(client_id, mutation_id)] = outcome.applied
    assert client_id == desk.replica.state.client_id
    assert desk.replica.outbox_ids() == [*before, mutation_id]
    assert _notes(desk.replica, ticket_id) == ["checked the logs"]
    writer.close()


def test_a_refusal_comes_back_by_signal_and_stops_the_rest_of_the_request(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("agent")
    ticket_id = new_ticket(desk, panel_team)
    missing = uuid.uuid4()
    with pytest.raises(MutationRejected) as direct:  # what a direct mutate says
        desk.replica.mutate("add_note", {"ticket_id": missing, "body": "x", "kind": "note"})
    writer = MutationWriter(desk.replica)
    with qtbot.waitSignal(writer.outcomeReady) as signal:
        writer.submit(
            [_note(ticket_id, "first"), _note(missing, "refused"), _note(ticket_id, "never tried")]
        )
    outcome = signal.args[0]
    assert isinstance(outcome, Outcome)
    assert outcome.refusal == direct.value.message
    assert len(outcome.applied) == 1, "the step before the refusal stays applied"
    assert _notes(desk.replica, ticket_id) == ["first"]
    writer.close()


def test_closing_applies_every_queued_click_exactly_once_then_refuses(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("agent")
    ticket_id = new_ticket(desk, panel_team)
    writer = MutationWriter(desk.replica)
    before = desk.replica.outbox_ids()
    outcomes: list[Outcome] = []
    bodies = [f"note {i:02d}" for i in range(20)]
    with write_lock_held(desk.replica) as release:
        for body in bodies:
            writer.submit([_note(ticket_id, body)], outcomes.append)
        assert outcomes == []
        # Quitting now: the lock is freed a moment later, while close() waits for the queue.
        threading.Timer(0.2, release.set).start()
        writer.close()
    assert len(outcomes) == 20, "every request answered once, before close() returned"
    assert all(o.ok for o in outcomes)
    added = desk.replica.outbox_ids()[len(before) :]
    assert len(added) == 20
    assert [m for o in outcomes for _, m in o.applied] == added, "in click order"
    assert sorted(_notes(desk.replica, ticket_id)) == bodies, "none lost, none twice"

    late: list[Outcome] = []
    writer.submit([_note(ticket_id, "after quitting")], late.append)
    assert [o.refusal for o in late] == [CLOSED]
    assert desk.replica.outbox_ids()[len(before) :] == added


def test_one_writer_per_replica_and_closing_it_at_detach(
    panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("agent")
    first = MutationWriter.of(desk.replica)
    assert MutationWriter.of(desk.replica) is first
    MutationWriter.close_for(desk.replica)
    assert first.closed
    assert MutationWriter.of(desk.replica) is not first
    MutationWriter.close_for(desk.replica)


def test_a_reply_is_freed_on_the_gui_thread_not_the_writer_thread(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    """A reply is bound to a panel; the writer thread keeps the request it last applied until
    the next one arrives, and must not be the one to free the reply (and with it, maybe, the
    panel's Qt objects) when it lets go."""
    desk = panel_desk("agent")
    ticket_id = new_ticket(desk, panel_team)
    writer = MutationWriter(desk.replica)
    freed_on: list[str] = []

    class Panel:
        def __del__(self) -> None:
            freed_on.append(threading.current_thread().name)

    panel = Panel()

    def reply(_outcome: Outcome, kept: Panel = panel) -> None:
        pass

    with qtbot.waitSignal(writer.outcomeReady):
        writer.submit([_note(ticket_id, "first")], reply)
    del panel, reply
    with qtbot.waitSignal(writer.outcomeReady):
        writer.submit([_note(ticket_id, "second")])  # the writer thread lets go of the first
    writer.close()
    assert freed_on == [threading.main_thread().name]
