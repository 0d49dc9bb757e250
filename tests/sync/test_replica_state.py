"""The replica's state (cursor, client id, who is signed in) and its outbox size are held in
memory: the UI reads them constantly, so a read costs no SQL, and every committed write,
whoever makes it, leaves them current. A rolled-back write leaves them as they were."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from agentdesk.sync.protocol import PullResponse
from agentdesk.sync.replica import Replica
from tests.plugins.live_team import Team, ticket_args


@contextmanager
def statements(replica: Replica) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(replica.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(replica.engine, "before_cursor_execute", record)


def test_reading_the_state_runs_no_sql(tmp_path: Path) -> None:
    with Replica(tmp_path / "r.sqlite3") as replica:
        replica.configure(
            server_url="https://desk.example.com/",
            tenant_id=uuid.uuid4(),
            user_id=uuid.uuid4(),
            username="ann",
            role="agent",
        )
        with statements(replica) as seen:
            for _ in range(100):
                state = replica.state
                assert replica.pending_count() == 0
        assert seen == []
        assert state.configured
        assert (state.server_url, state.username, state.cursor) == (
            "https://desk.example.com",
            "ann",
            0,
        )


def test_a_new_replica_object_reads_what_the_file_holds(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    with Replica(path) as first:
        client_id = first.state.client_id
        first.configure(
            server_url="http://127.0.0.1:1",
            tenant_id=uuid.uuid4(),
            user_id=uuid.uuid4(),
            username="bo",
            role="lead",
        )
    with Replica(path) as again:
        assert again.state.client_id == client_id
        assert again.state.username == "bo"


def test_every_committed_write_keeps_state_and_outbox_current(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    pulled = desk.replica.state.cursor
    assert pulled > 0
    desk.replica.mutate("create_ticket", ticket_args(team.world))
    desk.replica.mutate("create_ticket", ticket_args(team.world))
    assert desk.replica.pending_count() == 2
    desk.sync()  # pushed and acknowledged, then pulled back
    assert desk.replica.pending_count() == 0
    state = desk.replica.state
    assert state.last_mutation_id == 2
    assert state.cursor > pulled
    assert state.last_sync_at is not None


def test_a_write_that_fails_to_commit_leaves_the_state_as_it_was(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    before = desk.replica.state
    page = PullResponse(
        cursor=before.cursor + 5,
        has_more=False,
        changes=[],
        last_mutation_id=before.last_mutation_id,
        rejections=[],
    )

    def disk_full(_conn: Any) -> None:
        raise OSError("disk full")

    event.listen(desk.replica.engine, "commit", disk_full)
    with pytest.raises(OSError, match="disk full"):
        desk.replica.apply_pull(page, since=before.cursor)
    event.remove(desk.replica.engine, "commit", disk_full)
    assert desk.replica.state == before
    with desk.replica.session() as s:
        assert Replica._state_in(s) == before  # the file agrees
    desk.replica.apply_pull(page, since=before.cursor)
    assert desk.replica.state.cursor == before.cursor + 5


def _refusing(replica: Replica, *mutation_ids: int) -> PullResponse:
    """A page with nothing but the server's refusals of ``mutation_ids``."""
    state = replica.state
    return PullResponse.model_validate(
        {
            "cursor": state.cursor,
            "has_more": False,
            "changes": [],
            "last_mutation_id": state.last_mutation_id,
            "rejections": [
                {
                    "mutation_id": m,
                    "name": "assign_ticket",
                    "code": "conflict",
                    "message": f"refusal {m}",
                }
                for m in mutation_ids
            ],
        }
    )


def _sign_in(replica: Replica, username: str = "ann") -> None:
    """Bind ``replica`` to a new user of a new team on a closed local port."""
    replica.configure(
        server_url="http://127.0.0.1:1",
        tenant_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        username=username,
        role="agent",
    )


def test_the_refusals_are_read_without_sql_and_current_after_every_write(
    tmp_path: Path,
) -> None:
    """The panels ask for the refusals each time they show a ticket while a change awaits its
    answer: on the GUI thread, so from memory. A pull that stores one, a mark as seen and a
    fresh sign-in's wipe each leave the copy current; other writes keep it as it was."""
    with Replica(tmp_path / "r.sqlite3") as replica:
        _sign_in(replica)
        assert replica.rejections() == []
        replica.apply_pull(_refusing(replica, 1, 2), since=replica.state.cursor)
        with statements(replica) as seen:
            shown = replica.rejections()
            unseen = replica.unseen_rejections()
        assert seen == []
        assert [(r.mutation_id, r.message, r.seen) for r in shown] == [
            (1, "refusal 1", False),
            (2, "refusal 2", False),
        ]
        assert unseen == shown
        replica.apply_pull(_refusing(replica, 2), since=replica.state.cursor)  # known: kept once
        assert [r.mutation_id for r in replica.rejections()] == [1, 2]
        replica.mark_rejections_seen(shown[:1])
        assert [(r.mutation_id, r.seen) for r in replica.rejections()] == [(1, True), (2, False)]
        assert [r.mutation_id for r in replica.unseen_rejections()] == [2]
        with replica.session() as s:  # the file agrees with the copy
            assert Replica._rejections_in(s) == tuple(replica.rejections())
        _sign_in(replica, "bo")  # another user, nothing waiting: a fresh replica
        assert replica.rejections() == []


def test_a_second_replica_object_on_the_file_catches_up_on_refusals_it_did_not_store(
    tmp_path: Path,
) -> None:
    """A sign-in opens a new Replica on the file while the old workspace's sync thread may still
    commit a page: the refusals that page stored reach the new object's copy with the next page
    carrying them, even though it finds them already in the file."""
    path = tmp_path / "r.sqlite3"
    with Replica(path) as old, Replica(path) as new:
        _sign_in(old)
        new.apply_pull(_refusing(new, 7), since=new.state.cursor)  # a first copy, then...
        old.apply_pull(_refusing(old, 8), since=old.state.cursor)  # ...one it did not store
        assert [r.mutation_id for r in new.rejections()] == [7]
        new.apply_pull(_refusing(new, 8), since=new.state.cursor)
        assert [r.mutation_id for r in new.rejections()] == [7, 8]


def test_a_write_that_fails_to_commit_keeps_the_refusals_as_they_were(tmp_path: Path) -> None:
    with Replica(tmp_path / "r.sqlite3") as replica:
        _sign_in(replica)
        replica.apply_pull(_refusing(replica, 1), since=replica.state.cursor)
        before = replica.rejections()

        def disk_full(_conn: Any) -> None:
            raise OSError("disk full")

        event.listen(replica.engine, "commit", disk_full)
        try:
            with pytest.raises(OSError, match="disk full"):
                replica.apply_pull(_refusing(replica, 2), since=replica.state.cursor)
            with pytest.raises(OSError, match="disk full"):
                replica.mark_rejections_seen()
        finally:
            event.remove(replica.engine, "commit", disk_full)
        assert replica.rejections() == before
        with replica.session() as s:
            assert Replica._rejections_in(s) == tuple(before)
