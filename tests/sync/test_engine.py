"""The sync engine against a real server over HTTP: offline work, exactly-once pushes, gaps,
conflicts, paging, resets, live updates through pokes, and riding out a server restart."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from agentdesk.models import EventKind, MutationRecord, Ticket, TicketEvent
from agentdesk.sync.client import ApiClient, Offline
from agentdesk.sync.engine import SyncEngine, SyncStatus
from agentdesk.sync.protocol import PullRequest, PullResponse
from agentdesk.sync.replica import Replica
from agentdesk.sync.rows import MODELS_BY_TABLE
from tests.plugins.live_team import Desk, Team, ticket_args, wait_for


def _server_ticket(team: Team, tid: uuid.UUID) -> Ticket | None:
    with team.db() as s:
        return s.get(Ticket, tid)


def _server_events(team: Team, tid: uuid.UUID, kind: EventKind | None = None) -> list[Any]:
    with team.db() as s:
        query = select(TicketEvent).where(TicketEvent.ticket_id == tid)
        if kind is not None:
            query = query.where(TicketEvent.kind == kind)
        return list(s.scalars(query))


def _local_ticket(desk: Desk, tid: uuid.UUID) -> Ticket | None:
    with desk.replica.session() as s:
        return s.get(Ticket, tid)


def _create(team: Team, desk: Desk, **kw: Any) -> uuid.UUID:
    args = ticket_args(team.world, **kw)
    desk.replica.mutate("create_ticket", args)
    return uuid.UUID(args["ticket_id"])


def _records(team: Team, desk: Desk) -> int:
    with team.db() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(MutationRecord)
                .where(MutationRecord.client_id == desk.replica.state.client_id)
            )
            or 0
        )


def test_work_done_offline_is_sent_once_when_the_server_is_back(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    team.server.stop()
    tid = _create(team, desk, subject="Offline ticket")
    desk.replica.mutate("add_note", {"ticket_id": tid, "body": "written on the train"})
    with pytest.raises(Offline):
        desk.sync()
    status = desk.engine.status
    assert (status.state, status.pending) == ("offline", 2)
    assert status.last_error is not None
    assert "cannot reach" in status.last_error
    assert _local_ticket(desk, tid) is not None  # the agent keeps working meanwhile

    team.server.start()
    desk.sync()
    assert desk.engine.status.state == "online"
    assert desk.engine.status.pending == 0
    server = _server_ticket(team, tid)
    assert server is not None
    assert server.subject == "Offline ticket"
    assert len(_server_events(team, tid, EventKind.NOTE)) == 1
    assert _records(team, desk) == 2
    desk.sync()  # nothing left to send, nothing sent twice
    assert _records(team, desk) == 2
    states = [s.state for s in desk.statuses]
    assert states.index("offline") < len(states) - 1 - states[::-1].index("online")


def test_the_optimistic_row_becomes_the_servers_row(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    tid = _create(team, desk)
    desk.replica.mutate("add_note", {"ticket_id": tid, "body": "first"})
    mine = _local_ticket(desk, tid)
    assert mine is not None
    assert mine.version == 0
    with desk.replica.session() as s:
        local_events = {e.id: e.version for e in s.scalars(select(TicketEvent))}
    assert set(local_events.values()) == {0}

    desk.sync()
    server = _server_ticket(team, tid)
    theirs = _local_ticket(desk, tid)
    assert server is not None
    assert theirs is not None
    assert theirs.version == server.version > 0
    assert theirs.arrived_at == server.arrived_at  # the server's clock, not the desktop's
    with desk.replica.session() as s:
        synced_events = {e.id: e.version for e in s.scalars(select(TicketEvent))}
    assert set(synced_events) == set(local_events), "same ids on both sides"
    assert {e.id: e.version for e in _server_events(team, tid)} == synced_events


def test_two_agents_grab_the_same_ticket_and_one_is_told_why_not(team: Team) -> None:
    ann, bo = team.desk("agent"), team.desk("agent2")
    ann.sync()
    tid = _create(team, ann)
    ann.sync()
    bo.sync()
    for desk in (ann, bo):
        desk.replica.mutate(
            "assign_ticket",
            {"ticket_id": tid, "assignee_id": desk.user_id, "expected_assignee_id": None},
        )
        mine = _local_ticket(desk, tid)
        assert mine is not None
        assert mine.assignee_id == desk.user_id  # each sees the grab at once
    ann.sync()
    bo.sync()

    bo_view = _local_ticket(bo, tid)
    assert bo_view is not None
    assert bo_view.assignee_id == ann.user_id, "Bo's optimistic grab was reverted"
    assert bo.replica.pending_count() == 0
    [rejection] = bo.replica.unseen_rejections()
    assert rejection.name == "assign_ticket"
    assert rejection.code == "conflict"
    assert rejection.message == "the ticket is now assigned to Agent; refresh and try again"
    assert len(_server_events(team, tid, EventKind.ASSIGNMENT)) == 1
    with bo.replica.session() as s:
        bo_events = s.scalars(
            select(TicketEvent).where(TicketEvent.kind == EventKind.ASSIGNMENT)
        ).all()
    assert [e.author_id for e in bo_events] == [ann.user_id]
    assert ann.replica.unseen_rejections() == []
    bo.replica.mark_rejections_seen()
    assert bo.replica.unseen_rejections() == []
    assert [r.seen for r in bo.replica.rejections()] == [True]


def test_a_push_whose_answer_was_lost_is_acknowledged_as_duplicate(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    tid = _create(team, desk)
    desk.replica.mutate("add_note", {"ticket_id": tid, "body": "once"})
    first = desk.engine.push_outbox()
    assert (first.applied, first.duplicate) == (2, 0)
    # The answer never arrived: the desktop sends the same batch again.
    again = desk.engine.push_outbox(after=0)
    assert (again.applied, again.duplicate) == (0, 2)
    desk.sync()
    assert desk.replica.pending_count() == 0
    assert len(_server_events(team, tid, EventKind.NOTE)) == 1
    assert _records(team, desk) == 2


def test_a_gap_makes_the_engine_resend_from_the_expected_id(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    tid = _create(team, desk)
    desk.replica.mutate("add_note", {"ticket_id": tid, "body": "two"})
    desk.replica.mutate("add_note", {"ticket_id": tid, "body": "three"})
    summary = desk.engine.push_outbox(after=2)  # sends 3; the server expects 1
    assert summary.resent == 1
    assert (summary.applied, summary.rejected, summary.duplicate) == (3, 0, 0)
    assert not summary.rebound
    desk.sync()
    assert sorted(e.body for e in _server_events(team, tid, EventKind.NOTE)) == ["three", "two"]
    assert _records(team, desk) == 3


def test_a_server_that_forgot_acknowledged_work_gets_it_renumbered(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    tid = _create(team, desk)
    desk.sync()
    desk.replica.mutate("add_note", {"ticket_id": tid, "body": "after the backup"})
    old_client = desk.replica.state.client_id
    with team.db() as s:  # the server is restored from a backup taken before mutation 1
        s.execute(text("DELETE FROM mutation_records"))
        s.execute(text("UPDATE sync_clients SET last_mutation_id = 0"))
    summary = desk.engine.push_outbox()
    assert summary.rebound
    assert summary.applied == 1
    assert desk.replica.state.client_id != old_client
    desk.sync()
    assert desk.replica.pending_count() == 0
    assert [e.body for e in _server_events(team, tid, EventKind.NOTE)] == ["after the backup"]


def test_pull_pages_end_at_version_boundaries(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = team.desk("coordinator")
    writer.sync()
    tickets = [_create(team, writer, subject=f"T{i}") for i in range(4)]
    writer.sync()
    for tid in tickets[:2]:  # later versions for some parents
        writer.replica.mutate("triage_ticket", {"ticket_id": tid, "tier": 2})
        writer.sync()

    reader = team.desk("agent", pull_limit=3)
    pages: list[PullResponse] = []
    real_pull = reader.client.pull

    def recording_pull(request: PullRequest) -> PullResponse:
        page = real_pull(request)
        pages.append(page)
        return page

    monkeypatch.setattr(reader.client, "pull", recording_pull)
    reader.sync()

    assert len(pages) > 3
    assert [p.has_more for p in pages] == [True] * (len(pages) - 1) + [False]
    with team.db() as s:
        by_version: dict[int, set[uuid.UUID]] = defaultdict(set)
        for model in MODELS_BY_TABLE.values():
            for row in s.scalars(select(model).where(model.tenant_id == team.world.tenant)):
                by_version[row.version].add(row.id)
    seen: dict[int, int] = {}
    for n, page in enumerate(pages):
        versions = sorted({c.version for c in page.changes})
        if n:
            assert versions[0] > max(c.version for c in pages[n - 1].changes)
        for v in versions:
            assert v not in seen, f"version {v} split across pages {seen[v]} and {n}"
            seen[v] = n
            assert {c.id for c in page.changes if c.version == v} == by_version[v]
    # The replica ends up holding exactly the server's rows, and consistent.
    with reader.replica.session() as s:
        local = {
            row.id: row.version
            for model in MODELS_BY_TABLE.values()
            for row in s.scalars(select(model))
        }
        assert s.execute(text("PRAGMA foreign_key_check")).all() == []
    assert local == {i: v for v, ids in by_version.items() for i in ids}


def test_a_replica_ahead_of_the_server_starts_over_and_keeps_its_outbox(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    tid = _create(team, desk)
    desk.sync()
    # As if the server's database were restored from an older backup.
    desk.replica.apply_pull(
        PullResponse(cursor=10**6, has_more=False, changes=[], last_mutation_id=1, rejections=[])
    )
    desk.replica.mutate("add_note", {"ticket_id": tid, "body": "survives the reset"})
    desk.sync()
    with team.db() as s:
        head = s.execute(text("SELECT version FROM tenant_counters")).scalar_one()
    assert desk.replica.state.cursor == head
    assert desk.replica.pending_count() == 0
    assert len(_server_events(team, tid, EventKind.NOTE)) == 1
    assert _local_ticket(desk, tid) is not None


def test_backoff_grows_with_jitter_up_to_a_cap(tmp_path: Path) -> None:
    with Replica(tmp_path / "r.sqlite3") as replica, ApiClient("http://127.0.0.1:9") as client:
        engine = SyncEngine(replica, client, backoff_base=0.5, backoff_cap=30, rng=random.Random(7))
        delays = [engine.backoff_delay(n) for n in range(1, 12)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(30.0, 0.5 * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 30
    assert len({round(d, 6) for d in delays[-4:]}) > 1, "jittered, not lock-step"


def test_the_loop_hears_another_desks_change_within_a_second(team: Team) -> None:
    watcher, writer = team.desk("agent"), team.desk("coordinator")
    writer.sync()
    with watcher.running():
        wait_for(lambda: watcher.engine.status.state == "online")
        time.sleep(0.2)  # the loop is now parked in its long-poll
        tid = _create(team, writer)
        writer.sync()
        elapsed = wait_for(lambda: _local_ticket(watcher, tid) is not None, timeout=5)
        assert elapsed < 1.0, f"the change took {elapsed:.2f} s to arrive"
        # And a local mutation wakes the loop out of its long-poll at once.
        time.sleep(0.2)
        started = time.monotonic()
        watcher.replica.mutate("add_note", {"ticket_id": tid, "body": "seen it"})
        wait_for(lambda: len(_server_events(team, tid, EventKind.NOTE)) == 1, timeout=5)
        assert time.monotonic() - started < 1.0
        wait_for(lambda: watcher.engine.status.pending == 0)


def test_the_loop_backs_off_and_resumes_across_a_server_restart(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    tid = _create(team, desk)
    desk.sync()
    with desk.running():
        wait_for(lambda: desk.engine.status.state == "online")
        team.server.stop()
        desk.replica.mutate("add_note", {"ticket_id": tid, "body": "during the outage"})
        wait_for(lambda: desk.engine.status.state == "offline", timeout=10)
        time.sleep(0.5)  # a few failed attempts
        assert desk.engine.status.pending == 1
        team.server.start()
        wait_for(lambda: len(_server_events(team, tid, EventKind.NOTE)) == 1, timeout=10)
        wait_for(
            lambda: (
                desk.engine.status
                == SyncStatus(
                    state="online",
                    pending=0,
                    last_sync_at=desk.replica.state.last_sync_at,
                    last_error=None,
                    server_url=team.url,
                )
            ),
            timeout=10,
        )
    assert len(_server_events(team, tid, EventKind.NOTE)) == 1
    states = [s.state for s in desk.statuses]
    assert "offline" in states
    assert states[-1] == "online"


def test_a_revoked_token_stops_the_loop_and_asks_to_sign_in(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    tid = _create(team, desk)
    desk.sync()
    with desk.running() as loop:
        wait_for(lambda: desk.engine.status.state == "online")
        elsewhere = desk.client.clone()
        elsewhere.logout()  # e.g. an admin revoked the session
        elsewhere.close()
        desk.replica.mutate("add_note", {"ticket_id": tid, "body": "too late"})
        wait_for(lambda: not loop.is_alive(), timeout=5)
    status = desk.engine.status
    assert status.state == "signed_out"
    assert status.last_error is not None
    assert status.last_error.startswith("sign in again")
    assert desk.replica.pending_count() == 1  # kept for after the next sign-in


def test_the_token_stays_out_of_the_logs_while_syncing(
    team: Team, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    desk = team.desk("agent")
    desk.sync()
    tid = _create(team, desk)
    with desk.running():
        wait_for(lambda: _server_ticket(team, tid) is not None)
        desk.replica.mutate("add_note", {"ticket_id": tid, "body": "logged?"})
        wait_for(lambda: desk.engine.status.pending == 0 and desk.engine.status.state == "online")
    assert "/api/v1/sync/push" in caplog.text
    assert desk.login.token not in caplog.text
