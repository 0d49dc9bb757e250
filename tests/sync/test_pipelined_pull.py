"""The engine's pipelined pull and its page observers, against a real server over HTTP.

While page N is applied to the replica, the request for page N+1 is already out on a worker
thread. These tests instrument the client and the replica (no timing): the next request starts
before the previous page has finished applying; pages are still applied in order from the
cursors the sequential loop would use; an error on a prefetched page surfaces as before and
leaves the replica at the last applied page; no fetch thread outlives ``pull_all`` (error,
reset or stop); page observers are told each committed page, and cannot break the sync.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import select

from agentdesk.models import TenantCounter, Ticket
from agentdesk.sync.client import ApiError, Offline, ResetRequired, Unauthorized
from agentdesk.sync.engine import PULL_PAGE_ROWS, AppliedPage, SyncEngine
from agentdesk.sync.protocol import DEFAULT_PULL_LIMIT, PullRequest, PullResponse
from tests.plugins.live_team import Desk, Team, ticket_args

#: Rows per page in these tests: each ticket comes with its first event (one version, so
#: never split), so every page holds one ticket and the pull takes one page per ticket.
LIMIT = 2
TICKETS = 6
PREFETCH = "agentdesk-pull-prefetch"


def _tickets_on_server(team: Team, n: int = TICKETS) -> list[uuid.UUID]:
    """``n`` tickets, each created in its own transaction (its own version)."""
    ids = []
    for i in range(n):
        args = ticket_args(team.world, subject=f"Pipelined {i}")
        team.world.run("coordinator", "create_ticket", **args)
        ids.append(uuid.UUID(args["ticket_id"]))
    return ids


def _head(team: Team) -> int:
    with team.db() as s:
        return int(s.scalar(select(TenantCounter.version)) or 0)


def _local_tickets(desk: Desk) -> set[uuid.UUID]:
    with desk.replica.session() as s:
        return set(s.scalars(select(Ticket.id)))


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == PREFETCH]


class Instrumented:
    """Wraps a desk's ``client.pull`` and ``replica.apply_pull``: records requests and
    applies, and lets a test act at either point (fail a request, fail or slow an apply)."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.requests: list[int] = []
        self.pages: list[PullResponse] = []
        self.applies: list[tuple[int | None, int, bool]] = []
        self.started: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self.on_request: Callable[[int, PullRequest], None] | None = None
        self.on_apply: Callable[[int, PullResponse], None] | None = None
        self._pull = desk.client.pull
        self._apply = desk.replica.apply_pull
        desk.client.pull = self.pull  # type: ignore[method-assign]
        desk.replica.apply_pull = self.apply_pull  # type: ignore[method-assign]

    def started_event(self, cursor: int) -> threading.Event:
        with self._lock:
            return self.started.setdefault(cursor, threading.Event())

    def pull(self, request: PullRequest) -> PullResponse:
        with self._lock:
            n = len(self.requests)
            self.requests.append(request.cursor)
        self.started_event(request.cursor).set()
        if self.on_request is not None:
            self.on_request(n, request)
        page = self._pull(request)
        with self._lock:
            self.pages.append(page)
        return page

    def apply_pull(self, resp: PullResponse, *, since: int | None = None) -> AppliedPage:
        n = len(self.applies)
        self.applies.append((since, resp.cursor, resp.has_more))
        if self.on_apply is not None:
            self.on_apply(n, resp)
        return self._apply(resp, since=since)


@pytest.fixture
def reader(team: Team) -> Desk:
    """A desk that has the team's base data and is TICKETS one-ticket pages behind."""
    desk = team.desk("agent", pull_limit=LIMIT)
    desk.sync()
    _tickets_on_server(team)
    return desk


