"""Waking long-polls when a tenant's version moves.

Writers announce each committed version (``agentdesk.models.versioning``). Within a process the
announcement goes straight to :class:`VersionNotifier`; across processes PostgreSQL carries it
(NOTIFY inside the write transaction, LISTEN in :class:`PostgresListener`), so a change pushed
to one server process wakes pollers on every other. Pollers also re-check the database now and
then, so a lost notification costs latency, never correctness.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections import defaultdict

from sqlalchemy.engine import make_url

from ..models.versioning import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


#: What a waiter is woken with when the notifier closes (versions are never negative).
_CLOSED = -1


class VersionNotifier:
    """Fan-out of "tenant T reached version V" to waiting coroutines, callable from any thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._latest: dict[uuid.UUID, int] = {}
        self._waiters: defaultdict[uuid.UUID, set[asyncio.Future[int]]] = defaultdict(set)
        self._lock = threading.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Thread-safe: the server is stopping. Every waiting poll returns now (as "nothing
        new"), and later ones do not wait, so a graceful shutdown is not held up by held
        long-polls until its timeout cancels them (which answered 500 and logged a traceback).
        """
        self._closed = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._release_all)

    def _release_all(self) -> None:
        for tenant_id in list(self._waiters):
            for fut in self._waiters.pop(tenant_id, set()):
                if not fut.done():
                    fut.set_result(_CLOSED)

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def notify(self, tenant_id: uuid.UUID, version: int) -> None:
        """Thread-safe: record the version and wake the tenant's waiters on the event loop."""
        with self._lock:
            if version <= self._latest.get(tenant_id, 0):
                return
            self._latest[tenant_id] = version
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake, tenant_id, version)

    def _wake(self, tenant_id: uuid.UUID, version: int) -> None:
        for fut in self._waiters.pop(tenant_id, set()):
            if not fut.done():
                fut.set_result(version)

    def latest(self, tenant_id: uuid.UUID) -> int:
        return self._latest.get(tenant_id, 0)

    async def wait_beyond(self, tenant_id: uuid.UUID, cursor: int, timeout: float) -> int | None:
        """The version once it passes ``cursor``, or None after ``timeout`` seconds."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        known = self.latest(tenant_id)
        if known > cursor:
            return known
        if self._closed:
            return None
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters[tenant_id].add(fut)
        try:
            version = await asyncio.wait_for(fut, timeout)
            return None if version == _CLOSED else version
        except TimeoutError:
            return None
        finally:
            self._waiters[tenant_id].discard(fut)
            if not self._waiters[tenant_id]:
                self._waiters.pop(tenant_id, None)

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())


class PostgresListener:
    """A background thread that LISTENs on the version channel and feeds the notifier.

    One dedicated connection per server process; it reconnects with backoff if PostgreSQL goes
    away (pollers meanwhile fall back to their periodic database re-check).
    """

    def __init__(self, database_url: str, notifier: VersionNotifier) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._notifier = notifier
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
        self.ready = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        # Imported here: the driver is the `server` extra, which a desktop (SQLite only, never
        # a listener) does not install.
        import psycopg

        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.ready.set()
                    backoff = 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.2):
                            self._dispatch(note.payload)
            except psycopg.Error as exc:
                self.ready.clear()
                log.warning("LISTEN connection lost (%s); retrying in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _dispatch(self, payload: str) -> None:
        tenant, _, version = payload.partition(":")
        try:
            self._notifier.notify(uuid.UUID(tenant), int(version))
        except ValueError:
            log.warning("ignoring malformed version notification %r", payload)
