"""The replica: optimistic mutations with an outbox and an undo log, and the rebase on pull."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import select, text

from agentdesk.models import EventKind, Ticket, TicketEvent, TicketStatus
from agentdesk.sync.mutators import MutationRejected
from agentdesk.sync.protocol import Change, PullRequest, PullResponse, Rejection
from agentdesk.sync.replica import (
    NotConfigured,
    Replica,
    ReplicaBound,
    ReplicaError,
    StaleCursor,
    undo_table,
)
from agentdesk.sync.rows import row_to_wire
from tests.plugins.live_team import Desk, Team, ticket_args


def _ticket(desk: Desk, ticket_id: uuid.UUID) -> Ticket | None:
    with desk.replica.session() as s:
        return s.get(Ticket, ticket_id)


def _events(desk: Desk, ticket_id: uuid.UUID) -> list[TicketEvent]:
    with desk.replica.session() as s:
        return list(
            s.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket_id)
                .order_by(TicketEvent.at, TicketEvent.version, TicketEvent.seq)
            )
        )


def _row(desk: Desk, ticket_id: uuid.UUID) -> dict[str, Any]:
    with desk.replica.session() as s:
        return dict(
            s.execute(select(Ticket.__table__).where(Ticket.__table__.c.id == ticket_id))
            .mappings()
            .one()
        )


def _undo(desk: Desk) -> list[Any]:
    with desk.replica.session() as s:
        return list(
            s.execute(select(undo_table).order_by(undo_table.c.mutation_id, undo_table.c.seq))
        )


def _synced_ticket(team: Team, desk: Desk) -> uuid.UUID:
    """A ticket the server has and the desk has pulled."""
    args = ticket_args(team.world)
    desk.replica.mutate("create_ticket", args)
    desk.sync()
    return uuid.UUID(args["ticket_id"])


def _page(desk: Desk, **kw: Any) -> PullResponse:
    st = desk.replica.state
    fields: dict[str, Any] = dict(
        cursor=st.cursor,
        has_more=False,
        changes=[],
        last_mutation_id=st.last_mutation_id,
        rejections=[],
    )
    fields.update(kw)
    return PullResponse(**fields)


def test_a_mutation_is_applied_and_queued_in_one_step(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    args = ticket_args(team.world, subject="Printer on fire")
    assert desk.replica.mutate("create_ticket", args) == 1
    tid = uuid.UUID(args["ticket_id"])
    ticket = _ticket(desk, tid)
    assert ticket is not None
    assert (ticket.subject, ticket.version, ticket.status) == (
        "Printer on fire",
        0,
        TicketStatus.NEW,
    )
    assert [e.kind for e in _events(desk, tid)] == [EventKind.CREATED]
    [queued] = desk.replica.outbox_batch(10)
    assert (queued.id, queued.name, queued.args) == (1, "create_ticket", args)
    assert queued.client_time is not None
    # The undo log says both rows did not exist before.
    assert [(u.table, u.preimage) for u in _undo(desk)] == [
        ("tickets", None),
        ("ticket_events", None),
    ]
    assert desk.replica.mutate("add_note", {"ticket_id": tid, "body": "on it"}) == 2
    assert [m.id for m in desk.replica.outbox_batch(10)] == [1, 2]
    assert [m.id for m in desk.replica.outbox_batch(10, after=1)] == [2]


REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("add_note", {"ticket_id": str(uuid.uuid4()), "body": "hello"}, "not_found"),
    ("add_note", {"body": "hello"}, "invalid"),
    ("triage_ticket", {"ticket_id": str(uuid.uuid4()), "tier": 1}, "forbidden"),
    ("drop_tables", {}, "unknown_mutation"),
]


def test_a_mutation_refused_locally_writes_nothing(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    tid = _synced_ticket(team, desk)
    before = _row(desk, tid)
    for name, args, code in REFUSALS:
        with pytest.raises(MutationRejected) as exc:
            desk.replica.mutate(name, args)
        assert exc.value.code == code
        assert exc.value.message
    assert desk.replica.pending_count() == 0
    assert _undo(desk) == []
    assert _row(desk, tid) == before
    # The next id is still 2: a refusal consumes no mutation id.
    assert desk.replica.mutate("add_note", {"ticket_id": tid, "body": "fine"}) == 2


def test_the_replica_refuses_to_act_for_nobody_and_to_be_written_directly(tmp_path: Any) -> None:
    with Replica(tmp_path / "r.sqlite3") as replica:
        assert not replica.state.configured
        with pytest.raises(NotConfigured):
            replica.mutate("add_note", {"ticket_id": str(uuid.uuid4()), "body": "x"})
        with pytest.raises(ReplicaError, match="read-only"), replica.session() as s:
            s.add(Ticket(subject="sneaky"))
            s.flush()
        client_id = replica.state.client_id
    with Replica(tmp_path / "r.sqlite3") as again:
        assert again.state.client_id == client_id, "the client id is made once and kept"


def test_a_server_rejection_reverts_exactly_to_the_pre_image(team: Team) -> None:
    coordinator = team.desk("coordinator")
    coordinator.sync()
    tid = _synced_ticket(team, coordinator)
    before = _row(coordinator, tid)
    events_before = [e.id for e in _events(coordinator, tid)]
    mid = coordinator.replica.mutate("triage_ticket", {"ticket_id": tid, "tier": 1, "level": "L2"})
    triaged = _ticket(coordinator, tid)
    assert triaged is not None
    assert (triaged.tier, triaged.status) == (1, TicketStatus.TRIAGED)
    # The server refused it (as far as this replica is told).
    coordinator.replica.apply_pull(
        _page(
            coordinator,
            last_mutation_id=mid,
            rejections=[
                Rejection(
                    mutation_id=mid,
                    name="triage_ticket",
                    code="conflict",
                    message="someone else triaged it first",
                    field="tier",
                )
            ],
        )
    )
    assert _row(coordinator, tid) == before
    assert [e.id for e in _events(coordinator, tid)] == events_before
    assert coordinator.replica.pending_count() == 0
    assert _undo(coordinator) == []
    [rejection] = coordinator.replica.unseen_rejections()
    assert (rejection.mutation_id, rejection.code, rejection.field) == (mid, "conflict", "tier")
    assert rejection.message == "someone else triaged it first"
    coordinator.replica.mark_rejections_seen([rejection])
    assert coordinator.replica.unseen_rejections() == []
    assert len(coordinator.replica.rejections()) == 1
    assert coordinator.replica.state.rejections_after == mid


def test_a_pending_mutation_is_replayed_on_top_of_pulled_changes(team: Team) -> None:
    agent, coordinator = team.desk("agent"), team.desk("coordinator")
    agent.sync()
    tid = _synced_ticket(team, agent)
    coordinator.sync()
    # Offline-ish: the agent's note is queued, not pushed.
    agent.replica.mutate("add_note", {"ticket_id": tid, "body": "called the customer"})
    coordinator.replica.mutate("update_ticket", {"ticket_id": tid, "subject": "Checkout 500s"})
    coordinator.sync()

    agent.engine.pull_all()
    ticket = _ticket(agent, tid)
    assert ticket is not None
    assert ticket.subject == "Checkout 500s"  # the server's change...
    events = {e.kind: e for e in _events(agent, tid)}
    assert set(events) == {EventKind.CREATED, EventKind.FIELD_CHANGE, EventKind.NOTE}
    note = events[EventKind.NOTE]
    assert note.version == 0  # ...with the pending note still on top
    assert agent.replica.pending_count() == 1
    # Fresh pre-images, taken on top of the pulled state: the note did not exist, the ticket
    # had the coordinator's subject.
    images = {u.table: u.preimage for u in _undo(agent) if u.mutation_id == 2}
    assert images["ticket_events"] is None
    assert images["tickets"]["values"]["subject"] == "Checkout 500s"

    agent.sync()
    assert agent.replica.pending_count() == 0
    assert all(e.version > 0 for e in _events(agent, tid))
    with team.db() as s:
        notes = s.scalars(
            select(TicketEvent).where(
                TicketEvent.ticket_id == tid, TicketEvent.kind == EventKind.NOTE
            )
        ).all()
    assert [n.id for n in notes] == [note.id], "the same row, applied once"


def test_a_pending_mutation_that_no_longer_applies_stays_queued_without_effect(
    team: Team,
) -> None:
    agent, coordinator = team.desk("agent"), team.desk("coordinator")
    coordinator.sync()
    tid = _synced_ticket(team, coordinator)
    agent.sync()
    agent.replica.mutate(
        "assign_ticket",
        {"ticket_id": tid, "assignee_id": agent.user_id, "expected_assignee_id": None},
    )
    coordinator.replica.mutate(
        "assign_ticket",
        {"ticket_id": tid, "assignee_id": team.world.users["agent2"], "expected_assignee_id": None},
    )
    coordinator.sync()

    agent.engine.pull_all()
    ticket = _ticket(agent, tid)
    assert ticket is not None
    assert ticket.assignee_id == team.world.users["agent2"]
    assert agent.replica.pending_count() == 1, "the server decides, not the replica"
    assert _undo(agent) == []
    agent.sync()
    assert agent.replica.pending_count() == 0
    [rejection] = agent.replica.unseen_rejections()
    assert rejection.code == "conflict"


def test_reset_drops_server_rows_and_keeps_the_outbox(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    tid = _synced_ticket(team, desk)
    desk.replica.mutate("add_note", {"ticket_id": tid, "body": "still here"})
    desk.replica.reset()
    assert desk.replica.state.cursor == 0
    assert _ticket(desk, tid) is None
    assert desk.replica.pending_count() == 1
    # A page fetched for the old cursor must not land on the reset replica.
    stale = desk.client.pull(PullRequest(client_id=desk.replica.state.client_id, cursor=1))
    with pytest.raises(StaleCursor):
        desk.replica.apply_pull(stale, since=1)
    desk.engine.pull_all()
    assert EventKind.NOTE in [e.kind for e in _events(desk, tid)]


def test_signing_in_as_someone_else(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    tid = _synced_ticket(team, desk)
    desk.replica.mutate("add_note", {"ticket_id": tid, "body": "unsent"})
    old = desk.replica.state
    lead = team.world.users["lead"]
    with pytest.raises(ReplicaBound, match="1 change"):
        desk.replica.configure(
            server_url=team.url,
            tenant_id=team.world.tenant,
            user_id=lead,
            username="lead",
            role="lead",
        )
    # The same person signing in again keeps everything.
    same = desk.replica.configure(
        server_url=team.url + "/",
        tenant_id=team.world.tenant,
        user_id=desk.user_id,
        username="agent",
        role="agent",
    )
    assert same == old
    desk.sync()
    fresh = desk.replica.configure(
        server_url=team.url, tenant_id=team.world.tenant, user_id=lead, username="lead", role="lead"
    )
    assert fresh.client_id != old.client_id
    assert (fresh.cursor, fresh.last_mutation_id, fresh.role) == (0, 0, "lead")
    assert _ticket(desk, tid) is None


def test_concurrent_mutations_and_pulls_serialise(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    tid = _synced_ticket(team, desk)
    # A page that re-sends the ticket forces a full revert-and-replay every time.
    with team.db() as s:
        ticket_row = Change.model_validate(row_to_wire(s.get_one(Ticket, tid)))
    page = _page(desk, changes=[ticket_row])
    errors: list[BaseException] = []
    done = threading.Event()

    def pull_repeatedly() -> None:
        try:
            while not done.is_set():
                desk.replica.apply_pull(page)
        except BaseException as exc:
            errors.append(exc)

    puller = threading.Thread(target=pull_repeatedly)
    puller.start()
    try:
        ids = [
            desk.replica.mutate("add_note", {"ticket_id": tid, "body": f"note {i}"})
            for i in range(15)
        ]
    finally:
        done.set()
        puller.join()
    assert errors == []
    assert ids == list(range(2, 17))
    assert desk.replica.pending_count() == 15
    notes = [e for e in _events(desk, tid) if e.kind is EventKind.NOTE]
    assert sorted(e.body for e in notes) == sorted(f"note {i}" for i in range(15))
    desk.sync()
    with team.db() as s:
        count = len(
            s.scalars(
                select(TicketEvent.id).where(
                    TicketEvent.ticket_id == tid, TicketEvent.kind == EventKind.NOTE
                )
            ).all()
        )
    assert count == 15
    with desk.replica.session() as s:
        assert s.execute(text("PRAGMA foreign_key_check")).all() == []