@pytest.mark.parametrize("prefetch", [True, False], ids=["pipelined", "sequential"])
def test_the_next_page_is_requested_while_the_page_before_is_applied(
    team: Team, reader: Desk, prefetch: bool
) -> None:
    """During every apply of a page that has more, the request for the next page has
    started. The sequential engine (the control) never overlaps them: the check can fail."""
    reader.engine.prefetch = prefetch
    spy = Instrumented(reader)
    overlapped: list[bool] = []

    def wait_for_next_request(_n: int, page: PullResponse) -> None:
        if page.has_more:
            # The pipelined engine started it before this apply; give its thread a moment to
            # get there. The sequential one cannot start it until this apply returns: wait
            # only the first time, then just look.
            timeout = 10.0 if prefetch else 0.0 if overlapped else 1.0
            overlapped.append(spy.started_event(page.cursor).wait(timeout))

    spy.on_apply = wait_for_next_request
    start = reader.replica.state.cursor
    applied = reader.engine.pull_all()

    assert applied >= 2 * TICKETS
    assert len(overlapped) >= TICKETS - 1
    assert all(overlapped) if prefetch else not any(overlapped)
    # Applied one at a time, in order, each from the cursor the page before left; and
    # requested from exactly the cursors the sequential loop uses.
    cursors = [start] + [cursor for _since, cursor, _more in spy.applies]
    assert [since for since, _c, _m in spy.applies] == cursors[:-1]
    assert cursors == sorted(set(cursors))
    assert spy.requests == cursors[:-1]
    assert [more for _s, _c, more in spy.applies] == [True] * (len(spy.applies) - 1) + [False]
    assert reader.replica.state.cursor == _head(team)
    assert _prefetch_threads() == []


@pytest.mark.parametrize("error", [Offline, Unauthorized])
def test_an_error_on_the_prefetched_page_surfaces_after_the_page_before(
    team: Team, reader: Desk, error: type[ApiError]
) -> None:
    """The third request fails while the second page is being applied: the second page is
    committed, the error surfaces as it is (typed, same message), the cursor stays at the
    second page and the status says so, as with the sequential loop."""
    spy = Instrumented(reader)
    failure = error("simulated failure on page 3", status=401 if error is Unauthorized else None)

    def fail_third(n: int, _request: PullRequest) -> None:
        if n == 2:
            raise failure

    spy.on_request = fail_third
    with pytest.raises(error) as raised:
        reader.engine.sync_once()
    assert raised.value is failure
    assert len(spy.applies) == 2, "both pages before the failed request are applied"
    second = spy.pages[1]
    assert reader.replica.state.cursor == second.cursor == spy.requests[2]
    assert reader.replica.state.cursor < _head(team)
    status = reader.engine.status
    assert status.state == ("signed_out" if error is Unauthorized else "offline")
    assert status.last_error is not None
    assert "simulated failure on page 3" in status.last_error
    assert _prefetch_threads() == []
    # Nothing is lost: the next sync carries on from there.
    spy.on_request = None
    reader.sync()
    assert reader.replica.state.cursor == _head(team)


def test_an_error_while_applying_waits_for_the_request_in_flight(team: Team, reader: Desk) -> None:
    """Applying the second page fails while the third is being fetched: that error is the one
    raised, the fetch is joined (no thread left running) and its page is not applied."""
    spy = Instrumented(reader)

    def fail_second(n: int, page: PullResponse) -> None:
        if n == 1:
            assert spy.started_event(page.cursor).wait(10), "the next request is out"
            raise RuntimeError("disk full")

    spy.on_apply = fail_second
    with pytest.raises(RuntimeError, match="disk full"):
        reader.engine.pull_all()
    assert _prefetch_threads() == []
    assert len(spy.applies) == 2
    assert len(spy.pages) == 3, "the request in flight ended before pull_all returned"
    assert reader.replica.state.cursor == spy.pages[0].cursor


