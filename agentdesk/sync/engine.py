"""The sync engine: moves the outbox to the server and the server's changes into the replica.

One :meth:`SyncEngine.sync_once` pushes every pending mutation (in batches, resending from the
id the server expects after a gap) and then pulls pages until the replica is at the server's
head, rebasing pending work on each page; while one page is applied to the replica, the
request for the next is already out, on a short-lived thread. :meth:`SyncEngine.run` repeats
that forever on a background thread: after each sync it long-polls ``/sync/poke`` (on a second
HTTP session, so a local mutation can wake the loop at once through :meth:`SyncEngine.nudge`
while the poke is still out), backs off exponentially with jitter while the server is
unreachable, and stops when the server no longer accepts the token.

No Qt here: status goes to plain callbacks, and so does what each committed pull page changed
(:meth:`SyncEngine.add_page_observer`); the UI wraps them in signals.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from .client import (
    ApiClient,
    ApiError,
    BadRequest,
    Offline,
    ResetRequired,
    Unauthorized,
)
from .protocol import (
    MAX_POKE_WAIT,
    MAX_PUSH_BATCH,
    Change,
    PokeResponse,
    PullRequest,
    PullResponse,
    PushRequest,
)
from .replica import AppliedPage, NotConfigured, Replica, ReplicaState

log = logging.getLogger(__name__)

__all__ = [
    "PULL_PAGE_ROWS",
    "AppliedPage",
    "Observer",
    "PageObserver",
    "PushSummary",
    "SyncEngine",
    "SyncError",
    "SyncState",
    "SyncStatus",
]

SyncState = Literal["online", "offline", "syncing", "signed_out"]

#: Rows per pull page, the engine's default. Larger pages mean fewer replica commits (each
#: rewrites the same index pages) and fewer round trips, but a longer write transaction per
#: page. Readers never wait for it (the replica runs in WAL mode: the GUI's queries read the
#: last committed state while a page is written); a *writer* does: an agent's mutation on the
#: GUI thread queues behind the page being applied (see ``Replica._transaction``), and so does
#: a running timer's write. With the next page fetched while this one is applied, 1,000-row
#: pages already clear 10,000 rows/s on a first sync, and a click during a first sync waits
#: at most one page's apply; a 5,000-row page (the protocol's default) would hold it five times
#: as long for a few per cent more throughput (figures: docs/performance.md, "Initial sync").
#: Incremental pulls are one small page either way.
PULL_PAGE_ROWS = 1000


@dataclass(frozen=True)
class SyncStatus:
    state: SyncState
    pending: int
    last_sync_at: datetime | None
    last_error: str | None
    server_url: str


@dataclass(frozen=True)
class PushSummary:
    applied: int = 0
    rejected: int = 0
    duplicate: int = 0
    #: How many times the server reported a gap and the engine resent from its expected id.
    resent: int = 0
    rebound: bool = False


Observer = Callable[[SyncStatus], None]
#: Told, on the engine's thread, right after each pull page is committed to the replica.
PageObserver = Callable[[AppliedPage], None]


class SyncError(ApiError):
    """The engine cannot make progress for a reason retrying will not fix soon."""


class SyncEngine:
    """Drives one replica against one server. ``sync_once`` and the public step methods run
    synchronously on the caller's thread (tests use them); ``run`` is the background loop."""

    def __init__(
        self,
        replica: Replica,
        client: ApiClient,
        *,
        observer: Observer | None = None,
        push_batch: int = 100,
        pull_limit: int = PULL_PAGE_ROWS,
        prefetch: bool = True,
        poke_wait: float = MAX_POKE_WAIT,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.replica = replica
        self.client = client
        self.push_batch = max(1, min(push_batch, MAX_PUSH_BATCH))
        self.pull_limit = pull_limit
        #: Fetch the next pull page while applying one (off only to measure what it saves).
        self.prefetch = prefetch
        self.poke_wait = poke_wait
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._observers: list[Observer] = [observer] if observer else []
        self._page_observers: list[PageObserver] = []
        self._status = SyncStatus(
            state="offline",
            pending=replica.pending_count(),
            last_sync_at=None,
            last_error=None,
            server_url=client.base_url,
        )
        #: Set by :meth:`nudge` (a local mutation) and by the poke thread when it returns.
        self._wake = threading.Event()
        self._nudged = threading.Event()
        self._poke: _Poke | None = None
        #: Pushed and acknowledged by push responses, but not yet confirmed by a pull.
        self._pushed_through = 0
        self._pushed_client: uuid.UUID | None = None
        #: The ``stop`` of a running :meth:`run`: a long pull ends after the page it is on.
        self._stop: threading.Event | None = None

    # ----------------------------------------------------------------- status

    def add_observer(self, observer: Observer) -> None:
        with self._lock:
            self._observers.append(observer)

    def add_page_observer(self, observer: PageObserver) -> None:
        """``observer(applied)`` runs on the engine's thread right after each pull page (or a
        reset) is committed to the replica, with what it changed (:class:`AppliedPage`).
        Pages are told in the order they were applied. An observer's exception is logged and
        does not disturb the sync; a slow observer delays the next page, so hand work off."""
        with self._lock:
            self._page_observers.append(observer)

    def remove_page_observer(self, observer: PageObserver) -> None:
        with self._lock:
            if observer in self._page_observers:
                self._page_observers.remove(observer)

    def _tell_page(self, applied: AppliedPage) -> None:
        with self._lock:
            observers = list(self._page_observers)
        for observer in observers:
            try:
                observer(applied)
            except Exception:  # an observer's bug must not stop syncing
                log.exception("pull page observer failed")

    @property
    def status(self) -> SyncStatus:
        with self._lock:
            return self._status

    def _report(self, **changes: object) -> SyncStatus:
        """Update the status (thread-safe) and tell observers if it changed, on this thread."""
        if "pending" not in changes:
            changes["pending"] = self.replica.pending_count()
        with self._lock:
            new = replace(self._status, **changes)  # type: ignore[arg-type]
            changed = new != self._status
            self._status = new
            observers = list(self._observers)
        if changed:
            for observer in observers:
                try:
                    observer(new)
                except Exception:  # an observer's bug must not stop syncing
                    log.exception("sync status observer failed")
        return new

    # ----------------------------------------------------------------- waking

    def nudge(self, kind: str = "mutate") -> None:
        """Something was queued locally: sync now rather than after the poke. Cheap and
        thread-safe (the GUI thread calls it). It is also a replica listener, told of every
        change; only local mutations need a push."""
        if kind == "mutate":
            self._nudged.set()
            self._wake.set()

    def interrupt(self) -> None:
        """Make the request in flight fail now, and every request until :meth:`resume`
        (thread-safe). Stopping calls it, so a server that does not answer never holds up
        quitting or signing out for the client's timeouts and retries."""
        self.client.interrupt()
        self._wake.set()

    def resume(self) -> None:
        """Requests go out again (after the loop that was interrupted has ended)."""
        self.client.resume()

    def attach(self) -> None:
        """Wake on every local mutation of the replica."""
        self.replica.add_listener(self.nudge)

    def detach(self) -> None:
        self.replica.remove_listener(self.nudge)

    # ----------------------------------------------------------------- steps

    def sync_once(self) -> SyncStatus:
        """Push everything, then pull to the head. Raises the client's typed errors (after
        recording them in the status); the caller decides whether to retry."""
        self._nudged.clear()
        self._report(state="syncing")
        try:
            self.push_outbox()
            self.pull_all()
            self._reload_after_schema_change()
        except Unauthorized as exc:
            self._report(state="signed_out", last_error=f"sign in again: {exc.message}")
            raise
        except ApiError as exc:
            self._report(state="offline", last_error=exc.message)
            raise
        return self._report(
            state="online", last_error=None, last_sync_at=self.replica.state.last_sync_at
        )

    def _reload_after_schema_change(self) -> None:
        """After an update migrated the replica, its rows lack what the new schema adds: reload
        everything from the server, but only once the push and pull just done have drained the
        outbox, so no unsent work is ever replayed onto a half-empty replica (if new work was
        queued meanwhile, the next round tries again)."""
        change = self.replica.schema_reset_pending()
        if change is None or self.replica.pending_count():
            return
        log.info("schema changed (%s): reloading the replica from the server", change)
        self._tell_page(self.replica.reset())
        self.pull_all()

    def push_outbox(self, after: int | None = None) -> PushSummary:
        """Send pending mutations with ids above ``after`` (default: everything the server
        has not acknowledged yet) until none is left.

        A gap answer (the server expects an id below what was sent) resends from that id;
        if the outbox no longer holds it, the server has forgotten mutations it once
        acknowledged, and the replica continues under a new client id.
        """
        state = self.replica.state
        client_id = state.client_id
        if client_id != self._pushed_client:
            self._pushed_client, self._pushed_through = client_id, 0
        if after is None:
            after = max(state.last_mutation_id, self._pushed_through)
        batch_size = self.push_batch
        summary = PushSummary()
        last_expected: int | None = None
        while True:
            batch = self.replica.outbox_batch(batch_size, after=after)
            if not batch:
                return summary
            try:
                resp = self.client.push(PushRequest(client_id=client_id, mutations=batch))
            except BadRequest as exc:
                if exc.status == 413 and batch_size > 1:
                    batch_size = max(1, batch_size // 2)
                    continue
                raise
            counts = {"applied": 0, "rejected": 0, "duplicate": 0}
            for result in resp.results:
                counts[result.status] += 1
            summary = replace(
                summary,
                applied=summary.applied + counts["applied"],
                rejected=summary.rejected + counts["rejected"],
                duplicate=summary.duplicate + counts["duplicate"],
            )
            self._pushed_through = max(self._pushed_through, resp.last_mutation_id)
            expected = resp.expected_mutation_id
            if expected is None:
                after = max(after, resp.last_mutation_id, batch[-1].id)
                continue
            if expected == last_expected:
                raise SyncError(
                    f"the server keeps expecting mutation {expected}; sync cannot continue",
                    code="gap",
                )
            last_expected = expected
            log.info("server expects mutation %d (sent from %d); resending", expected, batch[0].id)
            if expected in self.replica.outbox_ids():
                after = expected - 1
                self._pushed_through = min(self._pushed_through, after)
                summary = replace(summary, resent=summary.resent + 1)
                continue
            if summary.rebound:
                raise SyncError("the server cannot place this desktop's changes", code="gap")
            client_id = self.replica.rebind_client()
            self._pushed_client, self._pushed_through = client_id, 0
            after = 0
            last_expected = None
            summary = replace(summary, rebound=True)

    def pull_all(self) -> int:
        """Pull pages until the server says there is no more; returns the changes applied.

        While local work is pending, pages are held back and applied together with the last
        one. A page before the last brings each row at its newest version only up to the
        page's cursor, so pending work replayed on it can find its own rows half there (a
        ticket's first event without the ticket, whose newer version is on a later page) and
        drop out of the desk's view until the pull ends, or, if the desktop dies in between,
        until its next sync. Without pending work pages apply one by one, which keeps the
        transactions of a large first sync small.

        Pipelined: as soon as a page says there is more, the request for the next one goes
        out on a thread of its own (:class:`_PageFetch`) while this thread applies (or holds)
        the page. The next request depends only on the page's cursor, so it is the very
        request the sequential loop would send next; pages are still applied one at a time,
        in order, each in its own transaction. The fetch uses the engine's client: this
        thread does not touch it until it has joined the fetch, so the session is never used
        by two threads at once (and anything wrapping ``client.pull`` sees every page). An
        error from the prefetched request surfaces once the page before it is applied,
        exactly where the sequential loop would have met it; an error while applying waits
        for the request in flight (bounded by the client's timeouts) and discards it. No
        fetch thread outlives this call. When :meth:`run` is told to stop, the pull ends
        after the page it is on.
        """
        applied = 0
        reset_done = False
        held: list[PullResponse] = []
        state = self.replica.state
        #: The replica's cursor: where the next page to apply (the first held one) starts.
        base = state.cursor
        request = self._pull_request(state, base)
        fetch: _PageFetch | None = None
        try:
            while True:
                try:
                    if fetch is not None:
                        fetched, fetch = fetch, None
                        page = fetched.result()
                    else:
                        page = self.client.pull(request)
                except ResetRequired:
                    if reset_done:
                        raise
                    log.warning("the server cannot serve cursor %d; reloading", base)
                    held.clear()
                    self._tell_page(self.replica.reset())
                    reset_done = True
                    state = self.replica.state
                    base = state.cursor
                    request = self._pull_request(state, base)
                    continue
                if page.has_more:
                    request = self._pull_request(state, page.cursor)
                    if self.prefetch:
                        fetch = _PageFetch(self.client, request)
                if page.has_more and (held or self.replica.pending_count()):
                    held.append(page)
                    if self._stopping():
                        return applied
                    continue
                if held:
                    page = _merge_pages([*held, page])
                    held.clear()
                done = self.replica.apply_pull(page, since=base)
                applied += len(page.changes)
                if state.client_id == self._pushed_client:
                    self._pushed_through = max(self._pushed_through, page.last_mutation_id)
                self._tell_page(done)
                if not page.has_more or self._stopping():
                    return applied
                state = self.replica.state
                base = page.cursor
        finally:
            if fetch is not None:
                fetch.discard()

    def _pull_request(self, state: ReplicaState, cursor: int) -> PullRequest:
        return PullRequest(
            client_id=state.client_id,
            cursor=cursor,
            limit=self.pull_limit,
            rejections_after=state.rejections_after,
        )

    def _stopping(self) -> bool:
        stop = self._stop
        return stop is not None and stop.is_set()

    # ----------------------------------------------------------------- the loop

    def backoff_delay(self, failures: int) -> float:
        """Exponential with "equal jitter": half fixed, half random, capped, so a team's
        desktops do not all come back at the same instant after an outage."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0 ** min(max(0, failures - 1), 30))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def run(self, stop: threading.Event) -> None:
        """Sync until ``stop`` is set or the server refuses the token."""
        self.attach()
        poke_client = self.client.clone()
        failures = 0
        self._stop = stop
        try:
            while not stop.is_set():
                try:
                    self.sync_once()
                    failures = 0
                    self._await_news(stop, poke_client)
                except Unauthorized as exc:
                    self._report(state="signed_out", last_error=f"sign in again: {exc.message}")
                    log.info("sync stopped: the server refused the sign-in")
                    return
                except NotConfigured:
                    self._report(state="signed_out", last_error="sign in first")
                    return
                except Exception as exc:
                    # Offline, a server error, or a bug of ours: never die silently; retry
                    # later, and say why meanwhile.
                    failures += 1
                    delay = self.backoff_delay(failures)
                    if isinstance(exc, ApiError):
                        message = exc.message
                        kind = "offline" if isinstance(exc, Offline) else "failed"
                        log.info("sync %s (%s); retrying in %.1f s", kind, message, delay)
                    else:
                        message = f"internal error: {type(exc).__name__}"
                        log.exception("sync failed unexpectedly; retrying in %.1f s", delay)
                    self._report(state="offline", last_error=message)
                    self._pause(stop, delay)
        finally:
            self._stop = None
            self.detach()
            self._poke = None
            poke_client.interrupt()  # a long-poll left waiting would hold a server slot
            poke_client.close()

    def _pause(self, stop: threading.Event, seconds: float) -> None:
        """Sleep through a backoff, keeping the pending count fresh for the UI. Local
        mutations do not cut it short: the server is unreachable either way."""
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self._wake.wait(min(left, 0.1)):
                self._wake.clear()
                if self._nudged.is_set():
                    self._report(state="offline")

    def _await_news(self, stop: threading.Event, poke_client: ApiClient) -> None:
        """Return when there is something to sync: a local mutation, or a poke saying the
        server moved. Raises the poke's error (Offline, Unauthorized...)."""
        while not stop.is_set():
            self._wake.clear()
            if self._nudged.is_set():
                return
            poke = self._poke
            if poke is not None and poke.done.is_set():
                self._poke = None
                if isinstance(poke.outcome, ApiError):
                    raise poke.outcome
                if poke.outcome is not None and poke.outcome.changed:
                    return
                poke = None
            if poke is None:
                self._poke = _Poke(self, poke_client, self.replica.state.cursor)
            # Short slices: ``stop`` belongs to the caller and cannot wake this wait.
            self._wake.wait(0.05)


def _merge_pages(pages: list[PullResponse]) -> PullResponse:
    """The pages of one pull as a single page from the first cursor to the last: the newest
    version of each row (a row changed again mid-pull comes twice) and every rejection."""
    newest: dict[tuple[str, uuid.UUID], Change] = {}
    for page in pages:
        for change in page.changes:
            key = (change.table, change.id)
            if key not in newest or change.version > newest[key].version:
                newest[key] = change
    rejections = {r.mutation_id: r for page in pages for r in page.rejections}
    return pages[-1].model_copy(
        update={
            "changes": list(newest.values()),
            "rejections": [rejections[k] for k in sorted(rejections)],
        }
    )


class _PageFetch:
    """One pull request in flight on a thread of its own: the next page, fetched while the
    engine applies the current one. The engine joins it before it uses the client again."""

    def __init__(self, client: ApiClient, request: PullRequest) -> None:
        self._client = client
        self._request = request
        self._page: PullResponse | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="agentdesk-pull-prefetch", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        try:
            self._page = self._client.pull(self._request)
        except BaseException as exc:  # everything, to be raised on the engine's thread
            self._error = exc

    def result(self) -> PullResponse:
        """The page, or the request's error raised here, as if the request were made here."""
        self._thread.join()
        error, self._error = self._error, None
        if error is not None:
            raise error
        assert self._page is not None
        return self._page

    def discard(self) -> None:
        """Wait for the request to end and forget its outcome (the pull ended without it)."""
        self._thread.join()
        self._page = self._error = None


class _Poke:
    """One long-poll in flight, on its own thread and HTTP session. It only reports into
    its own fields, so a poke left over from a stopped loop cannot confuse the next one."""

    def __init__(self, engine: SyncEngine, client: ApiClient, cursor: int) -> None:
        self.outcome: PokeResponse | ApiError | None = None
        self.done = threading.Event()
        self._engine = engine
        self._client = client
        self._cursor = cursor
        threading.Thread(target=self._run, name="agentdesk-poke", daemon=True).start()

    def _run(self) -> None:
        try:
            self.outcome = self._client.poke(self._cursor, self._engine.poke_wait)
        except ApiError as exc:
            self.outcome = exc
        except Exception as exc:  # never die silently: the loop would wait forever
            log.exception("poke failed unexpectedly")
            self.outcome = ApiError(f"unexpected error: {type(exc).__name__}")
        finally:
            self.done.set()
            self._engine._wake.set()
