"""The sync bridge: the engine's loop on its own thread, reported as signals on the GUI thread.

Against a real server (``panel_team`` in tests/plugins/panels.py): statuses and replica changes
arrive on the GUI thread, pulls name the tickets they changed (what the queue needs to update
rows in place) once they are committed, refusals surface, going offline and coming back is
reported with the pending count, and stop() joins the thread. The bridge learns what a pull
changed from the engine's page observer, not by wrapping the client.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agentdesk.models import Ticket
from agentdesk.sync.engine import AppliedPage, SyncStatus
from agentdesk.sync.protocol import Change, Mutation, PullResponse
from agentdesk.ui.shell.sync_bridge import (
    ReplicaChange,
    SyncBridge,
    change_of_applied,
    change_of_mutations,
    change_of_page,
)
from tests.plugins.live_team import Desk, Team
from tests.plugins.panels import PanelDesk, new_ticket


class Recorder:
    """Everything a bridge emitted, and on which thread each slot ran."""

    def __init__(self, bridge: SyncBridge) -> None:
        self.statuses: list[SyncStatus] = []
        self.changes: list[ReplicaChange] = []
        self.kinds: list[str] = []
        self.rejections: list[object] = []
        self.threads: set[threading.Thread] = set()
        bridge.statusChanged.connect(self._status)
        bridge.changesArrived.connect(self._change)
        bridge.replicaChanged.connect(self._kind)
        bridge.rejectionsArrived.connect(self._rejections)

    def _status(self, status: SyncStatus) -> None:
        self.threads.add(threading.current_thread())
        self.statuses.append(status)

    def _change(self, change: ReplicaChange) -> None:
        self.threads.add(threading.current_thread())
        self.changes.append(change)

    def _kind(self, kind: str) -> None:
        self.kinds.append(kind)

    def _rejections(self, rejections: list[object]) -> None:
        self.rejections.extend(rejections)

    @property
    def state(self) -> str | None:
        return self.statuses[-1].state if self.statuses else None

    def changed_tickets(self) -> set[uuid.UUID]:
        return {t for c in self.changes for t in c.ticket_ids}


@pytest.fixture
def bridged(qtbot: QtBot, panel_desk: PanelDesk) -> Iterator[tuple[Desk, SyncBridge, Recorder]]:
    desk = panel_desk("agent")
    bridge = SyncBridge(desk.replica, desk.engine)
    recorder = Recorder(bridge)
    bridge.start()
    qtbot.waitUntil(lambda: recorder.state == "online", timeout=10_000)
    yield desk, bridge, recorder
    assert bridge.stop(), "the sync thread did not stop"


def test_a_pull_names_the_tickets_it_changed_on_the_gui_thread(
    qtbot: QtBot,
    panel_team: Team,
    panel_desk: PanelDesk,
    bridged: tuple[Desk, SyncBridge, Recorder],
) -> None:
    _desk, _bridge, rec = bridged
    other = panel_desk("coordinator")
    ticket = new_ticket(other, panel_team)
    other.sync()
    qtbot.waitUntil(lambda: ticket in rec.changed_tickets(), timeout=10_000)
    assert "pull" in rec.kinds
    assert rec.threads == {threading.main_thread()}
    change = next(c for c in rec.changes if ticket in c.ticket_ids)
    assert {"tickets", "ticket_events"} <= change.tables
    assert not change.everything


def test_a_local_mutation_is_reported_then_sent(
    qtbot: QtBot,
    panel_team: Team,
    bridged: tuple[Desk, SyncBridge, Recorder],
) -> None:
    desk, _bridge, rec = bridged
    ticket = new_ticket(desk, panel_team)
    qtbot.waitUntil(
        lambda: any("mutate" in c.kinds and ticket in c.ticket_ids for c in rec.changes),
        timeout=5_000,
    )
    # The engine was nudged: the mutation goes out at once and the outbox empties.
    qtbot.waitUntil(
        lambda: (
            desk.replica.pending_count() == 0
            and rec.state == "online"
            and rec.statuses[-1].pending == 0
        ),
        timeout=10_000,
    )
    assert rec.statuses[-1].last_sync_at is not None


def test_offline_then_back(
    qtbot: QtBot,
    panel_team: Team,
    bridged: tuple[Desk, SyncBridge, Recorder],
) -> None:
    desk, _bridge, rec = bridged
    panel_team.server.stop()
    # The poke fails as soon as the server goes; the loop reports offline and backs off.
    qtbot.waitUntil(lambda: rec.state == "offline", timeout=10_000)
    assert rec.statuses[-1].last_error
    new_ticket(desk, panel_team)
    qtbot.waitUntil(lambda: rec.statuses[-1].pending == 1, timeout=5_000)
    assert rec.state in ("offline", "syncing")  # a retry may be under way
    panel_team.server.start()
    qtbot.waitUntil(lambda: rec.state == "online" and rec.statuses[-1].pending == 0, timeout=15_000)


def test_a_refusal_by_the_server_surfaces(
    qtbot: QtBot,
    panel_team: Team,
    panel_desk: PanelDesk,
) -> None:
    coordinator = panel_desk("coordinator")
    agent = panel_desk("agent")
    ticket = new_ticket(coordinator, panel_team)
    coordinator.sync()
    agent.sync()
    coordinator.replica.mutate(
        "assign_ticket",
        {
            "ticket_id": str(ticket),
            "assignee_id": str(coordinator.user_id),
            "expected_assignee_id": None,
        },
    )
    coordinator.sync()
    # The agent has not pulled that: taking the ticket passes here, the server refuses it.
    agent.replica.mutate(
        "assign_ticket",
        {"ticket_id": str(ticket), "assignee_id": str(agent.user_id), "expected_assignee_id": None},
    )
    bridge = SyncBridge(agent.replica, agent.engine)
    rec = Recorder(bridge)
    bridge.start()
    try:
        qtbot.waitUntil(lambda: len(rec.rejections) == 1, timeout=10_000)
        # The refused assignment was undone locally: the queue must re-read that ticket.
        assert ticket in rec.changed_tickets()
    finally:
        assert bridge.stop()
    assert [r.name for r in agent.replica.unseen_rejections()] == ["assign_ticket"]


def test_stop_joins_the_thread_and_nothing_arrives_after(
    qtbot: QtBot,
    panel_team: Team,
    bridged: tuple[Desk, SyncBridge, Recorder],
) -> None:
    desk, bridge, rec = bridged
    assert bridge.running
    assert bridge.stop()
    assert not bridge.running
    assert not [t for t in threading.enumerate() if t.name == "agentdesk-sync"]
    seen = len(rec.changes)
    new_ticket(desk, panel_team)  # the bridge no longer listens to the replica
    qtbot.wait(50)
    assert len(rec.changes) == seen
    assert "pull" not in vars(desk.engine.client), "the client is never wrapped"
    assert bridge._on_page not in desk.engine._page_observers, "still observing pages"
    with pytest.raises(RuntimeError, match="cannot start again"):
        bridge.start()


def test_change_of_a_page_and_of_mutations() -> None:
    ticket, event, contact = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    page = PullResponse(
        cursor=5,
        has_more=False,
        last_mutation_id=0,
        rejections=[],
        changes=[
            Change(table="tickets", id=ticket, version=3, deleted=False, values={}),
            Change(
                table="ticket_events",
                id=event,
                version=4,
                deleted=False,
                values={"ticket_id": str(ticket)},
            ),
            Change(table="contacts", id=contact, version=5, deleted=False, values={}),
        ],
    )
    change = change_of_page(page)
    assert change.ticket_ids == {ticket}
    assert change.lookups
    assert change.tables == {"tickets", "ticket_events", "contacts"}
    other = uuid.uuid4()
    mutations = change_of_mutations(
        [
            Mutation(id=1, name="add_note", args={"ticket_id": str(other), "body": "x"}),
            Mutation(id=2, name="validate_contact", args={"contact_id": str(contact)}),
        ]
    )
    assert mutations.ticket_ids == {other}
    assert mutations.lookups
    assert ReplicaChange(kinds=frozenset({"pull"})).empty
    assert not change.merged(mutations).empty


def test_a_change_names_the_organisations_and_people_of_its_rows() -> None:
    """The contact panel and the timer re-read only for their own customer and person."""
    org, person, other_org = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    page = PullResponse(
        cursor=5,
        has_more=False,
        last_mutation_id=0,
        rejections=[],
        changes=[
            Change(
                table="time_entries",
                id=uuid.uuid4(),
                version=3,
                deleted=False,
                values={"organisation_id": str(org), "person_id": str(person)},
            ),
            Change(
                table="running_timers",
                id=uuid.uuid4(),
                version=4,
                deleted=True,
                values={"organisation_id": str(other_org), "person_id": str(person)},
            ),
            Change(table="plans", id=uuid.uuid4(), version=5, deleted=False, values={}),
        ],
    )
    change = change_of_page(page)
    assert change.organisation_ids == {org, other_org}
    assert change.person_ids == {person}
    mine = change_of_mutations(
        [
            Mutation(
                id=1,
                name="add_time_entry",
                args={"organisation_id": str(org), "entry_id": str(uuid.uuid4())},
            )
        ]
    )
    assert mine.organisation_ids == {org}
    assert (change.merged(mine).organisation_ids, change.merged(mine).person_ids) == (
        frozenset({org, other_org}),
        frozenset({person}),
    )


def test_a_paged_pull_names_each_ticket_once_it_is_committed(
    qtbot: QtBot,
    panel_team: Team,
    panel_desk: PanelDesk,
) -> None:
    """A pull of many small pages (the next one fetched while one is applied): every ticket
    reaches the GUI, and only once the replica holds it (a ticket named before its page
    committed would be re-read too early, and not named again)."""
    writer = panel_desk("coordinator")
    reader = panel_team.desk("agent", pull_limit=2)
    reader.sync()
    created = [new_ticket(writer, panel_team, subject=f"Paged {i}") for i in range(8)]
    writer.sync()
    bridge = SyncBridge(reader.replica, reader.engine)
    named: list[uuid.UUID] = []
    missing: list[uuid.UUID] = []

    def check(change: ReplicaChange) -> None:
        with reader.replica.session() as s:
            present = set(s.scalars(select(Ticket.id)))
        named.extend(change.ticket_ids)
        missing.extend(t for t in change.ticket_ids if t not in present)

    bridge.changesArrived.connect(check)
    assert "pull" not in vars(reader.client)
    bridge.start()
    try:
        qtbot.waitUntil(lambda: set(created) <= set(named), timeout=10_000)
    finally:
        assert bridge.stop()
    assert missing == []


def test_what_an_applied_page_changed() -> None:
    ticket, event, gone, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    applied = AppliedPage(
        since=4,
        cursor=9,
        reset=False,
        rejections=(),
        changes=(
            Change(table="tickets", id=ticket, version=5, deleted=False, values={}),
            Change(
                table="ticket_events",
                id=event,
                version=6,
                deleted=False,
                values={"ticket_id": str(ticket)},
            ),
            Change(table="tickets", id=gone, version=7, deleted=True, values={}),
        ),
        rebased=(Mutation(id=3, name="add_note", args={"ticket_id": str(other), "body": "x"}),),
    )
    change = change_of_applied(applied)
    assert change.kinds == {"pull"}
    assert change.ticket_ids == {ticket, gone, other}
    assert change.tables == {"tickets", "ticket_events"}
    assert not change.lookups
    assert not change.everything
    assert applied.changed == {"tickets": {ticket}, "ticket_events": {event}}
    assert applied.deleted == {"tickets": {gone}}
    reset = change_of_applied(
        AppliedPage(since=9, cursor=0, reset=True, changes=(), rebased=(), rejections=())
    )
    assert reset.kinds == {"reset"}
    assert reset.everything