def test_a_reset_on_a_prefetched_page_starts_over_once(team: Team, reader: Desk) -> None:
    spy = Instrumented(reader)
    told: list[AppliedPage] = []
    reader.engine.add_page_observer(told.append)

    def reset_third(n: int, request: PullRequest) -> None:
        if n == 2:
            raise ResetRequired(
                PullResponse(
                    cursor=0,
                    has_more=False,
                    changes=[],
                    last_mutation_id=0,
                    rejections=[],
                    reset=True,
                )
            )

    spy.on_request = reset_third
    reader.engine.pull_all()
    assert reader.replica.state.cursor == _head(team)
    assert [a.reset for a in told][:3] == [False, False, True]
    assert told[2].cursor == 0
    assert spy.requests[3] == 0, "it starts over from 0"
    with team.db() as s:
        server_tickets = set(s.scalars(select(Ticket.id)))
    assert _local_tickets(reader) == server_tickets
    assert _prefetch_threads() == []


def test_stopping_the_loop_ends_a_long_pull_after_the_current_page(
    team: Team, reader: Desk
) -> None:
    spy = Instrumented(reader)
    stop = threading.Event()

    def stop_on_second(n: int, _page: PullResponse) -> None:
        if n == 1:
            stop.set()

    spy.on_apply = stop_on_second
    loop = threading.Thread(target=reader.engine.run, args=(stop,), daemon=True)
    loop.start()
    loop.join(10)
    assert not loop.is_alive()
    assert len(spy.applies) == 2
    assert reader.replica.state.cursor == spy.applies[1][1] < _head(team)
    assert _prefetch_threads() == []


def test_page_observers_are_told_each_committed_page_in_order(team: Team, reader: Desk) -> None:
    new = set(_tickets_on_server(team, 2))
    told: list[AppliedPage] = []
    threads: set[threading.Thread] = set()

    def observer(applied: AppliedPage) -> None:
        threads.add(threading.current_thread())
        # Committed before the observer hears of it.
        assert reader.replica.state.cursor == applied.cursor
        assert applied.changed.get("tickets", frozenset()) <= _local_tickets(reader)
        told.append(applied)

    reader.engine.add_page_observer(observer)
    start = reader.replica.state.cursor
    reader.engine.pull_all()
    assert threads == {threading.current_thread()}
    assert [a.since for a in told] == [start] + [a.cursor for a in told[:-1]]
    assert told[-1].cursor == _head(team)
    assert not any(a.reset for a in told)
    pulled = set().union(*(a.changed.get("tickets", frozenset()) for a in told))
    assert new <= pulled
    assert all(not a.deleted for a in told)
    assert all(a.rebased == () for a in told)

    reader.engine.remove_page_observer(observer)
    heard = len(told)
    _tickets_on_server(team, 1)
    reader.engine.pull_all()
    assert len(told) == heard
    assert reader.replica.state.cursor == _head(team) > told[-1].cursor


def test_a_page_names_the_pending_work_it_rebased(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    args = ticket_args(team.world, subject="Mine")
    desk.replica.mutate("create_ticket", args)
    told: list[AppliedPage] = []
    desk.engine.add_page_observer(told.append)
    desk.sync()
    assert [m.name for a in told for m in a.rebased] == ["create_ticket"]
    assert uuid.UUID(args["ticket_id"]) in told[-1].changed["tickets"]


def test_a_failing_observer_is_logged_and_the_sync_goes_on(
    team: Team, reader: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    told: list[int] = []

    def broken(_applied: AppliedPage) -> None:
        raise ValueError("observer bug")

    reader.engine.add_page_observer(broken)
    reader.engine.add_page_observer(lambda a: told.append(a.cursor))
    with caplog.at_level(logging.ERROR, logger="agentdesk.sync.engine"):
        reader.sync()
    assert reader.engine.status.state == "online"
    assert reader.replica.state.cursor == _head(team)
    assert told, "the other observers are still told"
    assert told[-1] == _head(team)
    assert "pull page observer failed" in caplog.text


def test_the_engine_defaults(team: Team) -> None:
    """Pipelined, with the engine's own page size (see PULL_PAGE_ROWS)."""
    desk = team.desk("agent")
    engine = SyncEngine(desk.replica, desk.client)
    assert engine.prefetch
    assert engine.pull_limit == PULL_PAGE_ROWS <= DEFAULT_PULL_LIMIT
